namespace Resh.Modes;

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

    /// <summary>Stopped with the group.</summary>
    Down,
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
    long? LastReplay = null);

/// <summary>The whole group as /status shows it.</summary>
public sealed record GroupStatus(string Mode, int Faults, long Head, long Decided, int Voting, bool Ready, IReadOnlyList<ReplicaStatus> Replicas)
{
    /// <summary>The first log entry still held; those before it are covered by <see cref="Checkpoint"/>.</summary>
    public long LogFirst { get; init; }

    /// <summary>The newest verified checkpoint, if any.</summary>
    public VerifiedCheckpoint? Checkpoint { get; init; }
}
