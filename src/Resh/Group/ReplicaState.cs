
namespace Resh.Group;

/// <summary>Where a replica stands in its group.</summary>
public enum ReplicaState
{
    /// <summary>Its domain is being started and probed.</summary>
    Starting,

    /// <summary>Replaying the ordered log; its replies are checked against decided digests, it does not vote yet.</summary>
    Recovering,

    /// <summary>Votes on every request.</summary>
    Up,

    /// <summary>Taken out of voting; its domain is being torn down.</summary>
    Suspected,

    /// <summary>Mode spare: a passive replica at rest, its domain frozen; it applies nothing until its next update or activation.</summary>
    Passive,

    /// <summary>Mode spare: a passive replica thawed and fed the verified log (replies checked against the decided digests); frozen again when done.</summary>
    Updating,

    /// <summary>Stopped with the group.</summary>
    Down,
}

/// <summary>What a replica does in its group.</summary>
public enum ReplicaRole
{
    /// <summary>Executes every request and votes (every replica of mode resh).</summary>
    Active,

    /// <summary>Mode spare: frozen between updates; woken to vote when the active replicas disagree or one misses its reply.</summary>
    Passive,
}

/// <summary>A fault drill.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL the replica's process tree.</summary>
    Crash,

    /// <summary>Freeze the replica (cgroup freezer or SIGSTOP): it stops answering.</summary>
    Hang,

    /// <summary>Write a wrong value for an existing key straight into the replica, bypassing the gateway.</summary>
    Corrupt,

    /// <summary>Delay every reply of the replica.</summary>
    Slow,
}

/// <summary>One replica as /status shows it.</summary>
public sealed record ReplicaStatus(
    string Id,
    string State,
    int? Pid,
    int Port,
    long Applied,
    long Mismatches,
    long Recoveries,
    int Generation,
    double CpuSeconds,
    string? Isolation,
    string? LastSuspicion,
    long? LastReplay = null)
{
    /// <summary>"active" or "passive" (mode spare).</summary>
    public string Role { get; init; } = "active";

    /// <summary>Mode spare: when the replica was last brought up to date as a passive replica, if ever.</summary>
    public DateTimeOffset? LastUpdate { get; init; }
}

/// <summary>The whole group as /status shows it (the host adds what its mode shows beside, see <c>ReshStatus</c>).</summary>
public record GroupStatus(string Mode, int Faults, long Head, long Decided, int Voting, bool Ready, IReadOnlyList<ReplicaStatus> Replicas)
{
    /// <summary>The first log entry still held; those before it are covered by <see cref="Checkpoint"/>.</summary>
    public long LogFirst { get; init; }

    /// <summary>The newest verified checkpoint, if any.</summary>
    public VerifiedCheckpoint? Checkpoint { get; init; }

    /// <summary>How often passive replicas were woken to vote (mode spare).</summary>
    public long Activations { get; init; }

    /// <summary>How often a passive replica replaced the oldest active one, proactive recovery (mode spare).</summary>
    public long Rejuvenations { get; init; }

    /// <summary>How often a passive replica was brought up to date by state instead of replay (mode spare).</summary>
    public long StateUpdates { get; init; }

    /// <summary>Keys changed since the last round compared across the voting replicas between checkpoints (verify-every).</summary>
    public long VerifiedKeys { get; init; }

}
