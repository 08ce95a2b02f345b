using Microsoft.Extensions.Logging;
using Resh.Diagnostics;

namespace Resh.Group;

/// <summary>
/// The narrow surface through which a policy acts on the group. Every method takes the group's lock itself and
/// re-checks what it acts on, so a policy works from a <see cref="GroupView"/> that may already be stale.
/// </summary>
public interface IGroupControl
{
    GroupOptions Options { get; }

    ReshMetrics Metrics { get; }

    EventJournal Events { get; }

    ILogger Logger { get; }

    /// <summary>The clock the group decides by; a policy times its own decisions (activations, cadences) by it too.</summary>
    TimeProvider Clock { get; }

    /// <summary>True once the group stops.</summary>
    bool Stopping { get; }

    /// <summary>A consistent snapshot of the replicas, the voters and the log.</summary>
    GroupView View();

    /// <summary>Whether the entry at <paramref name="sequence"/> is decided (or truncated), i.e. no longer open.</summary>
    bool IsSettled(long sequence);

    /// <summary>Turns a passive replica active: thawed, replaying to the head, voting once it reaches an undecided entry.</summary>
    Task WakeAsync(int replica);

    /// <summary>Takes an active replica out of voting and parks it as a passive one, if more than the quorum still vote and the policy still allows it.</summary>
    Task DemoteAsync(int replica);

    /// <summary>
    /// Thaws every passive replica at rest behind <paramref name="target"/>, brings it up to there (by replay, or by state
    /// and then replay, as <paramref name="method"/> says), and freezes it again.
    /// </summary>
    Task UpdatePassivesAsync(long target, PassiveUpdateMethod method, CancellationToken cancellationToken);

    /// <summary>Appends the service's digest command and waits (bounded) until it is decided: passive replicas replaying it compare states.</summary>
    Task ProbeDigestAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Suspects a replica, if it still runs <paramref name="generation"/>.</summary>
    void Suspect(int replica, int generation, string kind, string reason);

    /// <summary>Discards an active replica that votes (proactive recovery), if it still runs <paramref name="generation"/>; false otherwise.</summary>
    bool Retire(int replica, int generation);

    /// <summary>The newest verified checkpoint, or null.</summary>
    VerifiedCheckpoint? NewestCheckpoint { get; }

    /// <summary>Takes a checkpoint now (see <see cref="ReplicaGroup.CheckpointNowAsync"/>).</summary>
    Task<VerifiedCheckpoint?> CheckpointNowAsync(TimeSpan timeout);

    /// <summary>Runs the group's checks of silent and lagging replicas now.</summary>
    void CheckNow();
}

/// <summary>How a passive replica is brought up to date.</summary>
public enum PassiveUpdateMethod
{
    /// <summary>By whichever of the two costs less, as measured on earlier updates (state only where the protocol can).</summary>
    Auto,

    /// <summary>It runs every write again.</summary>
    Replay,

    /// <summary>It is given the state the writes changed, read from the replicas that vote (where the protocol can; else replay).</summary>
    State,
}

/// <summary>One replica in a <see cref="GroupView"/>.</summary>
public sealed record ReplicaView(int Index, string Id, ReplicaRole Role, ReplicaState State, int Generation, long Applied, bool Votes, long StartedTimestamp, long ActivatedTimestamp);

/// <summary>A snapshot of the group: its replicas, its quorum and voters, and its log.</summary>
public sealed record GroupView(IReadOnlyList<ReplicaView> Replicas, int Quorum, int Voters, long LogFirst, long LogHead, long LogCount, long SettledBelowHead);
