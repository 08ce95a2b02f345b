using System.Buffers;
using System.Globalization;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// State transfer for Redis by keys. The keys a stretch of the log changed are read from the write table of
/// <see cref="RespKeySpecs"/>; they are read on the voting replicas with DUMP and PEXPIRETIME (in one request, so at
/// one log position), voted with each DUMP compared by its content (<see cref="RdbDigest.TryDumpDigest"/>), and written
/// into another replica with RESTORE ... REPLACE ABSTTL, or DEL where the key is gone.
/// </summary>
internal sealed class RespStateTransfer : IStateTransfer
{
    public IStateChanges NewChanges() => new Changes();

    /// <summary>
    /// The comparison form of a state read's replies (<see cref="RespReplyOrder.StateDump"/>): every DUMP payload is
    /// replaced by the digest of the value it holds (<see cref="RdbDigest.TryDumpDigest"/>), so equal data encoded
    /// differently compares equal; every other reply (deadlines, nils, a payload not read here) stays as it is. False
    /// when the replies cannot be framed (compared byte for byte).
    /// </summary>
    public static bool TryNormalize(ReadOnlySpan<byte> replies, IBufferWriter<byte> output)
    {
        var framer = new RespReplyFramer();
        var all = replies.ToArray();
        var offset = 0;
        while (offset < all.Length)
        {
            if (framer.TryFrame(new ReadOnlySequence<byte>(all, offset, all.Length - offset), out var end) != FrameStatus.Complete)
            {
                return false;
            }

            var reply = all.AsSpan(offset, end.GetInteger() - offset);
            offset = end.GetInteger();
            var header = reply.IndexOf("\r\n"u8);
            if (reply[0] == (byte)'$' && reply[1] != (byte)'-' && RdbDigest.TryDumpDigest(reply[(header + 2)..^2], out var digest))
            {
                output.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"+dump:{digest:x32}\r\n")));
            }
            else
            {
                output.Write(reply);
            }
        }

        return true;
    }

    /// <summary>
    /// Commands whose effect the keys they name do not cover: a client's scripts (they may write keys they do not
    /// declare, and they fill the script cache), configuration, the script cache, whole databases, another database.
    /// </summary>
    private static readonly HashSet<string> Unkeyed = new(StringComparer.OrdinalIgnoreCase)
    {
        "eval", "evalsha", "fcall", "script", "function", "config", "select", "swapdb", "flushall", "flushdb", "move",
        "debug", "acl", "module", "migrate", "restore-asking",
    };

    /// <summary>
    /// The gateway's own scripts (determinism, WATCH, expiry, streams): each writes only the keys it declares, so an
    /// EVAL of one of them counts as a keyed write. A new script of the gateway's belongs here when it does the same.
    /// </summary>
    private static readonly HashSet<string> OwnScripts = new(StringComparer.Ordinal)
    {
        Text(RespScripts.Random), Text(RespScripts.BlockingPop), Text(RespScripts.KeysOfType), Text(RespScripts.XAdd),
        Text(RespStreamScripts.XReadGroup), Text(RespStreamScripts.XClaim), Text(RespStreamScripts.XAutoClaim), Text(RespStreamScripts.XPending),
        Text(RespOrder.WatchScript), Text(RespOrder.UnwatchScript), Text(RespOrder.SubscribeScript), Text(RespOrder.AbortScript),
        Text(RespExpiryKeeper.Check), Text(RespExpiryKeeper.Sweep),
    };

    private static string Text(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    private sealed class Changes : IStateChanges
    {
        private readonly HashSet<(int Db, string Key)> _seen = [];
        private readonly List<(int Db, byte[] Key)> _keys = [];
        private readonly List<byte[]> _touched = [];

        public int Count => _keys.Count;

        public bool Add(int context, ReadOnlySpan<byte> payload)
        {
            var commands = RespKeySpecs.Commands(payload);
            if (commands.Count == 0)
            {
                return false;
            }

            var db = RespProtocol.DatabaseOf(context);
            foreach (var args in commands)
            {
                if (args.Length == 0)
                {
                    continue;
                }

                var own = args.Length > 2 && Ascii.EqualsIgnoreCase(args[0], "EVAL"u8) && OwnScripts.Contains(Text(args[1]));
                if (!own && Unkeyed.Contains(Encoding.ASCII.GetString(args[0])))
                {
                    return false;
                }

                _touched.Clear();
                switch (RespKeySpecs.Touched(args, _touched, out var otherDb))
                {
                    case TouchScope.None:
                        // Not a write in Redis's command table: it changes no key.
                        continue;
                    case TouchScope.Keys when otherDb < 0:
                        foreach (var key in _touched)
                        {
                            if (_seen.Add((db, Encoding.Latin1.GetString(key))))
                            {
                                _keys.Add((db, key));
                            }
                        }

                        continue;
                    default:
                        return false;
                }
            }

            return true;
        }

        public StateRead Read()
        {
            var output = new ArrayBufferWriter<byte>();
            var replies = 0;
            foreach (var step in Plan())
            {
                if (step.Key is null)
                {
                    Select(output, step.Db);
                    replies++;
                    continue;
                }

                Command(output, "DUMP"u8, step.Key);
                Command(output, "PEXPIRETIME"u8, step.Key);
                replies += 2;
            }

            return new StateRead(output.WrittenSpan.ToArray(), replies, RespReplyOrder.StateDump);
        }

        public StateWrite Write(ReadOnlySpan<byte> replies)
        {
            var framer = new RespReplyFramer();
            var rest = new ReadOnlySequence<byte>(replies.ToArray());
            byte[] Next(string what)
            {
                if (framer.TryFrame(rest, out var end) != FrameStatus.Complete)
                {
                    throw new InvalidDataException($"the state read has no complete reply to {what}");
                }

                var reply = rest.Slice(0, end).ToArray();
                rest = rest.Slice(end);
                if (reply[0] is (byte)'-' or (byte)'!')
                {
                    throw new InvalidDataException($"{what} was refused: {Encoding.UTF8.GetString(reply).Trim()}");
                }

                return reply;
            }

            var output = new ArrayBufferWriter<byte>();
            var count = 0;
            foreach (var step in Plan())
            {
                if (step.Key is null)
                {
                    Next("SELECT");
                    Select(output, step.Db);
                    count++;
                    continue;
                }

                var dump = Next("DUMP");
                var deadline = Next("PEXPIRETIME");
                if (deadline[0] != (byte)':' || !RespEncoding.TryParseInteger(deadline.AsSpan(1, deadline.Length - 3), out var at))
                {
                    throw new InvalidDataException($"PEXPIRETIME answered {Encoding.UTF8.GetString(deadline).Trim()}, not an integer");
                }

                if (dump is [(byte)'$', (byte)'-', ..] || dump[0] == (byte)'_')
                {
                    Command(output, "DEL"u8, step.Key);
                    count++;
                    continue;
                }

                if (dump[0] != (byte)'$')
                {
                    throw new InvalidDataException($"DUMP answered a reply of type '{(char)dump[0]}', not a bulk string");
                }

                var header = dump.AsSpan().IndexOf("\r\n"u8);
                var payload = dump.AsSpan(header + 2, dump.Length - header - 4);
                RespEncoding.WriteArrayHeader(output, at > 0 ? 6 : 5);
                RespEncoding.WriteBulk(output, "RESTORE"u8);
                RespEncoding.WriteBulk(output, step.Key);
                RespEncoding.WriteBulk(output, Math.Max(at, 0));
                RespEncoding.WriteBulk(output, payload);
                RespEncoding.WriteBulk(output, "REPLACE"u8);
                if (at > 0)
                {
                    RespEncoding.WriteBulk(output, "ABSTTL"u8);
                }

                count++;
            }

            if (!rest.IsEmpty)
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"the state read answered {rest.Length} bytes more than its requests"));
            }

            return new StateWrite(output.WrittenSpan.ToArray(), count);
        }

        private static void Command(IBufferWriter<byte> output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> key)
        {
            RespEncoding.WriteArrayHeader(output, 2);
            RespEncoding.WriteBulk(output, name);
            RespEncoding.WriteBulk(output, key);
        }

        private static void Select(IBufferWriter<byte> output, int db)
        {
            RespEncoding.WriteArrayHeader(output, 2);
            RespEncoding.WriteBulk(output, "SELECT"u8);
            RespEncoding.WriteBulk(output, db);
        }

        /// <summary>The keys grouped by database, each group behind a SELECT (but database 0 first), and a SELECT 0 at the end.</summary>
        private IEnumerable<(int Db, byte[]? Key)> Plan()
        {
            var current = 0;
            foreach (var group in _keys.GroupBy(k => k.Db).OrderBy(g => g.Key))
            {
                if (group.Key != current)
                {
                    current = group.Key;
                    yield return (current, null);
                }

                foreach (var (_, key) in group)
                {
                    yield return (current, key);
                }
            }

            if (current != 0)
            {
                yield return (0, null);
            }
        }
    }
}
