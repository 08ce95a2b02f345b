using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// The commands whose meaning depends on something each replica has of its own (its clock, its random generator,
/// its hash-table layout, its runtime state), which the gateway answers, rewrites into a deterministic request,
/// or answers from a voted request through a reply transform. docs/compatibility.md lists them all.
/// </summary>
internal sealed partial class RespClientSession
{
    private static readonly byte[] InvalidCursor = "-ERR invalid cursor\r\n"u8.ToArray();
    private static readonly byte[] SyntaxError = "-ERR syntax error\r\n"u8.ToArray();
    private static readonly byte[] UnknownCursor = "-ERR resh: unknown or expired cursor; start the iteration again from 0\r\n"u8.ToArray();
    private static readonly byte[] CountTooLarge = Encoding.ASCII.GetBytes($"-ERR resh: a negative count may ask for at most {RespScripts.MaxRepeatedCount} elements under replication\r\n");
    private static readonly byte[] Role = "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"u8.ToArray();
    private static readonly byte[] EmptyArray = "*0\r\n"u8.ToArray();
    private static readonly byte[] Zero = ":0\r\n"u8.ToArray();
    private static readonly byte[] LatencyDoctor = "$71\r\nresh: the gateway records no latency events; its latencies are in /metrics\r\n"u8.ToArray();

    private SessionAction Owned(RespCommandKind kind, int argc)
    {
        switch (kind)
        {
            case RespCommandKind.Watch:
                return Watch(argc);
            case RespCommandKind.Unwatch when argc != 1:
                return Local(WrongArguments("unwatch"));
            case RespCommandKind.Unwatch:
                // Inside MULTI, UNWATCH is queued and answers +OK; EXEC ends the watch anyway.
                return Unwatch();
            case var _ when RespCommands.IsBlocking(kind):
                return Blocking(kind, argc);
            case RespCommandKind.XReadGroup:
                return XReadGroup(argc);
            case var _ when RespCommands.IsConsumerGroup(kind):
                return Stream(kind, argc);
            case >= RespCommandKind.Subscribe and <= RespCommandKind.PubSub:
                return PubSubCommand(kind, argc);
        }

        if (_inMulti && kind is not (RespCommandKind.SPop or RespCommandKind.SRandMember or RespCommandKind.HRandField or RespCommandKind.ZRandMember or RespCommandKind.RandomKey))
        {
            return AbortBlock(Encoding.ASCII.GetBytes($"-ERR resh: {kind.ToString().ToLowerInvariant()} inside MULTI is not supported under replication\r\n"));
        }

        return kind switch
        {
            RespCommandKind.Ttl or RespCommandKind.PTtl or RespCommandKind.ExpireTime or RespCommandKind.PExpireTime => ExpiryRead(kind, argc),
            RespCommandKind.HTtl or RespCommandKind.HPTtl => HashExpiryRead(kind, argc),
            RespCommandKind.Time when argc == 1 => Time(),
            RespCommandKind.LastSave when argc == 1 => Local(RespReplyReader.Integer(_protocol.LastSave.ToUnixTimeSeconds())),
            RespCommandKind.Role when argc == 1 => Local(Role),
            RespCommandKind.Scan or RespCommandKind.SScan or RespCommandKind.HScan or RespCommandKind.ZScan => Scan(kind, argc),
            RespCommandKind.SPop or RespCommandKind.SRandMember or RespCommandKind.HRandField or RespCommandKind.ZRandMember or RespCommandKind.RandomKey => Random(kind, argc),
            RespCommandKind.Info => Submit(_parser.Request, RespReplyOrder.Unvoted, new InfoTransform(_protocol)),
            RespCommandKind.Config => Config(argc),
            RespCommandKind.Object when argc >= 2 && (Is(1, "IDLETIME"u8) || Is(1, "FREQ"u8)) => Submit(_parser.Request, RespReplyOrder.Unvoted),
            RespCommandKind.Memory when argc >= 2 && !Is(1, "PURGE"u8) && !Is(1, "HELP"u8) => Submit(_parser.Request, RespReplyOrder.Unvoted),
            RespCommandKind.SlowLog when argc >= 2 && !Is(1, "HELP"u8) => SlowLog(argc),
            RespCommandKind.Latency when argc >= 2 && !Is(1, "HELP"u8) => Latency(argc),
            _ => Submit(_parser.Request, RespReplyOrder.Ordered),
        };
    }

    private bool Is(int index, ReadOnlySpan<byte> word) => _parser.Has(index) && Ascii.EqualsIgnoreCase(_parser.Arg(index), word);

    private SessionAction Submit(ReadOnlyMemory<byte> bytes, int hint, IReplyTransform? transform = null) =>
        new(SessionActionKind.Submit, bytes, Context, ReplyHint: hint, Transform: transform);

    /// <summary>TTL, PTTL, EXPIRETIME, PEXPIRETIME: the voted PEXPIRETIME, read against the gateway's clock at release.</summary>
    private SessionAction ExpiryRead(RespCommandKind kind, int argc)
    {
        if (argc != 2)
        {
            return Submit(_parser.Request, RespReplyOrder.Ordered);
        }

        _out.Reset();
        RespEncoding.WriteArrayHeader(_out, 2);
        RespEncoding.WriteBulk(_out, "PEXPIRETIME"u8);
        _out.Write(_parser.RawArg(1));
        return Submit(_out.WrittenMemory, RespReplyOrder.Ordered, new ExpiryReadTransform(kind, _protocol.Clock));
    }

    /// <summary>HTTL, HPTTL (Redis 7.4): the voted HPEXPIRETIME of the fields, read against the gateway's clock at release.</summary>
    private SessionAction HashExpiryRead(RespCommandKind kind, int argc)
    {
        if (argc < 3)
        {
            return Submit(_parser.Request, RespReplyOrder.Ordered);
        }

        _out.Reset();
        RespEncoding.WriteArrayHeader(_out, argc);
        RespEncoding.WriteBulk(_out, "HPEXPIRETIME"u8);
        _out.Write(_parser.RawFrom(1));
        return Submit(_out.WrittenMemory, RespReplyOrder.Ordered, new HashExpiryReadTransform(kind == RespCommandKind.HTtl, _protocol.Clock));
    }

    private SessionAction Time()
    {
        var micros = (_protocol.Clock.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        _out.Reset();
        RespEncoding.WriteArrayHeader(_out, 2);
        RespEncoding.WriteBulk(_out, micros / 1_000_000);
        RespEncoding.WriteBulk(_out, micros % 1_000_000);
        return Local(_out.WrittenMemory);
    }

    /// <summary>SCAN cursor [MATCH p] [COUNT n] [TYPE t]; SSCAN/HSCAN/ZSCAN key cursor [MATCH p] [COUNT n].</summary>
    private SessionAction Scan(RespCommandKind kind, int argc)
    {
        var at = kind == RespCommandKind.Scan ? 1 : 2;
        if (argc < at + 1 || argc > RespRequestParser.TrackedArguments || (argc - at - 1) % 2 != 0)
        {
            return argc < at + 1 || argc > RespRequestParser.TrackedArguments ? Submit(_parser.Request, RespReplyOrder.Ordered) : Local(SyntaxError);
        }

        if (!ulong.TryParse(_parser.Arg(at), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var cursor))
        {
            return Local(InvalidCursor);
        }

        var count = 10;
        byte[]? match = null;
        byte[]? type = null;
        for (var i = at + 1; i < argc; i += 2)
        {
            if (Is(i, "COUNT"u8))
            {
                if (!RespEncoding.TryParseInteger(_parser.Arg(i + 1), out var value) || value > int.MaxValue)
                {
                    return Local(NotInteger);
                }

                if (value < 1)
                {
                    return Local(SyntaxError);
                }

                count = (int)value;
            }
            else if (Is(i, "MATCH"u8))
            {
                match = _parser.Arg(i + 1).ToArray();
                if (match is [(byte)'*'])
                {
                    match = null;
                }
            }
            else if (kind == RespCommandKind.Scan && Is(i, "TYPE"u8))
            {
                type = _parser.Arg(i + 1).ToArray();
            }
            else
            {
                return Local(SyntaxError);
            }
        }

        if (cursor != 0)
        {
            _out.Reset();
            return _protocol.Cursors.TryNext(cursor, count, match, _out) ? Local(_out.WrittenMemory) : Local(UnknownCursor);
        }

        _out.Reset();
        var unit = 1;
        var hint = RespReplyOrder.UnorderedElements;
        switch (kind)
        {
            case RespCommandKind.Scan when type is null:
                RespEncoding.WriteArrayHeader(_out, 2);
                RespEncoding.WriteBulk(_out, "KEYS"u8);
                RespEncoding.WriteBulk(_out, match ?? "*"u8.ToArray());
                break;
            case RespCommandKind.Scan:
                RespScripts.WriteEval(_out, RespScripts.KeysOfType, keys: 0, args: 2);
                RespEncoding.WriteBulk(_out, match ?? "*"u8.ToArray());
                RespEncoding.WriteBulk(_out, type!);
                break;
            case RespCommandKind.SScan:
                RespEncoding.WriteArrayHeader(_out, 2);
                RespEncoding.WriteBulk(_out, "SMEMBERS"u8);
                _out.Write(_parser.RawArg(1));
                break;
            case RespCommandKind.HScan:
                RespEncoding.WriteArrayHeader(_out, 2);
                RespEncoding.WriteBulk(_out, "HGETALL"u8);
                _out.Write(_parser.RawArg(1));
                unit = 2;
                hint = RespReplyOrder.UnorderedPairs;
                break;
            default:
                RespEncoding.WriteArrayHeader(_out, 5);
                RespEncoding.WriteBulk(_out, "ZRANGE"u8);
                _out.Write(_parser.RawArg(1));
                RespEncoding.WriteBulk(_out, "0"u8);
                RespEncoding.WriteBulk(_out, "-1"u8);
                RespEncoding.WriteBulk(_out, "WITHSCORES"u8);
                unit = 2;
                hint = RespReplyOrder.Ordered;
                break;
        }

        return Submit(_out.WrittenMemory, hint, new ScanStartTransform(_protocol.Cursors, unit, count, match));
    }

    /// <summary>SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, RANDOMKEY as one script with the gateway's seed.</summary>
    private SessionAction Random(RespCommandKind kind, int argc)
    {
        var keyed = kind != RespCommandKind.RandomKey;
        var maxArgs = kind switch
        {
            RespCommandKind.RandomKey => 1,
            RespCommandKind.SPop or RespCommandKind.SRandMember => 3,
            _ => 4,
        };
        var valid = keyed ? argc >= 2 && argc <= maxArgs : argc == 1;
        long count = 0;
        if (valid && argc >= 3)
        {
            valid = RespEncoding.TryParseInteger(_parser.Arg(2), out count) && (kind != RespCommandKind.SPop || count >= 0);
        }

        if (valid && argc == 4)
        {
            valid = Is(3, kind == RespCommandKind.HRandField ? "WITHVALUES"u8 : "WITHSCORES"u8);
        }

        if (!valid)
        {
            // Malformed: every replica refuses it with the same error, whatever its random state.
            return Queue(_parser.Request, RespReplyOrder.Ordered);
        }

        if (count < -RespScripts.MaxRepeatedCount)
        {
            return _inMulti ? AbortBlock(CountTooLarge) : Local(CountTooLarge);
        }

        var op = kind switch
        {
            RespCommandKind.SPop => "spop"u8,
            RespCommandKind.SRandMember => "srandmember"u8,
            RespCommandKind.HRandField => "hrandfield"u8,
            RespCommandKind.ZRandMember => "zrandmember"u8,
            _ => "randomkey"u8,
        };
        _out.Reset();
        RespScripts.WriteEval(_out, RespScripts.Random, keys: keyed ? 1 : 0, args: 5);
        if (keyed)
        {
            _out.Write(_parser.RawArg(1));
        }

        RespEncoding.WriteBulk(_out, System.Random.Shared.Next(1, int.MaxValue - 1));
        RespEncoding.WriteBulk(_out, op);
        if (argc >= 3)
        {
            RespEncoding.WriteBulk(_out, count);
        }
        else
        {
            RespEncoding.WriteBulk(_out, ""u8);
        }

        RespEncoding.WriteBulk(_out, argc == 4 ? "1"u8 : "0"u8);
        RespEncoding.WriteBulk(_out, _protover == 3 ? "1"u8 : "0"u8);
        return Queue(_out.WrittenMemory, RespReplyOrder.Ordered);
    }

    /// <summary>Submits, or inside MULTI queues, a rewritten request.</summary>
    private SessionAction Queue(ReadOnlyMemory<byte> bytes, int hint) =>
        _inMulti ? Queue(bytes.Span) : Submit(bytes, hint);

    /// <summary>CONFIG GET is voted without the per-replica values; CONFIG SET of what resh manages is refused.</summary>
    private SessionAction Config(int argc)
    {
        if (argc >= 2 && Is(1, "GET"u8))
        {
            return Submit(_parser.Request, RespReplyOrder.ConfigPairs, new ConfigGetTransform(_protocol));
        }

        if (argc >= 2 && Is(1, "REWRITE"u8))
        {
            return Local("-ERR resh: config rewrite is not supported under replication: replicas are configured through resh\r\n"u8.ToArray());
        }

        if (argc >= 4 && Is(1, "SET"u8))
        {
            for (var i = 2; i < argc && _parser.Has(i); i += 2)
            {
                var name = Encoding.ASCII.GetString(_parser.Arg(i));
                if (RespReplyOrder.PerReplicaConfig.Contains(name) || RespProfile.ManagedConfig.TryGetValue(name, out _))
                {
                    var why = RespProfile.ManagedConfig.GetValueOrDefault(name, "each replica has its own");
                    return Local(ProtocolText.OneLine("-ERR resh: ", $"config set {name.ToLowerInvariant()} is not supported under replication: {why}", "\r\n"));
                }
            }
        }

        return Submit(_parser.Request, RespReplyOrder.Ordered);
    }

    private SessionAction SlowLog(int argc) => argc switch
    {
        _ when Is(1, "GET"u8) && argc <= 3 => Local(EmptyArray),
        2 when Is(1, "LEN"u8) => Local(Zero),
        2 when Is(1, "RESET"u8) => Local(Ok),
        _ => Submit(_parser.Request, RespReplyOrder.Ordered),
    };

    private SessionAction Latency(int argc) => argc switch
    {
        2 when Is(1, "LATEST"u8) => Local(EmptyArray),
        3 when Is(1, "HISTORY"u8) => Local(EmptyArray),
        _ when Is(1, "RESET"u8) => Local(Zero),
        2 when Is(1, "DOCTOR"u8) => Local(LatencyDoctor),
        _ when Is(1, "HISTOGRAM"u8) => Local(_protover == 3 ? "%0\r\n"u8.ToArray() : EmptyArray),
        _ => Submit(_parser.Request, RespReplyOrder.Ordered),
    };

    /// <summary>The keeper learns of a key that may carry a deadline under a new name or in another database.</summary>
    private void CheckMovedDeadline(RespCommandKind kind, int argc)
    {
        if (_protocol.Keeper is not { } keeper || argc < 3 || !_parser.Has(2))
        {
            return;
        }

        var now = _protocol.NowMillis();
        switch (kind)
        {
            case RespCommandKind.Rename or RespCommandKind.RenameNx:
                keeper.Schedule(_db, _parser.Arg(2), now);
                break;
            case RespCommandKind.Move:
                if (RespEncoding.TryParseInteger(_parser.Arg(2), out var db) && db >= 0 && db < _protocol.Databases)
                {
                    keeper.Schedule((int)db, _parser.Arg(1), now);
                }

                break;
            case RespCommandKind.Copy:
                var target = _db;
                for (var i = 3; i + 1 < argc && _parser.Has(i + 1); i++)
                {
                    if (Is(i, "DB"u8) && RespEncoding.TryParseInteger(_parser.Arg(i + 1), out var to) && to >= 0 && to < _protocol.Databases)
                    {
                        target = (int)to;
                    }
                }

                keeper.Schedule(target, _parser.Arg(2), now);
                break;
        }
    }
}
