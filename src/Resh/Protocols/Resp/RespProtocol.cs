using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// RESP (Redis serialization protocol, RESP2 and RESP3) for Redis-compatible replicas.
/// Session context: <c>database | (RESP3 ? 1 &lt;&lt; 16 : 0)</c>.
/// </summary>
public sealed class RespProtocol : IProtocol
{
    /// <summary>Version the gateway reports in its HELLO reply.</summary>
    public const string GatewayVersion = "1.0.0";

    /// <summary>Context bit set for sessions speaking RESP3.</summary>
    public const int Resp3Flag = 1 << 16;

    private const int DatabaseMask = 0xFFFF;

    private static readonly byte[] Ping = "*1\r\n$4\r\nPING\r\n"u8.ToArray();
    private static readonly byte[] RandomKey = "*1\r\n$9\r\nRANDOMKEY\r\n"u8.ToArray();

    private readonly TimeProvider _clock;
    private long _lastStreamMillis;

    public RespProtocol()
        : this(new RespOptions())
    {
    }

    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public RespProtocol(RespOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        Options = options;
        MaxInlineBytes = options.MaxInlineBytes;
        MaxBulkBytes = options.MaxBulkBytes;
        MaxArguments = options.MaxArguments;
        MaxQueryBufferBytes = options.MaxQueryBufferBytes;
        MaxQueuedCommands = options.MaxQueuedCommands;
        Databases = options.Databases;
        CodeOnlyErrors = options.ErrorComparison == ErrorComparison.CodeOnly;
        RewritesExpiry = options.ExpiryRewrite is ExpiryRewrite.Absolute or ExpiryRewrite.Owned;
        _clock = options.Clock;
        Cursors = new RespCursors(options.Clock);
        Pause = new RespPause(options.Clock);
        Order = new RespOrder(PubSub, id => Sessions.TryGetValue(id, out var session) ? session.Address : null, options.Clock);
        _started = options.Clock.GetUtcNow();
        if (options.ExpiryRewrite == ExpiryRewrite.Owned)
        {
            Keeper = new RespExpiryKeeper(options.Clock, options.Databases);
        }
        Rejected = new RespCommandSet(options.RejectedCommands);
        Users = new Dictionary<string, string>(options.Users, StringComparer.Ordinal);
    }

    public string Name => "resp";

    /// <summary>The options this protocol was built from (read once, at construction).</summary>
    public RespOptions Options { get; }

    internal long MaxInlineBytes { get; }

    internal long MaxBulkBytes { get; }

    internal int MaxArguments { get; }

    internal long MaxQueryBufferBytes { get; }

    internal int MaxQueuedCommands { get; }

    internal int Databases { get; }

    internal bool CodeOnlyErrors { get; }

    internal bool RewritesExpiry { get; }

    internal RespCommandSet Rejected { get; }

    /// <summary>Users and passwords a session must authenticate as; empty: no authentication.</summary>
    internal IReadOnlyDictionary<string, string> Users { get; }

    /// <summary>The gateway's clock: deadlines, TTLs, TIME, stream ids.</summary>
    internal TimeProvider Clock => _clock;

    /// <summary>The iterations of the SCAN family, kept by the gateway.</summary>
    internal RespCursors Cursors { get; }

    /// <summary>Deletes expired keys through the log when expiry is gateway-owned; null otherwise.</summary>
    internal RespExpiryKeeper? Keeper { get; }

    /// <summary>WATCH decided in log order, and the sessions blocked in this gateway.</summary>
    internal RespOrder Order { get; }

    /// <summary>This gateway's sessions (CLIENT LIST, CLIENT KILL, MONITOR's addresses).</summary>
    internal System.Collections.Concurrent.ConcurrentDictionary<long, RespClientSession> Sessions { get; } = new();

    /// <summary>The address clients connect to, as CLIENT LIST shows it.</summary>
    internal string ListenAddress => _link?.Listen?.ToString() ?? "?";

    /// <summary>This gateway's subscribers.</summary>
    internal RespPubSub PubSub { get; } = new();

    /// <summary>CLIENT PAUSE of this gateway's sessions.</summary>
    internal RespPause Pause { get; }

    public IOrderObserver? OrderObserver => Order;

    /// <summary>Passive replicas brought up to date by keys: DUMP on the voting replicas, RESTORE on the passive one.</summary>
    public IStateTransfer? StateTransfer { get; } = new RespStateTransfer();

    public IReadOnlyDictionary<string, string>? CheckpointLabels(long sequence) => Order.Config.LabelsAt(sequence);

    public void Restored(long sequence, IReadOnlyDictionary<string, string> labels) => Order.Config.Seed(sequence, labels);

    public IReadOnlyList<byte[]> RestoreRequests(IReadOnlyDictionary<string, string> labels) => RespConfigHistory.Requests(labels);

    /// <summary>The gateway this protocol serves (retries of blocked sessions go through it); null before it starts.</summary>
    internal IGatewayLink? Link => _link;

    /// <summary>What LASTSAVE answers: the newest verified checkpoint's time, or when this gateway started.</summary>
    internal DateTimeOffset LastSave => _link?.LastCheckpoint ?? _started;

    private readonly DateTimeOffset _started;
    private IGatewayLink? _link;
    private int _keeperStarted;

    /// <summary>Client connections of the gateway this protocol serves.</summary>
    internal int ConnectedClients => _link?.ConnectedClients ?? 0;

    /// <summary>The port clients connect to, once attached.</summary>
    internal int? ListenPort => _link?.Listen?.Port;

    /// <summary>Starts the expiry keeper on the gateway that serves clients (once; a later gateway of the same host takes over).</summary>
    public IAsyncDisposable? Attach(IGatewayLink link)
    {
        ArgumentNullException.ThrowIfNull(link);
        _link = link;
        if (Keeper is null || Interlocked.Exchange(ref _keeperStarted, 1) != 0)
        {
            return null;
        }

        Keeper.Start(link);
        return Keeper;
    }

    /// <summary>The session context for database <paramref name="database"/> in RESP2 or RESP3.</summary>
    public static int MakeContext(int database, bool resp3) => (database & DatabaseMask) | (resp3 ? Resp3Flag : 0);

    /// <summary>The database a session context runs in.</summary>
    public static int DatabaseOf(int context) => context & DatabaseMask;

    public IClientSession CreateSession(long sessionId) => new RespClientSession(this, sessionId);

    public IReplyFramer CreateReplyFramer() => new RespReplyFramer();

    /// <summary>Writes SELECT when the database differs and HELLO 2/3 when the protocol differs.</summary>
    public int WriteContextSwitch(int from, int to, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var replies = 0;
        var database = DatabaseOf(to);
        if (DatabaseOf(from) != database)
        {
            RespEncoding.WriteArrayHeader(output, 2);
            RespEncoding.WriteBulk(output, "SELECT"u8);
            RespEncoding.WriteBulk(output, database);
            replies++;
        }

        var resp3 = (to & Resp3Flag) != 0;
        if (((from & Resp3Flag) != 0) != resp3)
        {
            RespEncoding.WriteArrayHeader(output, 2);
            RespEncoding.WriteBulk(output, "HELLO"u8);
            RespEncoding.WriteBulk(output, resp3 ? "3"u8 : "2"u8);
            replies++;
        }

        return replies;
    }

    /// <summary>
    /// Unordered collections (<see cref="RespReplyOrder"/>) are compared with their elements sorted; with
    /// <see cref="ErrorComparison.CodeOnly"/>, every error is cut down to its code.
    /// </summary>
    public bool TryNormalize(ReadOnlySpan<byte> reply, int hint, IBufferWriter<byte> output) =>
        hint == RespReplyOrder.StateDump ? RespStateTransfer.TryNormalize(reply, output)
        : (hint != RespReplyOrder.Ordered && RespReplyOrder.TrySortAggregate(reply, hint, output))
        || (CodeOnlyErrors && RespNormalizer.TryNormalizeErrors(reply, output));

    /// <summary>"-ERR " + message + "\r\n", with CR and LF in the message replaced by spaces.</summary>
    public byte[] ErrorReply(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return ProtocolText.OneLine("-ERR ", message, "\r\n");
    }

    /// <summary>"-" + code + " " + message + "\r\n" (e.g. "-OOM ..."), as Redis's coded errors.</summary>
    public byte[] ErrorReply(string code, string message)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(code);
        ArgumentNullException.ThrowIfNull(message);
        return ProtocolText.OneLine("-" + code + " ", message, "\r\n");
    }

    /// <summary>The blank-separated words of <paramref name="command"/> as one multibulk request.</summary>
    public byte[] EncodeCommand(string command)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        return RespEncoding.Command(command.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    public bool IsErrorReply(ReadOnlySpan<byte> reply) => !reply.IsEmpty && reply[0] is (byte)'-' or (byte)'!';

    /// <summary>Connects, sends PING and expects +PONG. False on any failure; throws only on cancellation.</summary>
    public async Task<bool> ProbeAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        try
        {
            using var client = await WireClient.ConnectAsync(endpoint, new RespReplyFramer(), cancellationToken).ConfigureAwait(false);
            var reply = await client.RequestAsync(Ping, cancellationToken).ConfigureAwait(false);
            return reply.AsSpan().SequenceEqual("+PONG\r\n"u8) || reply.AsSpan().SequenceEqual("$4\r\nPONG\r\n"u8);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }

    /// <summary>
    /// Picks a key with RANDOMKEY (database 0 first, then the others) and overwrites it with SET
    /// "resh-corrupted-XXXXXXXX", bypassing the gateway.
    /// </summary>
    /// <exception cref="InvalidOperationException">The replica holds no key, or refused a command.</exception>
    public async Task<string> CorruptAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        using var client = await WireClient.ConnectAsync(endpoint, new RespReplyFramer(), cancellationToken).ConfigureAwait(false);
        for (var database = 0; database < Databases; database++)
        {
            if (database > 0)
            {
                var selected = await client.RequestAsync(RespEncoding.Command("SELECT", database.ToString(System.Globalization.CultureInfo.InvariantCulture)), cancellationToken).ConfigureAwait(false);
                if (!selected.AsSpan().SequenceEqual("+OK\r\n"u8))
                {
                    break;
                }
            }

            var reply = await client.RequestAsync(RandomKey, cancellationToken).ConfigureAwait(false);
            if (reply[0] == (byte)'-')
            {
                throw new InvalidOperationException($"the replica refused RANDOMKEY: {Encoding.UTF8.GetString(reply).TrimEnd()}");
            }

            if (!TryReadBulk(reply, out var key))
            {
                continue;
            }

            var value = "resh-corrupted-" + RandomNumberGenerator.GetHexString(8, lowercase: true);
            var set = new ArrayBufferWriter<byte>();
            RespEncoding.WriteArrayHeader(set, 3);
            RespEncoding.WriteBulk(set, "SET"u8);
            RespEncoding.WriteBulk(set, key);
            RespEncoding.WriteBulk(set, Encoding.ASCII.GetBytes(value));
            var result = await client.RequestAsync(set.WrittenMemory, cancellationToken).ConfigureAwait(false);
            if (!result.AsSpan().SequenceEqual("+OK\r\n"u8))
            {
                throw new InvalidOperationException($"the replica refused SET: {Encoding.UTF8.GetString(result).TrimEnd()}");
            }

            var where = database == 0 ? string.Empty : $" in database {database}";
            return $"key '{ProtocolText.Escape(key)}'{where} overwritten with '{value}'";
        }

        throw new InvalidOperationException("replica holds no key to corrupt");
    }

    internal long NowMillis() => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Milliseconds for an XADD id: the clock, but never behind an id this gateway issued before.</summary>
    internal long NextStreamMillis()
    {
        var now = NowMillis();
        while (true)
        {
            var last = Volatile.Read(ref _lastStreamMillis);
            var next = Math.Max(now, last);
            if (next == last || Interlocked.CompareExchange(ref _lastStreamMillis, next, last) == last)
            {
                return next;
            }
        }
    }

    /// <summary>The data of a bulk reply; false for a null reply ($-1 or _).</summary>
    private static bool TryReadBulk(byte[] reply, out byte[] data)
    {
        data = [];
        var span = reply.AsSpan();
        if (span[0] != (byte)'$')
        {
            return false;
        }

        var lineEnd = span.IndexOf((byte)'\r');
        if (!RespEncoding.TryParseInteger(span[1..lineEnd], out var length) || length < 0)
        {
            return false;
        }

        data = span.Slice(lineEnd + 2, (int)length).ToArray();
        return true;
    }
}
