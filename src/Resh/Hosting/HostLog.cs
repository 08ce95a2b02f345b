using Microsoft.Extensions.Logging;

namespace Resh.Hosting;

internal static partial class HostLog
{
    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Mode {Mode}: f={Faults}, {Replicas} replicas of {Protocol}, state in {StateDirectory}")]
    public static partial void Starting(ILogger logger, string mode, int faults, int replicas, string protocol, string stateDirectory);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Serving on {Listen}; admin on {Admin}")]
    public static partial void Serving(ILogger logger, System.Net.IPEndPoint listen, string admin);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Information, Message = "Controlled shutdown: draining clients (up to {Timeout})")]
    public static partial void Draining(ILogger logger, TimeSpan timeout);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Information, Message = "Ordered log restored from disk: {Entries} entries, replayed into every replica (fsync {Fsync})")]
    public static partial void Restored(ILogger logger, int entries, Ordering.LogFsync fsync);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Information, Message = "Starting from checkpoint #{Sequence} ({Snapshot}, taken {Time:u})")]
    public static partial void CheckpointRestored(ILogger logger, long sequence, string snapshot, DateTimeOffset time);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Information, Message = "Final checkpoint: #{Sequence} {Snapshot}")]
    public static partial void FinalCheckpoint(ILogger logger, long sequence, string snapshot);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Information, Message = "Backup of {Primary} ready: its replica holds the log from #{First}, applied every {Interval}")]
    public static partial void BackupReady(ILogger logger, string primary, long first, TimeSpan interval);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Warning, Message = "Taking over as primary in term {Term}: {Detail}")]
    public static partial void TakingOver(ILogger logger, ulong term, string detail);

    [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "Takeover command failed: {Reason}")]
    public static partial void TakeoverCommandFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Warning, Message = "Admin endpoint {Endpoint} not available: {Reason}")]
    public static partial void AdminUnavailable(ILogger logger, System.Net.IPEndPoint endpoint, string reason);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Information, Message = "Took over in {Milliseconds:0} ms after the primary was declared lost; serving")]
    public static partial void TookOver(ILogger logger, double milliseconds);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Information, Message = "Going on from the checkpoint at #{Sequence}: the log after it comes from etcd revision {Revision} on")]
    public static partial void EtcdResumed(ILogger logger, long sequence, long revision);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Warning, Message = "etcd compacted the history this host needed: took the checkpoint at #{Sequence} from member {Member} ({Url}), stored as {Snapshot}")]
    public static partial void PeerCheckpoint(ILogger logger, int member, string url, long sequence, string snapshot);
}
