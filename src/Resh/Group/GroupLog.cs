using Microsoft.Extensions.Logging;

namespace Resh.Group;

internal static partial class GroupLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Replica {Replica} generation {Generation} started: pid {Pid}, port {Port}, isolation {Isolation}")]
    public static partial void ReplicaStarted(ILogger logger, string replica, int generation, int? pid, int port, string isolation);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Replica {Replica} suspected: {Reason}")]
    public static partial void ReplicaSuspected(ILogger logger, string replica, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Replica {Replica} recovered: replayed up to #{Applied}, voting again")]
    public static partial void ReplicaRecovered(ILogger logger, string replica, long applied);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Replica {Replica} could not be started: {Reason}")]
    public static partial void ReplicaStartFailed(ILogger logger, string replica, string reason);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Replicas disagree on #{Sequence}: no reply reached {Quorum} votes")]
    public static partial void Disagreement(ILogger logger, long sequence, int quorum);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Fault drill on {Replica}: {Fault} ({Detail})")]
    public static partial void FaultInjected(ILogger logger, string replica, FaultKind fault, string detail);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Debug, Message = "Replica {Replica} mismatch on #{Sequence}")]
    public static partial void Mismatch(ILogger logger, string replica, long sequence);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "Checkpoint #{Sequence} stored as {Snapshot}: {Bytes} bytes, {Added} new, in {Milliseconds:0} ms")]
    public static partial void CheckpointStored(ILogger logger, long sequence, string snapshot, long bytes, long added, double milliseconds);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Checkpoint #{Sequence} failed: {Reason}")]
    public static partial void CheckpointFailed(ILogger logger, long sequence, string reason);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Debug, Message = "Replica {Replica} paused {Milliseconds:0.###} ms for checkpoint #{Sequence} (flush and capture)")]
    public static partial void CheckpointPause(ILogger logger, string replica, long sequence, double milliseconds);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Replica {Replica}: capturing checkpoint #{Sequence} failed: {Reason}")]
    public static partial void CaptureFailed(ILogger logger, string replica, long sequence, string reason);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Warning, Message = "Pruning or compacting the checkpoint store failed: {Reason}")]
    public static partial void PruneFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Warning, Message = "Waking the passive replicas ({Replicas}): {Reason}")]
    public static partial void Activation(ILogger logger, string reason, string replicas);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Information, Message = "Replica {Replica} is active: thawed, replaying to the head")]
    public static partial void ReplicaActivated(ILogger logger, string replica);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Debug, Message = "Replica {Replica} woken: replayed {Entries} entries (#{From}..#{To}) in {Milliseconds:0.#} ms, and votes")]
    public static partial void ReplicaWokenVotes(ILogger logger, string replica, long entries, long from, long to, double milliseconds);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Debug, Message = "Replica {Replica} is passive and frozen at #{Applied}")]
    public static partial void ReplicaParked(ILogger logger, string replica, long applied);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Debug, Message = "Passive replica {Replica} updated by {Method} #{From}..#{Through} in {Milliseconds:0.#} ms")]
    public static partial void PassiveUpdated(ILogger logger, string replica, string method, long from, long through, double milliseconds);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Debug, Message = "Verified #{Sequence}: {Keys} keys changed up to #{Through} read and voted on every voting replica")]
    public static partial void Verified(ILogger logger, long sequence, int keys, long through);

    [LoggerMessage(EventId = 1024, Level = LogLevel.Warning, Message = "Verification read #{Sequence} of {Keys} changed keys {Reason}; those keys are compared at the next checkpoint")]
    public static partial void VerifyNotDecided(ILogger logger, long sequence, int keys, string reason);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Debug, Message = "Passive update #{From}..#{Through} by replay: {Reason}")]
    public static partial void PassiveUpdateByReplay(ILogger logger, long from, long through, string reason);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning, Message = "Passive update skipped: {Reason}")]
    public static partial void PassiveUpdateFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Debug, Message = "Checkpoint #{Sequence}: f+1 replicas flush it; {Resting} rest and go on serving")]
    public static partial void CheckpointRests(ILogger logger, long sequence, string resting);
}
