using System.Globalization;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// WATCH (decided in log order by <see cref="RespOrder"/>) and the blocking commands. A blocking command cannot go
/// to the replicas as it is (it would block the connection every session shares), so the session sends its
/// non-blocking form; when that finds nothing, the session waits in the gateway, woken by a write in the log to one
/// of its keys, and sends the non-blocking form again, until it gets data or its timeout passes by the gateway's
/// clock. Each attempt is an ordered, voted request, so every replica pops the same element for the same client.
/// </summary>
internal sealed partial class RespClientSession
{
    private static readonly byte[] WatchInMulti = "-ERR WATCH inside MULTI is not allowed\r\n"u8.ToArray();
    private static readonly byte[] TimeoutNotFloat = "-ERR timeout is not a float or out of range\r\n"u8.ToArray();
    private static readonly byte[] TimeoutNotInteger = "-ERR timeout is not an integer or out of range\r\n"u8.ToArray();
    private static readonly byte[] TimeoutNegative = "-ERR timeout is negative\r\n"u8.ToArray();
    private static readonly byte[] XReadDollar = "-ERR resh: XREAD BLOCK with $ is not supported under replication: pass the last id you read\r\n"u8.ToArray();
    private static readonly byte[] BlockedReply = ":-424243\r\n"u8.ToArray();

    private bool _watching;
    private RespOrder.BlockedSession? _blocked;

    private SessionAction Watch(int argc)
    {
        if (_inMulti)
        {
            return AbortBlock(WatchInMulti);
        }

        if (argc < 2 || argc > RespRequestParser.TrackedArguments)
        {
            return argc < 2 ? Local(WrongArguments("watch")) : Local(Encoding.ASCII.GetBytes($"-ERR resh: watch of more than {RespRequestParser.TrackedArguments - 1} keys in one call is not supported; call WATCH again\r\n"));
        }

        _out.Reset();
        RespScripts.WriteEval(_out, RespOrder.WatchScript, keys: argc - 1, args: 0);
        for (var i = 1; i < argc; i++)
        {
            _out.Write(_parser.RawArg(i));
        }

        _watching = true;
        return Submit(_out.WrittenMemory, RespReplyOrder.Ordered, new FixedReply(Ok));
    }

    /// <summary>UNWATCH, or the end of a watch that DISCARD makes: an ordered marker answering +OK.</summary>
    private SessionAction Unwatch(IReplyTransform? transform = null)
    {
        _out.Reset();
        RespScripts.WriteEval(_out, RespOrder.UnwatchScript, keys: 0, args: 0);
        if (_inMulti)
        {
            return Queue(_out.WrittenSpan);
        }

        _watching = false;
        return Submit(_out.WrittenMemory, RespReplyOrder.Ordered, transform ?? new FixedReply(Ok));
    }

    /// <summary>A fixed reply, whatever the replicas answered (the EXECABORT of a block that also ends a watch).</summary>
    private sealed class FixedReply(byte[] reply) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> voted, CancellationToken cancellationToken) =>
            ValueTask.FromResult(RespReplyReader.IsError(voted.Span) ? voted : reply);
    }

    /// <summary>The EXEC reply of a watched transaction: the abort decided in log order becomes a null reply.</summary>
    private sealed class WatchedExec(bool resp3) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) =>
            ValueTask.FromResult(reply.Span.SequenceEqual(RespOrder.AbortedReply) ? (resp3 ? "_\r\n"u8.ToArray() : "*-1\r\n"u8.ToArray()) : reply);
    }

    private SessionAction Blocking(RespCommandKind kind, int argc)
    {
        if (argc > RespRequestParser.TrackedArguments)
        {
            return Local(Encoding.ASCII.GetBytes($"-ERR resh: {kind.ToString().ToLowerInvariant()} with more than {RespRequestParser.TrackedArguments} arguments is not supported under replication\r\n"));
        }

        // The smallest well-formed call; below it every replica answers the arity error at once, without blocking.
        var minimum = kind switch
        {
            RespCommandKind.BRPopLPush => 4,
            RespCommandKind.BLMove => 6,
            RespCommandKind.BLMPop or RespCommandKind.BZMPop => 5,
            RespCommandKind.XRead => 4,
            _ => 3,
        };
        if (argc < minimum)
        {
            return Queue(_parser.Request, RespReplyOrder.Ordered);
        }

        var keys = new List<byte[]>();
        double timeoutSeconds;
        _out.Reset();
        switch (kind)
        {
            case RespCommandKind.BLPop or RespCommandKind.BRPop or RespCommandKind.BZPopMin or RespCommandKind.BZPopMax:
                {
                    if (!TryTimeout(argc - 1, out timeoutSeconds, out var error))
                    {
                        return Local(error);
                    }

                    for (var i = 1; i < argc - 1; i++)
                    {
                        keys.Add(_parser.Arg(i).ToArray());
                    }

                    var op = kind switch
                    {
                        RespCommandKind.BLPop => "LPOP"u8,
                        RespCommandKind.BRPop => "RPOP"u8,
                        RespCommandKind.BZPopMin => "ZPOPMIN"u8,
                        _ => "ZPOPMAX"u8,
                    };
                    RespScripts.WriteEval(_out, RespScripts.BlockingPop, keys.Count, args: 3);
                    for (var i = 1; i < argc - 1; i++)
                    {
                        _out.Write(_parser.RawArg(i));
                    }

                    RespEncoding.WriteBulk(_out, op);
                    RespEncoding.WriteBulk(_out, _inMulti ? "1"u8 : "0"u8);
                    RespEncoding.WriteBulk(_out, _protover == 3 ? "1"u8 : "0"u8);
                    break;
                }

            case RespCommandKind.BRPopLPush or RespCommandKind.BLMove:
                {
                    if (!TryTimeout(argc - 1, out timeoutSeconds, out var error))
                    {
                        return Local(error);
                    }

                    keys.Add(_parser.Arg(1).ToArray());
                    RespEncoding.WriteArrayHeader(_out, argc - 1);
                    RespEncoding.WriteBulk(_out, kind == RespCommandKind.BLMove ? "LMOVE"u8 : "RPOPLPUSH"u8);
                    for (var i = 1; i < argc - 1; i++)
                    {
                        _out.Write(_parser.RawArg(i));
                    }

                    break;
                }

            case RespCommandKind.BLMPop or RespCommandKind.BZMPop:
                {
                    if (!TryTimeout(1, out timeoutSeconds, out var error))
                    {
                        return Local(error);
                    }

                    if (RespEncoding.TryParseInteger(_parser.Arg(2), out var count) && count > 0)
                    {
                        for (var i = 0; i < count && 3 + i < argc; i++)
                        {
                            keys.Add(_parser.Arg(3 + (int)i).ToArray());
                        }
                    }

                    RespEncoding.WriteArrayHeader(_out, argc - 1);
                    RespEncoding.WriteBulk(_out, kind == RespCommandKind.BLMPop ? "LMPOP"u8 : "ZMPOP"u8);
                    for (var i = 2; i < argc; i++)
                    {
                        _out.Write(_parser.RawArg(i));
                    }

                    break;
                }

            default:
                return XRead(argc);
        }

        return BlockOn(keys, timeoutSeconds, _out.WrittenMemory);
    }

    /// <summary>XREAD [COUNT n] [BLOCK ms] STREAMS key... id...: without BLOCK it is deterministic and passes through.</summary>
    private SessionAction XRead(int argc)
    {
        var (block, streams) = StreamOptions(1, argc);

        if (block < 0 || streams < 0 || (argc - streams - 1) % 2 != 0 || _inMulti)
        {
            // No BLOCK (or malformed, or inside MULTI where Redis does not block): as it is.
            var request = _parser.Request;
            if (block >= 0 && streams >= 0)
            {
                request = Without(block, 2);
            }

            return Queue(request, RespReplyOrder.Ordered);
        }

        if (!RespEncoding.TryParseInteger(_parser.Arg(block + 1), out var millis))
        {
            return Local(TimeoutNotInteger);
        }

        if (millis < 0)
        {
            return Local(TimeoutNegative);
        }

        var half = (argc - streams - 1) / 2;
        var keys = new List<byte[]>();
        for (var i = 0; i < half; i++)
        {
            keys.Add(_parser.Arg(streams + 1 + i).ToArray());
            if (_parser.Arg(streams + 1 + half + i) is [(byte)'$'])
            {
                return Local(XReadDollar);
            }
        }

        return BlockOn(keys, millis / 1000.0, Without(block, 2));
    }

    /// <summary>
    /// Where XREAD's or XREADGROUP's BLOCK and STREAMS stand among the options from <paramref name="from"/> on (-1: absent).
    /// Only the arguments the parser tracks are looked at.
    /// </summary>
    private (int Block, int Streams) StreamOptions(int from, int argc)
    {
        var block = -1;
        var streams = -1;
        for (var i = from; i < argc && _parser.Has(i) && streams < 0; i++)
        {
            if (Is(i, "BLOCK"u8) && i + 1 < argc)
            {
                block = i;
                i++;
            }
            else if (Is(i, "COUNT"u8))
            {
                i++;
            }
            else if (Is(i, "STREAMS"u8))
            {
                streams = i;
            }
        }

        return (block, streams);
    }

    /// <summary>The request without <paramref name="count"/> arguments from <paramref name="index"/> on.</summary>
    private ReadOnlyMemory<byte> Without(int index, int count)
    {
        _out.Reset();
        RespEncoding.WriteArrayHeader(_out, _parser.ArgCount - count);
        for (var i = 0; i < _parser.ArgCount; i++)
        {
            if (i < index || i >= index + count)
            {
                _out.Write(_parser.RawArg(i));
            }
        }

        return _out.WrittenMemory;
    }

    /// <summary>Submits the non-blocking form <paramref name="attempt"/>, and blocks the session on its keys if it finds nothing.</summary>
    private SessionAction BlockOn(List<byte[]> keys, double timeoutSeconds, ReadOnlyMemory<byte> attempt, Func<ReadOnlyMemory<byte>>? retry = null, IReplyTransform? then = null)
    {
        if (_inMulti)
        {
            // Inside MULTI a blocking command does not block: its non-blocking form answers at once.
            return Queue(attempt.Span);
        }

        _blocked?.Dispose();
        _blocked = _protocol.Order.Block(_db, keys);
        var deadline = timeoutSeconds <= 0 ? DateTimeOffset.MaxValue : _protocol.Clock.GetUtcNow().AddSeconds(Math.Min(timeoutSeconds, 1e9));
        var first = attempt.ToArray();
        var transform = new BlockingTransform(_protocol, _blocked, retry ?? (() => first), Context, deadline, _protover == 3, then);
        return new SessionAction(SessionActionKind.Submit, attempt, Context, Transform: transform, Barrier: true);
    }

    /// <summary>A blocking command's timeout in seconds (a float, as Redis parses it).</summary>
    private bool TryTimeout(int index, out double seconds, out byte[] error)
    {
        error = [];
        if (!double.TryParse(Encoding.ASCII.GetString(_parser.Arg(index)), NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) || double.IsNaN(seconds) || double.IsInfinity(seconds))
        {
            error = TimeoutNotFloat;
            return false;
        }

        if (seconds < 0)
        {
            error = TimeoutNegative;
            return false;
        }

        return true;
    }

    private static bool IsBlockedReply(ReadOnlySpan<byte> reply) =>
        reply.SequenceEqual(BlockedReply) || reply.SequenceEqual("$-1\r\n"u8) || reply.SequenceEqual("*-1\r\n"u8) || reply.SequenceEqual("_\r\n"u8);

    /// <summary>
    /// Waits for a write to the keys and retries through the log until data comes or the deadline passes; the reply
    /// then goes through <paramref name="then"/>, if any.
    /// </summary>
    private sealed class BlockingTransform(RespProtocol protocol, RespOrder.BlockedSession blocked, Func<ReadOnlyMemory<byte>> attempt, int context, DateTimeOffset deadline, bool resp3, IReplyTransform? then) : IReplyTransform
    {
        /// <summary>A retry even without a touch, against a write the key specs could not attribute (a script's undeclared key).</summary>
        private static readonly TimeSpan Fallback = TimeSpan.FromSeconds(5);

        public async ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
        {
            reply = await WaitAsync(reply, cancellationToken);
            return then is null ? reply : await then.ApplyAsync(reply, cancellationToken);
        }

        private async ValueTask<ReadOnlyMemory<byte>> WaitAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
        {
            using (blocked)
            {
                var clock = protocol.Clock;
                while (IsBlockedReply(reply.Span))
                {
                    var remaining = deadline - clock.GetUtcNow();
                    if (remaining <= TimeSpan.Zero || protocol.Link is not { } link)
                    {
                        return resp3 ? "_\r\n"u8.ToArray() : "*-1\r\n"u8.ToArray();
                    }

                    var wait = remaining < Fallback ? remaining : Fallback;
                    await Task.WhenAny(blocked.Touched, Task.Delay(wait, clock, cancellationToken));
                    cancellationToken.ThrowIfCancellationRequested();
                    if (!blocked.Touched.IsCompleted && deadline <= clock.GetUtcNow())
                    {
                        continue;
                    }

                    blocked.Rearm();
                    reply = await link.RequestAsync(attempt(), context, RespReplyOrder.Ordered, cancellationToken);
                }

                return reply;
            }
        }
    }
}
