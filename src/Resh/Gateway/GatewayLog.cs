using Microsoft.Extensions.Logging;

namespace Resh.Gateway;

internal static partial class GatewayLog
{
    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Gateway listening on {Endpoint} ({Protocol})")]
    public static partial void Listening(ILogger logger, System.Net.EndPoint endpoint, string protocol);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "Session {Session} opened from {Remote}")]
    public static partial void SessionOpened(ILogger logger, long session, System.Net.EndPoint? remote);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Debug, Message = "Session {Session} closed: {Reason}")]
    public static partial void SessionClosed(ILogger logger, long session, string reason);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "Session {Session} closed for a protocol error or limit: {Reason}")]
    public static partial void SessionRejected(ILogger logger, long session, string reason);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "Refused a client: {Clients} clients connected (max-clients)")]
    public static partial void TooManyClients(ILogger logger, int clients);

    [LoggerMessage(EventId = 1106, Level = LogLevel.Error, Message = "Session {Session} failed unexpectedly")]
    public static partial void SessionFailed(ILogger logger, long session, Exception exception);

    [LoggerMessage(EventId = 1107, Level = LogLevel.Error, Message = "Accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1108, Level = LogLevel.Warning, Message = "Session {Session}: its Close could not be ordered ({Reason})")]
    public static partial void SessionCloseNotOrdered(ILogger logger, long session, string reason);

    [LoggerMessage(EventId = 1109, Level = LogLevel.Warning, Message = "Session {Session} from {Remote} disconnected: it does not read its replies ({Limit})")]
    public static partial void ClientCutOff(ILogger logger, long session, System.Net.EndPoint? remote, string limit);

    [LoggerMessage(EventId = 1110, Level = LogLevel.Warning, Message = "The gateway's heap is {Heap} MiB, over service.limits.memory ({Limit} MiB): new requests get an OOM error until it is below")]
    public static partial void MemoryOverLimit(ILogger logger, long heap, long limit);

    [LoggerMessage(EventId = 1111, Level = LogLevel.Information, Message = "The gateway's heap is {Heap} MiB, below service.limits.memory ({Limit} MiB) again: requests are accepted")]
    public static partial void MemoryBelowLimit(ILogger logger, long heap, long limit);
}
