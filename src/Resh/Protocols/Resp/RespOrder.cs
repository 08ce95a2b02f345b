using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// The RESP codec's view of the ordered log (<see cref="IOrderObserver"/>), for what only the order can decide.
/// <list type="bullet">
/// <item><b>WATCH</b> (deterministic). WATCH is an ordered request (a marker script that answers 1), so every gateway
/// starts watching the same keys at the same place; every later write to a watched key, found with the key specs
/// of Redis's command table, marks the watching session dirty; the session's next MULTI ... EXEC unit is, at its
/// place in the order, either left as it is or replaced by one that changes nothing and answers the abort. Every
/// gateway sees the same log and decides the same, and the durable log keeps the decided form.</item>
/// <item><b>Blocked sessions</b> (local). A session blocked in this gateway (BLPOP ...) is woken when a write touches
/// one of its keys, and retries through the log; a wake-up only ever causes a retry, so it need not be deterministic.</item>
/// <item><b>Pub/sub and MONITOR</b> (local). Subscriptions change at their ordered markers; PUBLISH is delivered, and
/// MONITOR sessions see each request, at its place in the order.</item>
/// </list>
/// Called under the log's append lock: without watches or blocked sessions it returns after one comparison.
/// </summary>
internal sealed partial class RespOrder : IOrderObserver
{
    // The marker scripts answer integers: every implementation encodes a Lua number alike (Garnet answers a status
    // reply as a bulk string), and the session gives the client Redis's own reply.

    /// <summary>WATCH key... as an ordered request (a script answering 1); its keys are the watched ones.</summary>
    public static readonly byte[] WatchScript = "-- resh: watch\nreturn 1"u8.ToArray();

    /// <summary>UNWATCH (and DISCARD, EXEC's end of a watch) as an ordered request answering 1.</summary>
    public static readonly byte[] UnwatchScript = "-- resh: unwatch\nreturn 1"u8.ToArray();

    /// <summary>(P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE as an ordered request answering 1; ARGV: the command, then the names.</summary>
    public static readonly byte[] SubscribeScript = "-- resh: subscribe\nreturn 1"u8.ToArray();

    /// <summary>The last reply of an aborted transaction (an integer, which no EXEC answers), turned into a null reply for the client.</summary>
    public static readonly byte[] AbortedReply = ":-424242\r\n"u8.ToArray();

    internal static readonly byte[] AbortScript = "-- resh: watch aborted\nreturn -424242"u8.ToArray();
    private static readonly byte[] Ping = "*1\r\n$4\r\nPING\r\n"u8.ToArray();
    private static readonly byte[] EvalHeader = "$4\r\nEVAL\r\n"u8.ToArray();
    private static readonly byte[] WatchBulk = Bulk(WatchScript);
    private static readonly byte[] UnwatchBulk = Bulk(UnwatchScript);
    private static readonly byte[] SubscribeBulk = Bulk(SubscribeScript);

    private readonly RespPubSub _pubsub;

    private readonly Func<long, string?> _address;
    private readonly TimeProvider _clock;
    private readonly Dictionary<long, IClientLink> _monitors = [];
    private int _monitorCount;

    public RespOrder(RespPubSub? pubsub = null, Func<long, string?>? address = null, TimeProvider? clock = null)
    {
        _pubsub = pubsub ?? new RespPubSub();
        _address = address ?? (_ => null);
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>Sessions with an open watch (for tests and status).</summary>
    public int Watching => _watches.Count;

    /// <summary>The configuration CONFIG SET gave the replicas, by place in the log (kept with checkpoints).</summary>
    public RespConfigHistory Config { get; } = new();

    public ReadOnlyMemory<byte>? Request(long sequence, long sessionId, int context, ReadOnlyMemory<byte> payload)
    {
        var replaced = Request(sessionId, context, payload);
        if (replaced is null)
        {
            // A block replaced (aborted by its WATCH) runs nothing of itself on the replicas.
            Config.Observe(sequence, payload.Span);
        }

        return replaced;
    }

    public ReadOnlyMemory<byte>? Request(long sessionId, int context, ReadOnlyMemory<byte> payload)
    {
        var span = payload.Span;
        var db = RespProtocol.DatabaseOf(context);
        if (Volatile.Read(ref _monitorCount) > 0)
        {
            Emit(sessionId, db, span);
        }

        var marker = Marker(span);
        if (marker == WatchScript)
        {
            StartWatch(sessionId, db, span);
            return null;
        }

        if (marker == UnwatchScript)
        {
            Unwatch(sessionId);
            return null;
        }

        if (marker == SubscribeScript)
        {
            ChangeSubscriptions(sessionId, span);
            return null;
        }

        if (_pubsub.Any && IsPublish(span))
        {
            var publish = RespKeySpecs.Commands(span);
            if (publish.Count == 1 && publish[0].Length == 3)
            {
                _pubsub.Publish(publish[0][0].Length == 8, publish[0][1], publish[0][2]);
            }

            return null;
        }

        if (_watches.Count == 0 && Volatile.Read(ref _blockedCount) == 0)
        {
            return null;
        }

        var commands = RespKeySpecs.Commands(span);
        if (commands.Count > 1 && _watches.TryGetValue(sessionId, out var watch)
            && Ascii.EqualsIgnoreCase(commands[0][0], "MULTI"u8))
        {
            Unwatch(sessionId);
            if (watch.Dirty)
            {
                // Aborted: nothing of the block reaches a replica, and it touches nothing.
                return Aborted(commands.Count);
            }
        }

        var keys = new List<byte[]>();
        foreach (var args in commands)
        {
            keys.Clear();
            var wake = Wakes(args);
            switch (RespKeySpecs.Touched(args, keys, out var otherDb))
            {
                case TouchScope.Keys:
                    foreach (var key in keys)
                    {
                        var name = Encoding.Latin1.GetString(key);
                        var wakes = wake == WakeAll || (wake == WakeDestination && key == args[2]);
                        Touch(db, name, wakes);
                        if (otherDb >= 0)
                        {
                            Touch(otherDb, name, wakes);
                        }
                    }

                    break;
                case TouchScope.Database:
                    TouchAll(db);
                    break;
                case TouchScope.All:
                    TouchAll(-1);
                    break;
            }
        }

        return null;
    }

    public void SessionClosed(long sessionId) => Unwatch(sessionId);

    /// <summary>Registers a session blocked on <paramref name="keys"/> of <paramref name="db"/>; dispose it when done.</summary>
    public BlockedSession Block(int db, IEnumerable<byte[]> keys)
    {
        var blocked = new BlockedSession(this, [.. keys.Select(k => (db, Encoding.Latin1.GetString(k)))]);
        lock (_lock)
        {
            foreach (var key in blocked.Keys)
            {
                if (!_blocked.TryGetValue(key, out var set))
                {
                    _blocked[key] = set = [];
                }

                set.Add(blocked);
            }

            _blockedCount++;
        }

        return blocked;
    }

    private void Unblock(BlockedSession blocked)
    {
        lock (_lock)
        {
            foreach (var key in blocked.Keys)
            {
                if (_blocked.TryGetValue(key, out var set) && set.Remove(blocked) && set.Count == 0)
                {
                    _blocked.Remove(key);
                }
            }

            _blockedCount--;
        }
    }

    /// <summary>The marker script of an ordered WATCH or UNWATCH, or null.</summary>
    private static byte[]? Marker(ReadOnlySpan<byte> payload)
    {
        var header = payload.IndexOf("\r\n"u8);
        if (header < 2 || payload[0] != (byte)'*' || !payload[(header + 2)..].StartsWith(EvalHeader))
        {
            return null;
        }

        var rest = payload[(header + 2 + EvalHeader.Length)..];
        return rest.StartsWith(WatchBulk) ? WatchScript : rest.StartsWith(UnwatchBulk) ? UnwatchScript : rest.StartsWith(SubscribeBulk) ? SubscribeScript : null;
    }

    /// <summary>PUBLISH channel message, or SPUBLISH (one command, not inside a transaction).</summary>
    private static bool IsPublish(ReadOnlySpan<byte> payload) =>
        payload.StartsWith("*3\r\n"u8) && (RespKeySpecs.FirstCommandIs(payload, "PUBLISH"u8) || RespKeySpecs.FirstCommandIs(payload, "SPUBLISH"u8));

    /// <summary>EVAL marker 0 command name...: the session's subscriptions change here, in log order.</summary>
    private void ChangeSubscriptions(long sessionId, ReadOnlySpan<byte> payload)
    {
        var commands = RespKeySpecs.Commands(payload);
        if (commands.Count != 1 || commands[0].Length < 4)
        {
            return;
        }

        var args = commands[0];
        var command = Encoding.ASCII.GetString(args[3]).ToLowerInvariant();
        var kind = command switch
        {
            "psubscribe" or "punsubscribe" => SubscriptionKind.Pattern,
            "ssubscribe" or "sunsubscribe" => SubscriptionKind.Shard,
            _ => SubscriptionKind.Channel,
        };

        _pubsub.Change(sessionId, kind, !command.Contains("unsubscribe", StringComparison.Ordinal), args[4..]);
    }

    private void StartWatch(long sessionId, int db, ReadOnlySpan<byte> payload)
    {
        var commands = RespKeySpecs.Commands(payload);
        if (commands.Count != 1 || commands[0].Length < 3 || !RespEncoding.TryParseInteger(commands[0][2], out var count))
        {
            return;
        }

        if (!_watches.TryGetValue(sessionId, out var watch))
        {
            _watches[sessionId] = watch = new Watch();
        }

        for (var i = 0; i < count && 3 + i < commands[0].Length; i++)
        {
            var key = (db, Encoding.Latin1.GetString(commands[0][3 + i]));
            if (watch.Keys.Add(key))
            {
                if (!_watchers.TryGetValue(key, out var sessions))
                {
                    _watchers[key] = sessions = [];
                }

                sessions.Add(sessionId);
            }
        }
    }

    private void Unwatch(long sessionId)
    {
        if (!_watches.Remove(sessionId, out var watch))
        {
            return;
        }

        foreach (var key in watch.Keys)
        {
            if (_watchers.TryGetValue(key, out var sessions) && sessions.Remove(sessionId) && sessions.Count == 0)
            {
                _watchers.Remove(key);
            }
        }
    }

    private const int WakeNone = 0;
    private const int WakeAll = 1;
    private const int WakeDestination = 2;

    /// <summary>
    /// Whose keys a write may give data to, for waking blocked sessions: a pop or a group read gives none (and a blocked
    /// session's own retry, a pop, must not wake it again), RPOPLPUSH and LMOVE only their destination, everything else all its keys.
    /// </summary>
    private static int Wakes(byte[][] args)
    {
        var name = args[0];
        if (Ascii.EqualsIgnoreCase(name, "LPOP"u8) || Ascii.EqualsIgnoreCase(name, "RPOP"u8) || Ascii.EqualsIgnoreCase(name, "LMPOP"u8)
            || Ascii.EqualsIgnoreCase(name, "ZPOPMIN"u8) || Ascii.EqualsIgnoreCase(name, "ZPOPMAX"u8) || Ascii.EqualsIgnoreCase(name, "ZMPOP"u8)
            || (Ascii.EqualsIgnoreCase(name, "EVAL"u8) && args.Length > 1
                && (args[1].AsSpan().SequenceEqual(RespScripts.BlockingPop) || args[1].AsSpan().SequenceEqual(RespStreamScripts.XReadGroup))))
        {
            return WakeNone;
        }

        if (args.Length > 2 && (Ascii.EqualsIgnoreCase(name, "RPOPLPUSH"u8) || Ascii.EqualsIgnoreCase(name, "LMOVE"u8)))
        {
            // A list rotated onto itself gains nothing.
            return args[1].AsSpan().SequenceEqual(args[2]) ? WakeNone : WakeDestination;
        }

        return WakeAll;
    }

    private void Touch(int db, string key, bool wake = true)
    {
        if (_watchers.TryGetValue((db, key), out var sessions))
        {
            foreach (var session in sessions)
            {
                _watches[session].Dirty = true;
            }
        }

        if (wake && Volatile.Read(ref _blockedCount) > 0)
        {
            lock (_lock)
            {
                if (_blocked.TryGetValue((db, key), out var set))
                {
                    foreach (var blocked in set)
                    {
                        blocked.Signal();
                    }
                }
            }
        }
    }

    /// <summary>Every key of <paramref name="db"/> (of every database when -1) counts as touched.</summary>
    private void TouchAll(int db)
    {
        foreach (var watch in _watches.Values)
        {
            if (db < 0 || watch.Keys.Any(k => k.Db == db))
            {
                watch.Dirty = true;
            }
        }

        if (Volatile.Read(ref _blockedCount) > 0)
        {
            lock (_lock)
            {
                foreach (var ((keyDb, _), set) in _blocked)
                {
                    if (db < 0 || keyDb == db)
                    {
                        foreach (var blocked in set)
                        {
                            blocked.Signal();
                        }
                    }
                }
            }
        }
    }

    private static byte[] Bulk(byte[] data)
    {
        var output = new ArrayBufferWriter<byte>();
        RespEncoding.WriteBulk(output, data);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>A unit of <paramref name="replies"/> commands that changes nothing: PINGs, then the abort marker.</summary>
    private static ReadOnlyMemory<byte> Aborted(int replies)
    {
        var output = new ArrayBufferWriter<byte>();
        for (var i = 0; i < replies - 1; i++)
        {
            output.Write(Ping);
        }

        RespScripts.WriteEval(output, AbortScript, keys: 0, args: 0);
        return output.WrittenMemory;
    }

    private sealed class Watch
    {
        public HashSet<(int Db, string Key)> Keys { get; } = [];

        public bool Dirty { get; set; }
    }
}
