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

    [LoggerMessage(EventId = 1215, Level = LogLevel.Warning, Message = "Configuration: {Warning}")]
    public static partial void ConfigWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Warning, Message = "Admin endpoint {Endpoint} not available: {Reason}")]
    public static partial void AdminUnavailable(ILogger logger, System.Net.IPEndPoint endpoint, string reason);

    [LoggerMessage(EventId = 1223, Level = LogLevel.Information, Message = "Admin endpoint {Endpoint} opened after {Waited} once the gateway that held it let it go")]
    public static partial void AdminOpened(ILogger logger, System.Net.IPEndPoint endpoint, TimeSpan waited);

    [LoggerMessage(EventId = 1224, Level = LogLevel.Debug, Message = "Gateway warmed up for the takeover: {Replies} requests through a gateway on a loopback port")]
    public static partial void GatewayWarmedUp(ILogger logger, int replies);

    [LoggerMessage(EventId = 1225, Level = LogLevel.Debug, Message = "The standby's preparation for a takeover ended early: {Reason}")]
    public static partial void PreparationFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1221, Level = LogLevel.Information, Message = "Configuration {Outcome}")]
    public static partial void Reloaded(ILogger logger, string outcome);

    [LoggerMessage(EventId = 1222, Level = LogLevel.Warning, Message = "Configuration {Outcome}")]
    public static partial void ReloadRefused(ILogger logger, string outcome);

    [LoggerMessage(EventId = 1216, Level = LogLevel.Warning, Message = "A checkpoint to get below service.limits.memory failed: {Reason}")]
    public static partial void MemoryCheckpointFailed(ILogger logger, string reason);
}
