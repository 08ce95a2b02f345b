using Resh.Group;
using Resh.Modes;
using Resh.Remus;

namespace Resh.Tests.Group;

/// <summary>
/// The group core with every mode's policy, on in-process replicas and a fake clock: each test walks one fault
/// (or one decision of a policy) through its steps and checks what clients get and what the group did. The
/// same faults run against real processes in the integration tests.
/// </summary>
public sealed class ReplicaGroupTests
{
    [Fact]
    public async Task Resh_AnswersWithTheMajority_AndRebuildsTheCorruptedReplica()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        await h.CorruptAsync("r2", "a", "evil");

        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
        await h.WaitReplayedAsync("r2", 2);
        await h.AdvanceUntilAsync(() => h.Replica("r2") is { Generation: 2, State: "up" }, h.Options.ReplyTimeout, "r2 rebuilt and voting");
        Assert.Contains("mismatch", h.Named("+replica-suspected", "r2").Single().Detail, StringComparison.Ordinal);
        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
    }

    [Fact]
    public async Task Decided_entries_are_held_as_records_and_a_rebuilt_replica_replays_them()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3);
        var replies = new List<Task<string>>();
        for (var i = 0; i < 5_000; i++)
        {
            replies.Add(h.Send($"SET k{i % 100} {i}", session: 1 + (i % 8)));
        }

        Assert.All(await Task.WhenAll(replies).WaitAsync(GroupHarness.Timeout), r => Assert.Equal("+OK\r\n", r));
        await h.WaitUntilAsync(() => h.Group.Status().Replicas.All(r => r.Applied >= h.Log.Head), "every replica applied the log");

        // Only the entries decided since the last release (every 1,024 decisions) keep their objects.
        Assert.InRange(h.Log.ObjectsHeld, 0, 2_048);

        // A rebuilt replica replays the whole log from the records and agrees with every decided reply.
        await h.CorruptAsync("r2", "k1", "evil");
        Assert.Equal("$4\r\n4901\r\n", await h.RequestAsync("GET k1"));
        await h.WaitReplayedAsync("r2", 2);
        await h.AdvanceUntilAsync(() => h.Replica("r2") is { Generation: 2, State: "up" }, h.Options.ReplyTimeout, "r2 rebuilt and voting");
        Assert.Single(h.Named("+replica-suspected", "r2"));
        Assert.Equal("$4\r\n4999\r\n", await h.RequestAsync("GET k99"));
    }

    /// <summary>Fault of the old group: a hung primary replica in mode remus was never suspected (nobody else answered first).</summary>
    [Fact]
    public async Task Remus_HungSoleReplica_IsSuspectedAfterTheReplyTimeout_AndTheRebuiltOneAnswers()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Remus, 1, 1);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        h.Domains.Newest("r1")!.Pause();

        var get = h.Send("GET a");
        await h.AdvanceUntilAsync(() => h.Named("+replica-suspected", "r1").Count > 0, 3 * h.Options.ReplyTimeout, "the hung sole replica suspected");
        Assert.Contains("no replica answered", h.Named("+replica-suspected", "r1")[0].Detail, StringComparison.Ordinal);
        Assert.Equal("$1\r\n1\r\n", await get.WaitAsync(GroupHarness.Timeout));
        Assert.Equal(2, h.Replica("r1").Generation);
    }

    /// <summary>
    /// Fault of the old group: with one voter, a client read a corrupted value; after a crash every rebuilt replica
    /// replayed the read, answered correctly, differed from the "decided" reply and was rebuilt again, for ever.
    /// </summary>
    [Fact]
    public async Task Remus_ReplayThatDiffersFromTheSoleVotersReply_IsRecordedOnce_AndTheReplicaGoesOn()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Remus, 1, 1);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        await h.CorruptAsync("r1", "a", "evil");
        Assert.Equal("$4\r\nevil\r\n", await h.RequestAsync("GET a"));

        h.Domains.Newest("r1")!.Kill();
        await h.WaitReplayedAsync("r1", 2);
        await h.AdvanceUntilAsync(() => h.Replica("r1") is { Generation: 2, State: "up" }, h.Options.ReplyTimeout, "r1 rebuilt and voting");
        Assert.Single(h.Named("+replay-divergence", "r1"));
        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
        Assert.Equal(2, h.Replica("r1").Generation);
        Assert.Single(h.Named("+replica-suspected", "r1"));
    }

    /// <summary>Fault of the old group: stopping during a recovery restarted replicas with a disposed domain factory.</summary>
    [Fact]
    public async Task Stopping_WhileAReplicaIsRebuilt_StartsNoDomainAfterwards()
    {
        var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3);
        try
        {
            Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
            h.Domains.Newest("r1")!.Kill();
            await h.Group.DisposeAsync().AsTask().WaitAsync(GroupHarness.Timeout);
            var created = h.Domains.Created.Count;

            Assert.All(h.Domains.Created, d => Assert.Equal(Resh.Domains.DomainState.Exited, d.State));
            Assert.Empty(h.Named("+replica-start-failed"));
            Assert.Equal(created, h.Domains.Created.Count);
        }
        finally
        {
            await h.DisposeAsync();
        }
    }

    /// <summary>
    /// Fault of the old group: an active replica rebuilt and stuck in its replay, another active one hung. An entry
    /// that stays undecided for the reply timeout must lead to an action whatever state the replicas are in: the
    /// stalled replay is suspected, its rebuilt replica decides with the healthy one, and the hung voter is suspected for missing a decided entry.
    /// </summary>
    [Fact]
    public async Task Resh_StalledReplayAndAHungVoter_AreBothSuspected_AndTheEntryIsDecided()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));

        h.Domains.HangAfterProbe["r1"] = true;
        h.Domains.Newest("r1")!.Kill();
        await h.WaitUntilAsync(() => h.Replica("r1") is { Generation: 2, State: "recovering" }, "r1 rebuilt and replaying");
        h.Domains.HangAfterProbe.TryRemove("r1", out _);
        h.Domains.Newest("r2")!.Pause();

        var get = h.Send("GET a");
        await h.AdvanceUntilAsync(() => get.IsCompleted, 4 * h.Options.ReplyTimeout, "the read decided");
        Assert.Equal("$1\r\n1\r\n", await get);
        Assert.Contains(h.Named("+replica-suspected", "r1"), e => e.Detail.Contains("replay made no progress", StringComparison.Ordinal));
        await h.AdvanceUntilAsync(() => h.Named("+replica-suspected", "r2").Count > 0, 2 * h.Options.ReplyTimeout, "the hung voter suspected");
        Assert.Contains("after it was decided", h.Named("+replica-suspected", "r2")[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Spare_HungActiveReplica_WakesThePassives_WhichDecide()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Spare, 1, 4);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        h.Domains.Newest("r2")!.Pause();

        var get = h.Send("GET a");
        await h.AdvanceUntilAsync(() => get.IsCompleted, 3 * h.Options.ReplyTimeout, "the read decided by woken passive replicas");
        Assert.Equal("$1\r\n1\r\n", await get);
        Assert.Contains("timeout", h.Named("+activation").First().Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Spare_Split_WakesThePassives_WhichDecide_AndTheWrongReplicaIsRebuilt()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Spare, 1, 4);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        Assert.Equal(["active", "active", "passive", "passive"], h.Group.Status().Replicas.Select(r => r.Role));
        await h.CorruptAsync("r2", "a", "evil");

        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
        Assert.Contains("replies to", h.Named("+activation").Single().Detail, StringComparison.Ordinal);
        await h.WaitUntilAsync(() => h.Named("+replica-suspected", "r2").Count > 0, "r2 suspected");
        Assert.Contains("mismatch", h.Named("+replica-suspected", "r2")[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Spare_Rejuvenation_RotatesAPassiveIn_AndAnActiveOut_OnTheGroupClock()
    {
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Spare, 1, 4, o => o.Spare.RejuvenateEvery = TimeSpan.FromMinutes(10));
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET a 1"));
        Assert.Empty(h.Named("+rejuvenation"));

        await h.AdvanceUntilAsync(() => h.Named("+rejuvenation").Count > 0, TimeSpan.FromMinutes(11), "a rejuvenation", TimeSpan.FromSeconds(30));
        await h.WaitUntilAsync(() => h.Group.Status().Replicas.Count(r => r is { Role: "active", State: "up" }) == 2 && h.Group.Status().Activations + h.Group.Status().Rejuvenations > 0, "two active replicas vote again");
        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
        Assert.Equal(1, h.Group.Status().Rejuvenations);
    }

    [Fact]
    public async Task RemusStandby_AppliesOnItsInterval_AndPromotion_MakesItAnswer()
    {
        var remus = new RemusOptions { ApplyInterval = TimeSpan.FromSeconds(1) };
        var standby = new StandbyPolicy(remus);
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Remus, 1, 1, policy: standby);
        Assert.Equal("passive", h.Replica("r1").Role);
        _ = h.Send("SET a 1");

        await h.AdvanceUntilAsync(() => h.Replica("r1").Applied >= h.Log.Head, TimeSpan.FromSeconds(3), "the standby replica applied the shipped log");
        Assert.Equal("passive", h.Replica("r1").Role);

        await standby.PromoteAsync(CancellationToken.None).WaitAsync(GroupHarness.Timeout);
        Assert.Equal(("active", "up"), (h.Replica("r1").Role, h.Replica("r1").State));
        Assert.Equal("$1\r\n1\r\n", await h.RequestAsync("GET a"));
    }

    /// <summary>
    /// Checkpoints on group time: the writers stop at the checkpoint entry (the barrier) while the files are captured,
    /// f+1 equal captures make it verified and stored, the log before it is forgotten, and a replica rebuilt
    /// afterwards starts from the checkpoint and replays only what follows.
    /// </summary>
    [Fact]
    public async Task Checkpoints_are_taken_on_group_time_truncate_the_log_and_seed_a_rebuilt_replica()
    {
        var checkpoint = new CheckpointOptions { Flush = "PING", Files = ["state.txt"], EveryEntries = 4, Every = null };
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3, checkpoint: checkpoint);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal("+OK\r\n", await h.RequestAsync($"SET k{i} v{i}"));
        }

        // The monitor's tick (group time) appends the checkpoint; capturing, voting and storing it is real I/O.
        var appended = h.Log.Count;
        await h.AdvanceUntilAsync(() => h.Log.Count > appended, h.Options.ReplyTimeout, "a checkpoint appended");
        await h.WaitUntilAsync(() => h.Group.NewestCheckpoint is not null, "a stored checkpoint");
        await h.AdvanceUntilAsync(() => h.Log.First > 0, h.Options.ReplyTimeout, "the log truncated at a later tick");
        var newest = h.Group.NewestCheckpoint!;
        Assert.True(newest.Sequence >= 4, $"checkpoint at #{newest.Sequence}");
        // Forgotten up to the checkpoint at most (a replica still short of it holds the rest back).
        Assert.InRange(h.Log.First, 1, newest.Sequence + 1);
        Assert.Single(await h.Store!.ListAsync(CancellationToken.None));

        h.Domains.Newest("r2")!.Kill();
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET after checkpoint"));
        await h.WaitReplayedAsync("r2", 2);
        await h.AdvanceUntilAsync(() => h.Replica("r2") is { Generation: 2, State: "up" }, h.Options.ReplyTimeout, "r2 rebuilt from the checkpoint");
        Assert.Contains(h.Named("+replica-restored", "r2"), e => e.Detail.Contains($"checkpoint #{newest.Sequence}", StringComparison.Ordinal));
    }

    /// <summary>A checkpoint floor (min-interval): however many entries follow, the next waits until the floor passed.</summary>
    [Fact]
    public async Task A_checkpoint_floor_holds_the_next_one_back_until_it_passed()
    {
        var checkpoint = new CheckpointOptions { Flush = "PING", Files = ["state.txt"], EveryEntries = 2, MinInterval = TimeSpan.FromMinutes(30) };
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3, checkpoint: checkpoint);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("+OK\r\n", await h.RequestAsync($"SET k{i} v{i}"));
        }

        // The floor counts from the start too.
        var appended = h.Log.Count;
        await h.AdvanceUntilAsync(() => h.Log.Count > appended, TimeSpan.FromMinutes(31), "the first checkpoint appended", TimeSpan.FromSeconds(30));
        await h.WaitUntilAsync(() => h.Group.NewestCheckpoint is not null, "the first checkpoint stored");
        var first = h.Group.NewestCheckpoint!.Sequence;
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("+OK\r\n", await h.RequestAsync($"SET later{i} v{i}"));
        }

        // Five entries, more than the interval: the monitor ticks through 20 minutes of group time and appends nothing.
        var writes = h.Log.Count;
        for (var minute = 0; minute < 20; minute++)
        {
            h.Clock.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(5);
        }

        Assert.Equal(writes, h.Log.Count);
        await h.AdvanceUntilAsync(() => h.Log.Count > writes, TimeSpan.FromMinutes(15), "a checkpoint once the floor passed", TimeSpan.FromSeconds(30));
        await h.WaitUntilAsync(() => h.Group.NewestCheckpoint!.Sequence > first, "the second checkpoint stored");
    }

    /// <summary>max-log-bytes: a log holding that much gets its checkpoint before the floor passed, and is truncated behind it.</summary>
    [Fact]
    public async Task A_log_over_its_byte_bound_is_checkpointed_before_the_floor_passed()
    {
        var checkpoint = new CheckpointOptions { Flush = "PING", Files = ["state.txt"], EveryEntries = 1_000_000, MinInterval = TimeSpan.FromHours(1), MaxLogBytes = 1 << 20 };
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3, checkpoint: checkpoint);
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET small v"));

        // Under the bound: the monitor ticks through a minute of group time and appends nothing.
        var appended = h.Log.Count;
        for (var second = 0; second < 60; second++)
        {
            h.Clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        Assert.Equal(appended, h.Log.Count);
        Assert.Null(h.Group.NewestCheckpoint);

        // Two values of 600 KiB: the log holds more than 1 MiB, and a checkpoint follows within a tick or two.
        var value = new string('v', 600 * 1024);
        Assert.Equal("+OK\r\n", await h.RequestAsync($"SET big1 {value}"));
        Assert.Equal("+OK\r\n", await h.RequestAsync($"SET big2 {value}"));
        Assert.True(h.Log.RetainedBytes >= 1 << 20);
        await h.AdvanceUntilAsync(() => h.Group.NewestCheckpoint is not null, TimeSpan.FromSeconds(30), "a checkpoint for the log's size");
        await h.AdvanceUntilAsync(() => h.Log.RetainedBytes < 1 << 20, TimeSpan.FromSeconds(30), "the log truncated behind it");
    }

    /// <summary>max-log-bytes counts what was appended since the last checkpoint: a log held back by someone else starts no checkpoint storm.</summary>
    [Fact]
    public async Task A_log_held_back_over_its_byte_bound_gets_one_checkpoint_per_bound_of_new_entries()
    {
        var checkpoint = new CheckpointOptions { Flush = "PING", Files = ["state.txt"], EveryEntries = 1_000_000, MinInterval = TimeSpan.FromHours(1), MaxLogBytes = 1 << 20 };
        await using var h = await GroupHarness.StartAsync(ReplicationMode.Resh, 1, 3, checkpoint: checkpoint);
        h.Group.AddCheckpointHooks(new HoldEverything());
        var value = new string('v', 600 * 1024);
        Assert.Equal("+OK\r\n", await h.RequestAsync($"SET big1 {value}"));
        Assert.Equal("+OK\r\n", await h.RequestAsync($"SET big2 {value}"));
        await h.AdvanceUntilAsync(() => h.Group.NewestCheckpoint is not null, TimeSpan.FromSeconds(30), "a checkpoint for the log's size");
        var first = h.Group.NewestCheckpoint!.Sequence;

        // The log still holds more than the bound (nothing may be cut), and a small write follows: no second checkpoint.
        Assert.Equal("+OK\r\n", await h.RequestAsync("SET small v"));
        var appended = h.Log.Count;
        for (var second = 0; second < 60; second++)
        {
            h.Clock.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(1);
        }

        Assert.True(h.Log.RetainedBytes >= 1 << 20, "the hook holds the log");
        Assert.Equal(appended, h.Log.Count);
        Assert.Equal(first, h.Group.NewestCheckpoint!.Sequence);
    }

    /// <summary>Keeps every entry of the log, as a replica far behind or a migration's target would.</summary>
    private sealed class HoldEverything : ICheckpointHooks
    {
        public long RetainFrom => 0;
    }
}
