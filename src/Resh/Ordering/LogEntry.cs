namespace Resh.Ordering;

/// <summary>Kinds of events in the ordered log.</summary>
public enum LogEventKind : byte
{
    /// <summary>A client session was opened.</summary>
    Open,

    /// <summary>A request (or an atomic unit of requests) of a session.</summary>
    Request,

    /// <summary>A client session was closed.</summary>
    Close,

    /// <summary>
    /// A service checkpoint: the payload holds the service's flush (and digest) commands, which every
    /// replica runs at exactly this position; its replies are voted like a request's.
    /// </summary>
    Checkpoint,
}

/// <summary>Receives the voted reply of a request submitted by a local client session.</summary>
public interface IReplySink
{
    /// <summary>
    /// Called once with the decided reply bytes (owned by the sink from now on), or with an error reply.
    /// </summary>
    void Complete(ReadOnlyMemory<byte> reply);
}

/// <summary>
/// One event of the ordered log. Everything but the decision fields is immutable once appended;
/// the decision fields are written by the voter under its group lock.
/// </summary>
public sealed class LogEntry
{
    public LogEntry(LogEventKind kind, long sessionId, int context, ReadOnlyMemory<byte> payload, int replyCount, bool replyLastOnly = false, IReplySink? origin = null, int replyHint = 0)
    {
        ReplyHint = replyHint;
        if (kind is LogEventKind.Request or LogEventKind.Checkpoint && replyCount < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(replyCount), replyCount, "a request produces at least one reply");
        }

        Kind = kind;
        SessionId = sessionId;
        Context = context;
        Payload = payload;
        ReplyCount = kind is LogEventKind.Request or LogEventKind.Checkpoint ? replyCount : 0;
        ReplyLastOnly = replyLastOnly;
        Origin = origin;
    }

    private int _submitted;

    /// <summary>Position in the log, assigned when the entry is appended.</summary>
    public long Sequence { get; internal set; } = -1;

    public LogEventKind Kind { get; }

    public long SessionId { get; }

    /// <summary>Protocol-defined session context the payload must run in (RESP: db and protocol version).</summary>
    public int Context { get; }

    /// <summary>The bytes handed to every replica.</summary>
    public ReadOnlyMemory<byte> Payload { get; internal set; }

    /// <summary>How many framed replies the payload produces.</summary>
    public int ReplyCount { get; }

    /// <summary>Protocol-defined hint for comparing the replies (e.g. an unordered collection).</summary>
    public int ReplyHint { get; }

    /// <summary>
    /// The protocol says the request does not change the service's state (RESP: GET, HGETALL, ...). A replica
    /// that is only being brought up to date may skip it once it is decided. Not kept in the log on disk: a
    /// replayed entry counts as a write, which is always safe.
    /// </summary>
    public bool ReadOnly { get; init; }

    /// <summary>Only the last of the <see cref="ReplyCount"/> replies goes back to the client.</summary>
    public bool ReplyLastOnly { get; }

    /// <summary>Where the decided reply goes; null for entries of other gateways, and after release.</summary>
    public IReplySink? Origin { get; internal set; }

    /// <summary>Stopwatch timestamp of the append, for latency metrics.</summary>
    public long AppendedTimestamp { get; internal set; }

    /// <summary>
    /// Claims the entry for one submission to a sequencer that orders it later (etcd): a second claim is refused,
    /// as the local log refuses a second append, since every other gateway would apply a resubmitted copy twice.
    /// </summary>
    internal bool TryClaimSubmission() => Interlocked.Exchange(ref _submitted, 1) == 0 && Sequence < 0;

    public override string ToString() => $"#{Sequence} {Kind} session {SessionId} ({Payload.Length} bytes)";
}
