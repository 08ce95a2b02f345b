using System.Globalization;
using System.Numerics;

namespace Resh.Checkpoints;

/// <summary>A snapshot as retention sees it: an id and a time.</summary>
public readonly record struct SnapshotTime(string Id, DateTimeOffset Time);

/// <summary>
/// Which snapshots to keep, as a density over age. A snapshot is kept when any rule keeps it:
/// <list type="bullet">
/// <item><see cref="KeepWithin"/>: every snapshot younger than the window.</item>
/// <item><see cref="DensityBase"/> (B): beyond the window, age bucket k holds the ages
/// [(2^k - 1)·B, (2^(k+1) - 1)·B) past the window, and keeps at most one snapshot per time slot of
/// 2^k·B: the oldest in the slot. Slots are aligned on absolute time and nest (a slot of 2^(k+1)·B is
/// two of 2^k·B), so as snapshots age the kept set only thins out, and the number kept grows with the
/// logarithm of the history's length.</item>
/// <item><see cref="KeepLast"/> N: the N newest.</item>
/// <item><see cref="KeepHourly"/>/<see cref="KeepDaily"/> N: the newest snapshot of each of the N
/// newest hours/days (in <see cref="TimeZone"/>) that have snapshots.</item>
/// <item><see cref="AlwaysKeepNewest"/>: the newest snapshot, whatever the other rules say.</item>
/// </list>
/// <see cref="Evaluate"/> is a pure function of the snapshot times and "now".
/// </summary>
public sealed class RetentionPolicy
{
    public TimeSpan? KeepWithin { get; set; }

    public TimeSpan? DensityBase { get; set; }

    public int KeepLast { get; set; }

    public int KeepHourly { get; set; }

    public int KeepDaily { get; set; }

    public bool AlwaysKeepNewest { get; set; } = true;

    /// <summary>Where hours and days begin for <see cref="KeepHourly"/> and <see cref="KeepDaily"/>.</summary>
    public TimeZoneInfo TimeZone { get; set; } = TimeZoneInfo.Utc;

    /// <summary>Problems with this policy, each naming its setting; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (KeepWithin is { } within && within < TimeSpan.Zero)
        {
            errors.Add($"retention.keep-within must not be negative (got {within})");
        }

        if (DensityBase is { } b && b < TimeSpan.FromSeconds(1))
        {
            errors.Add($"retention.density must be at least 1s (got {b})");
        }

        if (KeepLast < 0)
        {
            errors.Add($"retention.keep-last must not be negative (got {KeepLast})");
        }

        if (KeepHourly < 0)
        {
            errors.Add($"retention.keep-hourly must not be negative (got {KeepHourly})");
        }

        if (KeepDaily < 0)
        {
            errors.Add($"retention.keep-daily must not be negative (got {KeepDaily})");
        }

        if (KeepWithin is null && DensityBase is null && KeepLast == 0 && KeepHourly == 0 && KeepDaily == 0)
        {
            errors.Add("retention needs at least one rule: keep-within, density, keep-last, keep-hourly or keep-daily");
        }

        return errors;
    }

    /// <summary>Decides, for every snapshot, whether it is kept and why.</summary>
    public RetentionDecision Evaluate(IEnumerable<SnapshotTime> snapshots, DateTimeOffset now)
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors));
        }

        // Newest first; ties broken by id so the result does not depend on input order.
        var ordered = snapshots
            .DistinctBy(s => s.Id)
            .OrderByDescending(s => s.Time)
            .ThenBy(s => s.Id, StringComparer.Ordinal)
            .ToList();
        var reasons = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Keep(string id, string reason)
        {
            if (!reasons.TryGetValue(id, out var list))
            {
                reasons[id] = list = [];
            }

            list.Add(reason);
        }

        if (AlwaysKeepNewest && ordered.Count > 0)
        {
            Keep(ordered[0].Id, "newest");
        }

        for (var i = 0; i < Math.Min(KeepLast, ordered.Count); i++)
        {
            Keep(ordered[i].Id, $"last {KeepLast}");
        }

        var window = KeepWithin ?? TimeSpan.Zero;
        if (KeepWithin is not null)
        {
            foreach (var s in ordered)
            {
                if (now - s.Time < window)
                {
                    Keep(s.Id, $"within {FormatSpan(window)}");
                }
            }
        }

        KeepPerPeriod(ordered, KeepHourly, "hourly", t => new DateTime(t.Year, t.Month, t.Day, t.Hour, 0, 0), "yyyy-MM-dd HH:00", Keep);
        KeepPerPeriod(ordered, KeepDaily, "daily", t => t.Date, "yyyy-MM-dd", Keep);

        if (DensityBase is { } density)
        {
            // Oldest first so the first snapshot seen in a slot is the one kept.
            var seen = new HashSet<(int Bucket, long Slot)>();
            for (var i = ordered.Count - 1; i >= 0; i--)
            {
                var s = ordered[i];
                var age = now - s.Time;
                if (age < window)
                {
                    if (KeepWithin is null)
                    {
                        // A snapshot from the future (clock skew): too young to thin out.
                        Keep(s.Id, "density (future)");
                    }

                    continue;
                }

                var (bucket, slot) = DensitySlot(age - window, s.Time, density);
                if (seen.Add((bucket, slot)))
                {
                    Keep(s.Id, $"density bucket {bucket} (one per {FormatSpan(SlotWidth(density, bucket))})");
                }
            }
        }

        var kept = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (var s in ordered)
        {
            if (reasons.TryGetValue(s.Id, out var list))
            {
                kept[s.Id] = list;
            }
            else
            {
                removed.Add(s.Id);
            }
        }

        return new RetentionDecision(kept, removed);
    }

    /// <summary>The age bucket and the absolute time slot of a snapshot <paramref name="pastWindow"/> older than the window.</summary>
    internal static (int Bucket, long Slot) DensitySlot(TimeSpan pastWindow, DateTimeOffset time, TimeSpan baseInterval)
    {
        var intervals = (ulong)(pastWindow.Ticks / baseInterval.Ticks);
        var bucket = BitOperations.Log2(intervals + 1);
        var width = SlotWidth(baseInterval, bucket);
        return (bucket, time.UtcTicks / width.Ticks);
    }

    private static TimeSpan SlotWidth(TimeSpan baseInterval, int bucket) =>
        bucket >= 62 || baseInterval.Ticks > (long.MaxValue >> bucket) ? TimeSpan.MaxValue : TimeSpan.FromTicks(baseInterval.Ticks << bucket);

    private void KeepPerPeriod(List<SnapshotTime> ordered, int count, string rule, Func<DateTime, DateTime> period, string format, Action<string, string> keep)
    {
        if (count <= 0)
        {
            return;
        }

        var seen = new HashSet<DateTime>();
        foreach (var s in ordered)
        {
            var key = period(TimeZoneInfo.ConvertTime(s.Time, TimeZone).DateTime);
            if (seen.Contains(key))
            {
                continue;
            }

            if (seen.Count == count)
            {
                break;
            }

            seen.Add(key);
            keep(s.Id, $"{rule} {key.ToString(format, CultureInfo.InvariantCulture)}");
        }
    }

    internal static string FormatSpan(TimeSpan span)
    {
        if (span == TimeSpan.MaxValue)
        {
            return "ever";
        }

        if (span.Ticks % TimeSpan.TicksPerDay == 0)
        {
            return $"{span.Ticks / TimeSpan.TicksPerDay}d";
        }

        if (span.Ticks % TimeSpan.TicksPerHour == 0)
        {
            return $"{span.Ticks / TimeSpan.TicksPerHour}h";
        }

        if (span.Ticks % TimeSpan.TicksPerMinute == 0)
        {
            return $"{span.Ticks / TimeSpan.TicksPerMinute}m";
        }

        return span.Ticks % TimeSpan.TicksPerSecond == 0
            ? $"{span.Ticks / TimeSpan.TicksPerSecond}s"
            : span.ToString("c", CultureInfo.InvariantCulture);
    }

    /// <summary>Parses durations such as <c>90s</c>, <c>15m</c>, <c>1h</c>, <c>7d</c>, <c>2w</c>, or combinations like <c>1d12h</c>.</summary>
    public static bool TryParseDuration(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var span = text.AsSpan().Trim();
        long total = 0;
        while (!span.IsEmpty)
        {
            var digits = 0;
            while (digits < span.Length && char.IsAsciiDigit(span[digits]))
            {
                digits++;
            }

            if (digits == 0 || digits == span.Length || !long.TryParse(span[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }

            long unit = char.ToLowerInvariant(span[digits]) switch
            {
                's' => TimeSpan.TicksPerSecond,
                'm' => TimeSpan.TicksPerMinute,
                'h' => TimeSpan.TicksPerHour,
                'd' => TimeSpan.TicksPerDay,
                'w' => 7 * TimeSpan.TicksPerDay,
                _ => 0,
            };
            if (unit == 0 || value > (long.MaxValue - total) / unit)
            {
                return false;
            }

            total += value * unit;
            span = span[(digits + 1)..];
        }

        duration = TimeSpan.FromTicks(total);
        return true;
    }
}

/// <summary>The outcome of <see cref="RetentionPolicy.Evaluate"/>, newest first.</summary>
public sealed class RetentionDecision(IReadOnlyDictionary<string, IReadOnlyList<string>> kept, IReadOnlyList<string> removed)
{
    /// <summary>Kept snapshot ids, each with the rules that keep it.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Kept { get; } = kept;

    public IReadOnlyList<string> Removed { get; } = removed;

    public bool IsKept(string id) => Kept.ContainsKey(id);
}
