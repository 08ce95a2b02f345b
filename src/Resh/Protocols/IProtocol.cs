using System.Buffers;
using System.Net;

namespace Resh.Protocols;

/// <summary>
/// Everything the gateway needs to know about one wire protocol. A protocol knows where a
/// request ends and where its reply ends, which requests are safe to replicate, and which
/// per-connection state a client session carries. It knows nothing of replicas, ordering or voting.
/// </summary>
public interface IProtocol
{
    /// <summary>Name used in configuration, e.g. "resp", "line", "length-prefixed".</summary>
    string Name { get; }

    /// <summary>Creates the per-client-connection state machine that frames client bytes into actions.</summary>
    IClientSession CreateSession(long sessionId);

    /// <summary>Creates a framer for the reply stream of one replica connection.</summary>
    IReplyFramer CreateReplyFramer();

    /// <summary>
    /// Writes what a replica connection needs to switch from session context <paramref name="from"/>
    /// to <paramref name="to"/> (RESP: SELECT, HELLO). Returns how many replies those bytes produce;
    /// the applier reads and discards them. Context 0 is the state of a fresh connection.
    /// </summary>
    int WriteContextSwitch(int from, int to, IBufferWriter<byte> output);

    /// <summary>
    /// Writes the comparison form of one reply (the bytes the voter compares). Returns false when the
    /// reply is to be compared byte for byte, in which case nothing was written. <paramref name="hint"/> is
    /// the <see cref="SessionAction.ReplyHint"/> the session gave the request (RESP: the reply is an unordered
    /// collection), 0 when it gave none.
    /// </summary>
    bool TryNormalize(ReadOnlySpan<byte> reply, int hint, IBufferWriter<byte> output);

    /// <summary>An error reply carrying <paramref name="message"/>, e.g. "-ERR resh: replicas disagree\r\n".</summary>
    byte[] ErrorReply(string message);

    /// <summary>An error reply with an error code of the protocol's where it has them (RESP: "-OOM message"); else <see cref="ErrorReply"/>.</summary>
    byte[] ErrorReply(string code, string message) => ErrorReply(message);

    /// <summary>
    /// One request carrying an operator's command (e.g. a checkpoint's "SAVE" or "DEBUG DIGEST"), encoded as a
    /// client would send it (RESP: the words, split on blanks, as a multibulk). It produces exactly one reply.
    /// </summary>
    byte[] EncodeCommand(string command);

    /// <summary>Whether one framed reply is an error (RESP: "-" or "!"; the generic protocols: "ERR ").</summary>
    bool IsErrorReply(ReadOnlySpan<byte> reply);

    /// <summary>Protocol-level readiness probe against a freshly started replica (RESP: PING).</summary>
    Task<bool> ProbeAsync(IPEndPoint endpoint, CancellationToken cancellationToken);

    /// <summary>
    /// What of the service's state a checkpoint at <paramref name="sequence"/> does not hold in its files, as labels to
    /// store with it (RESP: the configuration changed by CONFIG SET up to there); null for nothing.
    /// </summary>
    IReadOnlyDictionary<string, string>? CheckpointLabels(long sequence) => null;

    /// <summary>The gateway continues from a checkpoint at <paramref name="sequence"/> stored with <paramref name="labels"/>.</summary>
    void Restored(long sequence, IReadOnlyDictionary<string, string> labels)
    {
    }

    /// <summary>
    /// Requests that give a replica restored from a checkpoint with <paramref name="labels"/> what its files do not
    /// hold, sent to it before it replays the log after the checkpoint (RESP: CONFIG SET of the kept configuration).
    /// </summary>
    IReadOnlyList<byte[]> RestoreRequests(IReadOnlyDictionary<string, string> labels) => [];

    /// <summary>
    /// Called once by the gateway when it starts serving: <paramref name="link"/> lets the protocol submit requests
    /// of its own to the ordered log (RESP: the deletion of expired keys) and read what the gateway knows. The
    /// returned object is disposed when the gateway stops. A protocol without background work returns null.
    /// </summary>
    IAsyncDisposable? Attach(IGatewayLink link) => null;

    /// <summary>
    /// What the protocol must see of the log in its order (RESP: writes to watched keys, for WATCH; to keys a blocked
    /// session waits on), or null when nothing. The host connects it to the ordered log.
    /// </summary>
    IOrderObserver? OrderObserver => null;

    /// <summary>How a replica is brought to the others' state by what a stretch of requests changed, or null: by replay only.</summary>
    IStateTransfer? StateTransfer => null;

    /// <summary>
    /// Fault drill: change one existing piece of state directly in the replica at <paramref name="endpoint"/>,
    /// bypassing the gateway. Returns a description of what was changed.
    /// Throws <see cref="NotSupportedException"/> where the protocol cannot do it.
    /// </summary>
    Task<string> CorruptAsync(IPEndPoint endpoint, CancellationToken cancellationToken);
}

public enum SessionActionKind
{
    /// <summary>
    /// The buffer holds no complete request yet. Nothing was consumed except input the protocol skips
    /// (RESP: empty inline lines and zero-argument multibulk, as Redis skips them), by which the buffer
    /// may have advanced: continue from the advanced buffer.
    /// </summary>
    NeedMoreData,

    /// <summary>Answer the client with <see cref="SessionAction.Bytes"/> without involving replicas.</summary>
    LocalReply,

    /// <summary>Append <see cref="SessionAction.Bytes"/> to the ordered log and answer with the voted reply.</summary>
    Submit,

    /// <summary>The client broke the protocol or a limit: send <see cref="SessionAction.Bytes"/> (an error) and close.</summary>
    Fatal,

    /// <summary>
    /// Nothing was consumed: wait until <see cref="SessionAction.Hold"/> completes, then ask again (RESP: CLIENT PAUSE
    /// holds a request before it is dispatched, so what it fixes, deadlines and ids, is fixed when it runs).
    /// </summary>
    Wait,
}

/// <summary>Which part of a submitted unit's replies goes back to the client.</summary>
public enum ReplySelection
{
    /// <summary>All <see cref="SessionAction.ReplyCount"/> replies, concatenated.</summary>
    All,

    /// <summary>Only the last reply (RESP: the EXEC reply of a MULTI..EXEC block).</summary>
    Last,
}

/// <summary>
/// What the gateway must do with the next unit of client input. <c>ReplyHint</c> is protocol-defined and
/// handed back to <see cref="IProtocol.TryNormalize"/> for every reply to the request (RESP: whether the
/// reply is an unordered collection, whose element order may differ between correct replicas). <c>Barrier</c>: the
/// session reads no further request until this one's reply is sent (a blocking command blocks its client).
/// <c>Hold</c>: what a <see cref="SessionActionKind.Wait"/> waits for.
/// </summary>
public readonly record struct SessionAction(
    SessionActionKind Kind,
    ReadOnlyMemory<byte> Bytes,
    int Context = 0,
    int ReplyCount = 1,
    ReplySelection Selection = ReplySelection.All,
    bool CloseAfterReply = false,
    int ReplyHint = 0,
    bool ReadOnly = false,
    IReplyTransform? Transform = null,
    bool Barrier = false,
    Task? Hold = null)
{
    public static SessionAction NeedMore => new(SessionActionKind.NeedMoreData, ReadOnlyMemory<byte>.Empty, ReplyCount: 0);
}

/// <summary>
/// Turns the voted reply of a request into what the client receives, when the client is released (RESP: a TTL
/// computed from the voted deadline and the gateway's clock, a page of a cursor the gateway keeps). Called once,
/// on the connection's writer, with the decided reply or with an error reply of the gateway.
/// </summary>
public interface IReplyTransform
{
    /// <summary>
    /// The client's reply. May wait (RESP: a blocking command waits for a write to its keys, then retries through
    /// the log); <paramref name="cancellationToken"/> is cancelled when the connection breaks.
    /// </summary>
    ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken);
}

/// <summary>
/// A protocol's view of the ordered log, called in log order by every gateway for every entry, before any replica
/// sees it. What it decides from the log alone is the same on every gateway.
/// </summary>
public interface IOrderObserver
{
    /// <summary>A request of <paramref name="sessionId"/> (0: of no session) at its place in the order; returns a replacement payload producing the same number of replies, or null.</summary>
    ReadOnlyMemory<byte>? Request(long sessionId, int context, ReadOnlyMemory<byte> payload);

    /// <summary>As <see cref="Request(long, int, ReadOnlyMemory{byte})"/>, with the entry's place in the log.</summary>
    ReadOnlyMemory<byte>? Request(long sequence, long sessionId, int context, ReadOnlyMemory<byte> payload) => Request(sessionId, context, payload);

    /// <summary>The session ended at this place in the order.</summary>
    void SessionClosed(long sessionId);
}

/// <summary>What a session may do with its own client connection beyond answering requests.</summary>
public interface IClientLink
{
    /// <summary>The client's address.</summary>
    System.Net.EndPoint? Remote { get; }

    /// <summary>
    /// Sends an unsolicited message (RESP: pub/sub, MONITOR), after the replies queued before it. False when the
    /// client cannot take it (it reads too slowly, or is gone): the connection is then closed.
    /// </summary>
    bool TryPush(ReadOnlyMemory<byte> message);

    /// <summary>Ends the connection (RESP: CLIENT KILL from another session).</summary>
    void Close(string reason);
}

/// <summary>What a protocol may use of the gateway it serves (see <see cref="IProtocol.Attach"/>).</summary>
public interface IGatewayLink
{
    /// <summary>
    /// Appends <paramref name="payload"/> (one request producing one reply) to the ordered log as a request of no
    /// client session, in <paramref name="context"/>, and returns its voted reply (or an error reply).
    /// </summary>
    ValueTask<ReadOnlyMemory<byte>> RequestAsync(ReadOnlyMemory<byte> payload, int context, int replyHint, CancellationToken cancellationToken);

    /// <summary>Client connections open now.</summary>
    int ConnectedClients { get; }

    /// <summary>The address clients connect to.</summary>
    System.Net.IPEndPoint? Listen { get; }

    /// <summary>When the service's state was last saved: the newest verified checkpoint's time, or null without one.</summary>
    DateTimeOffset? LastCheckpoint { get; }
}

/// <summary>
/// Per-client-connection protocol state. Not thread safe: one reader loop drives it.
/// </summary>
public interface IClientSession
{
    /// <summary>
    /// Consumes at most one request (or one locally answered unit) from the front of <paramref name="buffer"/>
    /// and says what to do with it. On anything but NeedMoreData, <paramref name="buffer"/> is advanced
    /// past the consumed bytes (on NeedMoreData, at most past skipped input). The returned bytes stay valid
    /// until the next call. After NeedMoreData, pass the same unconsumed input plus what arrived since.
    /// </summary>
    SessionAction Next(ref ReadOnlySequence<byte> buffer);

    /// <summary>The client went away: anything held (e.g. an open MULTI block) is dropped.</summary>
    void Closed();

    /// <summary>
    /// Called once before the first request with the connection's link: its address, a way to send messages nobody
    /// asked for (RESP: pub/sub, MONITOR), and to close it. A session that needs none ignores it.
    /// </summary>
    void Attach(IClientLink sink)
    {
    }
}

public enum FrameStatus
{
    Incomplete,
    Complete,
    Invalid,
}

/// <summary>Finds reply boundaries in the byte stream of one replica connection.</summary>
public interface IReplyFramer
{
    /// <summary>
    /// Looks for one complete reply at the start of <paramref name="buffer"/>. On Complete,
    /// <paramref name="end"/> is the position just after it. Invalid means the replica broke the protocol.
    /// </summary>
    FrameStatus TryFrame(in ReadOnlySequence<byte> buffer, out SequencePosition end);
}
