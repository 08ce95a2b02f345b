using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;
using Resh.Group;
using Resh.Modes;
using Resh.Remus;

namespace Resh.Tests.Modes;

/// <summary>The modes' decisions, against an in-process group (<see cref="FakeGroup"/>): no process, no clock.</summary>
public sealed class ModePolicyTests
{
    private static GroupOptions SpareOptions() => new() { Faults = 1, StartupTimeout = TimeSpan.FromSeconds(5), ReplyTimeout = TimeSpan.FromSeconds(1) };

    /// <summary>Two active replicas that vote, two passive ones at rest.</summary>
    private static (SparePolicy Policy, FakeGroup Group) Spare()
    {
        var group = new FakeGroup(SpareOptions(), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Passive, ReplicaState.Passive), (ReplicaRole.Passive, ReplicaState.Passive));
        var policy = new SparePolicy(new SpareOptions());
        policy.Attach(group);
        return (policy, group);
    }

    [Fact]
    public void Spare_starts_f_plus_one_active_and_rebuilds_a_replica_passive_while_enough_are_active()
    {
        var (policy, group) = Spare();
        using var _ = group;
        var view = group.View();
        Assert.Equal([ReplicaRole.Active, ReplicaRole.Active, ReplicaRole.Passive, ReplicaRole.Passive], Enumerable.Range(0, 4).Select(i => policy.RoleOfNewGeneration(view, i, first: true)));
        Assert.Equal(ReplicaRole.Passive, policy.RoleOfNewGeneration(view, 3, first: false));

        group.Set(1, state: ReplicaState.Suspected);
        Assert.Equal(ReplicaRole.Active, policy.RoleOfNewGeneration(group.View(), 1, first: false));
        Assert.True(policy.SkipsSettledReads(ReplicaRole.Passive, first: true));
        Assert.False(policy.SkipsSettledReads(ReplicaRole.Active, first: true));
    }

    [Fact]
    public void A_split_wakes_every_passive_replica_once_and_the_outvoted_silent_one_is_replaced_when_it_settles()
    {
        var (policy, group) = Spare();
        using var _ = group;
        Assert.True(policy.WatchesSplits);
        policy.OnSilent(42, [1], "timeout: no reply from r2 to #42");
        Assert.Equal([2, 3], group.Woken.Order());

        // While the activation runs nothing more is woken, whatever else goes wrong.
        Assert.False(policy.CanWake(group.View()));
        policy.OnSplit(43);
        Assert.Equal(2, group.Woken.Count);
        Assert.False(((IGroupPolicy)policy).MayDemote);
        Assert.Contains(group.Events.Since(), e => e.Name == "+activation" && e.Detail.Contains("waking r3, r4", StringComparison.Ordinal));

        // The woken replicas catch up and vote, #42 is decided without r2, which never answered it: r2 is replaced.
        group.Set(2, state: ReplicaState.Up);
        group.Set(3, state: ReplicaState.Up);
        policy.Tick();
        Assert.Empty(group.Suspected);
        group.Settled.Add(42);
        group.Set(1, applied: 41);
        policy.Tick();
        var suspected = Assert.Single(group.Suspected);
        Assert.Equal((1, "timeout"), (suspected.Replica, suspected.Kind));
        Assert.Contains(group.Events.Since(), e => e.Name == "+activation-done");
        Assert.Equal((1L, 0L), policy.Counters);
    }

    [Fact]
    public void Too_few_active_replicas_wake_the_passive_ones_and_a_surplus_goes_back_to_passive_newest_first()
    {
        var (policy, group) = Spare();
        using var _ = group;
        group.Set(0, state: ReplicaState.Suspected);
        policy.OnSuspected();
        Assert.Equal([2, 3], group.Woken.Order());
        Assert.Contains(group.Events.Since(), e => e.Name == "+activation" && e.Detail.StartsWith("missing", StringComparison.Ordinal));

        // Three vote now (r2, r3, r4): once the activation is done, the most recently woken goes back to passive.
        group.Set(2, state: ReplicaState.Up);
        group.Set(3, state: ReplicaState.Up);
        policy.Tick();
        Assert.Equal([3], group.Demoted);
    }

    [Fact]
    public async Task Rejuvenation_wakes_the_oldest_passive_replica_and_retires_the_oldest_active_one_once_it_votes()
    {
        var (policy, group) = Spare();
        using var _ = group;
        var rotation = policy.RejuvenateAsync(CancellationToken.None);
        Assert.Equal([2], group.Woken);
        group.Set(2, state: ReplicaState.Up);
        await rotation.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([0], group.Retired);
        Assert.Equal((0L, 1L), policy.Counters);
        Assert.Contains(group.Events.Since(), e => e.Name == "+rejuvenation" && e.Replica == "r1");
    }

    [Fact]
    public async Task Passive_replicas_behind_the_settled_prefix_are_updated_whatever_the_last_update_covered()
    {
        var clock = new FakeTimeProvider();
        using var group = new FakeGroup(SpareOptions(), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Passive, ReplicaState.Passive), (ReplicaRole.Passive, ReplicaState.Passive))
        {
            Clock = clock,
            ApplyUpdates = true,
        };

        // Writes logged before the loop starts, and none after: the passive replicas are still owed them.
        group.Set(2, applied: 50);
        group.Set(3, applied: 50);
        var policy = new SparePolicy(new SpareOptions { UpdateEvery = TimeSpan.FromMilliseconds(200) });
        policy.Attach(group);
        using var stop = new CancellationTokenSource();
        var loop = policy.RunAsync(stop.Token);
        async Task AdvanceUntilAsync(Func<bool> condition, string what)
        {
            var waited = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"timed out waiting for {what}");
                clock.Advance(TimeSpan.FromMilliseconds(50));
                await Task.Delay(1);
            }
        }

        await AdvanceUntilAsync(() => group.Updates.Count == 1, "the first update");
        Assert.Equal([89L, 89L], group.View().Replicas.Where(r => r.Role == ReplicaRole.Passive).Select(r => r.Applied));

        // Entries logged while that update ran settle after it, the log head unchanged: the next interval covers them.
        group.SettledBelow = 100;
        await AdvanceUntilAsync(() => group.Updates.Count == 2, "the second update");
        Assert.Equal([90L, 100L], group.Updates);

        // Nothing owed, nothing done.
        clock.Advance(TimeSpan.FromSeconds(2));
        await stop.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, group.Updates.Count);
    }

    [Fact]
    public void A_passive_update_covers_the_settled_prefix_in_spare_and_everything_held_on_the_remus_backup()
    {
        using var group = new FakeGroup(SpareOptions(), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Passive, ReplicaState.Passive));
        Assert.Equal(90, new SparePolicy(new SpareOptions()).UpdateTarget(group.View()));
        Assert.Equal(101, new StandbyPolicy(new RemusOptions()).UpdateTarget(group.View()));
    }

    [Fact]
    public async Task The_remus_backup_stands_by_passive_and_its_takeover_wakes_its_replica_until_it_votes()
    {
        var options = new GroupOptions { StartupTimeout = TimeSpan.FromSeconds(10) };
        using var group = new FakeGroup(options, (ReplicaRole.Passive, ReplicaState.Passive)) { Quorum = 1 };
        var standby = new StandbyPolicy(new RemusOptions());
        IGroupPolicy policy = standby;
        policy.Attach(group);
        Assert.False(policy.Serving);
        Assert.Equal(ReplicaRole.Passive, policy.RoleOfNewGeneration(group.View(), 0, first: true));
        Assert.False(policy.CanWake(group.View()));

        var takeover = standby.PromoteAsync(CancellationToken.None);
        Assert.Equal(0, Assert.Single(group.Woken.Distinct()));
        group.Set(0, state: ReplicaState.Up);
        await takeover.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(policy.Serving);
        Assert.Equal(ReplicaRole.Active, policy.RoleOfNewGeneration(group.View(), 0, first: false));
    }

    [Fact]
    public void Every_other_mode_is_all_active_and_wakes_nobody()
    {
        using var group = new FakeGroup(new GroupOptions(), (ReplicaRole.Active, ReplicaState.Up), (ReplicaRole.Active, ReplicaState.Suspected), (ReplicaRole.Active, ReplicaState.Up));
        var policy = ModePolicies.For(new ModeOptions { Mode = ReplicationMode.Resh });
        Assert.IsType<ActivePolicy>(policy);
        Assert.IsType<SparePolicy>(ModePolicies.For(new ModeOptions { Mode = ReplicationMode.Spare }));
        Assert.IsType<StandbyPolicy>(ModePolicies.For(new ModeOptions { Mode = ReplicationMode.Remus }, standby: true));
        var primary = ModePolicies.For(new ModeOptions { Mode = ReplicationMode.Remus });
        Assert.IsType<PrimaryPolicy>(primary);
        Assert.Equal((1, 0, "remus"), (primary.ReplicasFor(1), primary.VotingFaults(1), primary.Name));
        Assert.Equal((3, 1, "resh"), (policy.ReplicasFor(1), policy.VotingFaults(1), policy.Name));
        Assert.Equal(ReplicaRole.Active, policy.RoleOfNewGeneration(group.View(), 1, first: false));
        Assert.False(policy.CanWake(group.View()));
        Assert.False(policy.WatchesSplits);
    }
}
