using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class RetentionPolicyTests
{
    private static readonly DateTimeOffset Now = new(2025, 3, 10, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void No_snapshots_keeps_and_removes_nothing()
    {
        var decision = new RetentionPolicy { KeepLast = 3 }.Evaluate([], Now);
        Assert.Empty(decision.Kept);
        Assert.Empty(decision.Removed);
    }

    [Fact]
    public void A_policy_without_rules_is_invalid()
    {
        var policy = new RetentionPolicy();
        Assert.Contains(policy.Validate(), e => e.Contains("at least one rule", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => policy.Evaluate(Series(3, TimeSpan.FromHours(1)), Now));
    }

    [Fact]
    public void Validation_names_each_bad_setting()
    {
        var errors = new RetentionPolicy { KeepWithin = TimeSpan.FromHours(-1), DensityBase = TimeSpan.FromMilliseconds(10), KeepLast = -1, KeepHourly = -2, KeepDaily = -3 }.Validate();
        Assert.Contains(errors, e => e.StartsWith("retention.keep-within", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("retention.density", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("retention.keep-last", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("retention.keep-hourly", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("retention.keep-daily", StringComparison.Ordinal));
    }

    [Fact]
    public void Keep_last_keeps_the_newest_n()
    {
        var snapshots = Series(10, TimeSpan.FromHours(1));
        var decision = new RetentionPolicy { KeepLast = 3 }.Evaluate(snapshots, Now);
        Assert.Equal(["s00", "s01", "s02"], decision.Kept.Keys.Order());
        Assert.Equal(7, decision.Removed.Count);
    }

    [Fact]
    public void The_newest_is_kept_even_when_no_rule_covers_it_unless_disabled()
    {
        var snapshots = new[] { new SnapshotTime("old", Now.AddDays(-30)), new SnapshotTime("older", Now.AddDays(-31)) };
        var policy = new RetentionPolicy { KeepWithin = TimeSpan.FromHours(1) };
        Assert.Equal(["old"], policy.Evaluate(snapshots, Now).Kept.Keys);
        Assert.Equal(["newest"], policy.Evaluate(snapshots, Now).Kept["old"]);
        policy.AlwaysKeepNewest = false;
        Assert.Empty(policy.Evaluate(snapshots, Now).Kept);
    }

    [Fact]
    public void Keep_within_keeps_exactly_the_snapshots_younger_than_the_window()
    {
        var snapshots = Series(18, TimeSpan.FromMinutes(10)); // ages 0, 10, ..., 170 minutes
        var decision = new RetentionPolicy { KeepWithin = TimeSpan.FromHours(1), AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        Assert.Equal(["s00", "s01", "s02", "s03", "s04", "s05"], decision.Kept.Keys.Order());
        Assert.DoesNotContain("s06", decision.Kept.Keys); // exactly one hour old: outside
    }

    [Fact]
    public void Snapshots_from_the_future_are_kept_by_the_window()
    {
        var snapshots = new[] { new SnapshotTime("future", Now.AddMinutes(5)), new SnapshotTime("past", Now.AddDays(-2)) };
        var decision = new RetentionPolicy { KeepWithin = TimeSpan.FromHours(1), AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        Assert.Equal(["future"], decision.Kept.Keys);
    }

    [Fact]
    public void Keep_hourly_keeps_the_newest_of_each_of_the_last_n_hours_with_snapshots()
    {
        // Every 15 minutes from 11:45 back to 07:00.
        var snapshots = Enumerable.Range(0, 20).Select(i => new SnapshotTime($"s{i:D2}", Now.AddMinutes(-15 * (i + 1)))).ToList();
        var decision = new RetentionPolicy { KeepHourly = 3, AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        // 11:45 (hour 11), 10:45 (hour 10), 09:45 (hour 9).
        Assert.Equal(["s00", "s04", "s08"], decision.Kept.Keys.Order());
        Assert.Contains("hourly 2025-03-10 10:00", decision.Kept["s04"]);
    }

    [Fact]
    public void Keep_hourly_skips_hours_without_snapshots()
    {
        var snapshots = new[]
        {
            new SnapshotTime("a", Now.AddHours(-1)),
            new SnapshotTime("b", Now.AddMinutes(-270)), // 07:30
            new SnapshotTime("c", Now.AddMinutes(-290)), // 07:10, same hour as b

            new SnapshotTime("d", Now.AddHours(-9)),
        };
        var decision = new RetentionPolicy { KeepHourly = 3, AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        Assert.Equal(["a", "b", "d"], decision.Kept.Keys.Order());
    }

    [Fact]
    public void Keep_daily_uses_the_configured_time_zone()
    {
        var plusFive = TimeZoneInfo.CreateCustomTimeZone("test+5", TimeSpan.FromHours(5), "test+5", "test+5");
        // 20:00 and 18:00 UTC on March 9 are 01:00 and 23:00 local (+5): different local days.
        var snapshots = new[]
        {
            new SnapshotTime("late", new DateTimeOffset(2025, 3, 9, 20, 0, 0, TimeSpan.Zero)),
            new SnapshotTime("early", new DateTimeOffset(2025, 3, 9, 18, 0, 0, TimeSpan.Zero)),
            new SnapshotTime("earlier", new DateTimeOffset(2025, 3, 9, 10, 0, 0, TimeSpan.Zero)),
        };
        var utc = new RetentionPolicy { KeepDaily = 2, AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        Assert.Equal(["late"], utc.Kept.Keys); // all on March 9 UTC
        var local = new RetentionPolicy { KeepDaily = 2, AlwaysKeepNewest = false, TimeZone = plusFive }.Evaluate(snapshots, Now);
        Assert.Equal(["early", "late"], local.Kept.Keys.Order());
    }

    [Fact]
    public void A_snapshot_is_kept_when_any_rule_keeps_it_and_every_reason_is_reported()
    {
        var snapshots = Series(48, TimeSpan.FromHours(1));
        var decision = new RetentionPolicy { KeepLast = 2, KeepWithin = TimeSpan.FromHours(3), KeepDaily = 2 }.Evaluate(snapshots, Now);
        Assert.Equal(["newest", "last 2", "within 3h", "daily 2025-03-10"], decision.Kept["s00"]);
        Assert.Equal(["within 3h"], decision.Kept["s02"]);
        Assert.Contains("daily 2025-03-09", decision.Kept["s13"]); // s12 is 00:00 on March 10, s13 23:00 on the 9th
        Assert.Equal(decision.Kept.Count + decision.Removed.Count, snapshots.Count);
    }

    [Fact]
    public void Density_keeps_the_window_then_thins_out_logarithmically()
    {
        // Hourly snapshots for 60 days.
        var snapshots = Series(60 * 24, TimeSpan.FromHours(1));
        var window = TimeSpan.FromDays(1);
        var b = TimeSpan.FromHours(1);
        var decision = new RetentionPolicy { KeepWithin = window, DensityBase = b, AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        var times = snapshots.ToDictionary(s => s.Id, s => s.Time);

        // Everything younger than the window.
        Assert.All(snapshots.Where(s => Now - s.Time < window), s => Assert.True(decision.IsKept(s.Id)));

        // Beyond it: bucket k covers ages [(2^k - 1)B, (2^(k+1) - 1)B) past the window; at most one per slot of 2^k B.
        var beyond = snapshots.Where(s => Now - s.Time >= window).ToList();
        var buckets = beyond.GroupBy(s => RetentionPolicy.DensitySlot(Now - s.Time - window, s.Time, b).Bucket).ToList();
        foreach (var bucket in buckets)
        {
            var kept = bucket.Where(s => decision.IsKept(s.Id)).ToList();
            Assert.NotEmpty(kept);
            Assert.True(kept.Count <= 2, $"bucket {bucket.Key} keeps {kept.Count}"); // a bucket spans at most two aligned slots
            var slots = kept.Select(s => RetentionPolicy.DensitySlot(Now - s.Time - window, s.Time, b).Slot).ToList();
            Assert.Equal(slots.Count, slots.Distinct().Count());
        }

        // Logarithmic: ~1400 snapshots beyond the window, about one per bucket kept.
        var keptBeyond = beyond.Count(s => decision.IsKept(s.Id));
        Assert.InRange(keptBeyond, buckets.Count, 2 * buckets.Count);
        Assert.InRange(buckets.Count, 10, 11);

        // Within a slot the oldest snapshot is the one kept.
        foreach (var group in beyond.GroupBy(s => RetentionPolicy.DensitySlot(Now - s.Time - window, s.Time, b)))
        {
            var oldest = group.OrderBy(s => s.Time).First();
            Assert.True(decision.IsKept(oldest.Id));
            Assert.All(group.Where(s => s.Id != oldest.Id), s => Assert.False(decision.IsKept(s.Id)));
        }
    }

    [Fact]
    public void Density_pruned_regularly_keeps_a_density_that_falls_with_age()
    {
        // A snapshot every 10 minutes for 20 days, pruned after each one, as a running service would.
        var policy = new RetentionPolicy { KeepWithin = TimeSpan.FromHours(2), DensityBase = TimeSpan.FromMinutes(10), AlwaysKeepNewest = false };
        var start = Now.AddDays(-20);
        var survivors = new List<SnapshotTime>();
        var now = start;
        for (var i = 0; now < Now; i++, now = now.AddMinutes(10))
        {
            survivors.Add(new SnapshotTime($"s{i:D5}", now));
            var decision = policy.Evaluate(survivors, now);
            survivors = [.. survivors.Where(s => decision.IsKept(s.Id))];
        }

        now = now.AddMinutes(-10);
        var ages = survivors.Select(s => now - s.Time).Order().ToList();
        // The window is kept whole: 12 snapshots in 2 hours.
        Assert.Equal(12, ages.Count(a => a < TimeSpan.FromHours(2)));
        // The history is covered to its start, with few snapshots.
        Assert.True(ages[^1] >= TimeSpan.FromDays(10), $"oldest survivor is only {ages[^1]} old");
        Assert.InRange(survivors.Count, 12 + 8, 12 + 40);
        // Gaps between neighbours grow at most in proportion to age (density ~ 1/age).
        for (var i = 1; i < ages.Count; i++)
        {
            var gap = ages[i] - ages[i - 1];
            var pastWindow = ages[i - 1] > TimeSpan.FromHours(2) ? ages[i - 1] - TimeSpan.FromHours(2) : TimeSpan.Zero;
            Assert.True(gap <= (4 * pastWindow) + TimeSpan.FromMinutes(40), $"gap {gap} after age {ages[i - 1]}");
        }
    }

    [Fact]
    public void Density_without_a_window_starts_thinning_at_age_zero()
    {
        var snapshots = Series(100, TimeSpan.FromMinutes(1));
        var decision = new RetentionPolicy { DensityBase = TimeSpan.FromMinutes(1), AlwaysKeepNewest = false }.Evaluate(snapshots, Now);
        Assert.InRange(decision.Kept.Count, 7, 14); // log2(100) ≈ 7 buckets, at most two slots each
    }

    [Fact]
    public void Evaluation_does_not_depend_on_input_order()
    {
        var snapshots = Series(200, TimeSpan.FromMinutes(37));
        var policy = new RetentionPolicy { KeepLast = 5, KeepHourly = 10, KeepDaily = 3, DensityBase = TimeSpan.FromHours(1), KeepWithin = TimeSpan.FromHours(4) };
        var shuffled = snapshots.OrderBy(s => s.Id.GetHashCode(StringComparison.Ordinal)).ToList();
        Assert.Equal(policy.Evaluate(snapshots, Now).Kept.Keys.Order(), policy.Evaluate(shuffled, Now).Kept.Keys.Order());
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("15m", 900)]
    [InlineData("1h", 3600)]
    [InlineData("7d", 604800)]
    [InlineData("2w", 1209600)]
    [InlineData("1d12h", 129600)]
    public void Durations_parse(string text, int seconds)
    {
        Assert.True(RetentionPolicy.TryParseDuration(text, out var span));
        Assert.Equal(TimeSpan.FromSeconds(seconds), span);
    }

    [Theory]
    [InlineData("")]
    [InlineData("h")]
    [InlineData("10")]
    [InlineData("5y")]
    [InlineData("-1h")]
    [InlineData("1h 2m")]
    public void Bad_durations_do_not_parse(string text) => Assert.False(RetentionPolicy.TryParseDuration(text, out _));

    /// <summary>Snapshots s00 (newest, at <see cref="Now"/>), s01, ... spaced by <paramref name="step"/>.</summary>
    private static List<SnapshotTime> Series(int count, TimeSpan step) =>
        [.. Enumerable.Range(0, count).Select(i => new SnapshotTime($"s{i:D2}", Now - (step * i)))];
}
