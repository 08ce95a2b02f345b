using Resh.Voting;

namespace Resh.Group;

/// <summary>
/// What a replication mode decides beside the mode-agnostic group core: the role of each replica, what to do when the
/// active replicas split, when one is silent, after a suspicion, and the mode's own work over time (mode spare: its
/// passive updates and rejuvenation; the Remus backup: applying what it holds). A policy acts only through the
/// <see cref="IGroupControl"/> it is given; it never takes the group's lock or touches a replica's fields. Every
/// call from the core comes outside the group's lock, except the queries that take a <see cref="GroupView"/>. What a
/// mode does not decide defaults to "every replica active, nothing to wake".
/// </summary>
public interface IGroupPolicy
{
    /// <summary>The mode's name as configured and shown in the status ("resh", "spare", "remus").</summary>
    string Name { get; }

    /// <summary>How many replicas the group runs for <paramref name="faults"/>.</summary>
    int ReplicasFor(int faults) => 2 * faults + 1;

    /// <summary>Why <paramref name="count"/> replicas do not fit f = <paramref name="faults"/>, naming the rule; null when they do.</summary>
    string? ReplicaCountProblem(int faults, int count) => count == ReplicasFor(faults) ? null
        : $"replicas: mode {Name} with faults: {faults} needs exactly 2f+1 = {ReplicasFor(faults)} replicas (got {count}); add or remove entries, or change faults";

    /// <summary>f as the voter sees it: f+1 equal replies decide.</summary>
    int VotingFaults(int faults) => faults;

    /// <summary>Called once, before the group starts.</summary>
    void Attach(IGroupControl control);

    /// <summary>False while the group stands by (the Remus backup before its takeover): no clients, no final checkpoint.</summary>
    bool Serving => true;

    /// <summary>The role a new generation of a replica starts in (<paramref name="first"/>: the group's first start).</summary>
    ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first);

    /// <summary>Whether a new generation in <paramref name="role"/> skips decided reads while it replays.</summary>
    bool SkipsSettledReads(ReplicaRole role, bool first) => false;

    /// <summary>Where a passive replica's update ends (exclusive), from what the view holds.</summary>
    long UpdateTarget(GroupView view);

    /// <summary>Whether replicas can be woken now, to decide without a silent or outvoted active one.</summary>
    bool CanWake(GroupView view) => false;

    /// <summary>Whether an active replica may be parked now (asked under the group's lock by <see cref="IGroupControl.DemoteAsync"/>).</summary>
    bool MayDemote => true;

    /// <summary>Whether the core should tell <see cref="OnSplit"/> when the voters' replies to an entry split.</summary>
    bool WatchesSplits => false;

    /// <summary>The voters' replies to <paramref name="sequence"/> split: no reply can reach the quorum without more voters.</summary>
    void OnSplit(long sequence)
    {
    }

    /// <summary>Voters owe their reply to <paramref name="sequence"/> for reply-timeout (and <see cref="CanWake"/> said yes).</summary>
    void OnSilent(long sequence, IReadOnlyList<int> silent, string reason)
    {
    }

    /// <summary>A replica was suspected: the group may have to be rebalanced.</summary>
    void OnSuspected()
    {
    }

    /// <summary>A vote outcome was released (a decision, a disagreement or a mismatch).</summary>
    void OnReleased(VoteOutcome outcome)
    {
    }

    /// <summary>The mode's own work over time, until the group stops.</summary>
    Task RunAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Activations and rejuvenations so far, for the status.</summary>
    (long Activations, long Rejuvenations) Counters => (0, 0);
}
