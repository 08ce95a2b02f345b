using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Consumer groups: XREADGROUP (blocking or not), XCLAIM, XAUTOCLAIM and XPENDING's extended form run as the scripts of
/// <see cref="RespStreamScripts"/>, which stamp and compare delivery times with the gateway's milliseconds; XINFO
/// is voted without the times that only say when a replica last saw a consumer.
/// </summary>
internal sealed partial class RespClientSession
{
    /// <summary>The width of the gateway's milliseconds in an attempt that is stamped again at every retry.</summary>
    private const int StampDigits = 13;

    private SessionAction Stream(RespCommandKind kind, int argc)
    {
        switch (kind)
        {
            case RespCommandKind.XClaim when argc >= 6:
                return StreamScript(RespStreamScripts.XClaim, argc);
            case RespCommandKind.XAutoClaim when argc >= 6:
                return StreamScript(RespStreamScripts.XAutoClaim, argc);
            case RespCommandKind.XPending when argc >= 6:
                return StreamScript(RespStreamScripts.XPending, argc);
            case RespCommandKind.XInfo:
                var hint = argc >= 2 && (Is(1, "CONSUMERS"u8) || Is(1, "STREAM"u8)) ? RespReplyOrder.StreamTimes : RespReplyOrder.Ordered;
                return Queue(_parser.Request, hint);
            default:
                // XPENDING's summary, or too short to do anything but fail: as it is.
                return Queue(_parser.Request, RespReplyOrder.Ordered);
        }
    }

    /// <summary>EVAL script 1 key gateway-ms argument...: the command's arguments after its key, as they came.</summary>
    private SessionAction StreamScript(byte[] script, int argc)
    {
        _out.Reset();
        RespScripts.WriteEval(_out, script, keys: 1, args: argc - 1);
        _out.Write(_parser.RawArg(1));
        RespEncoding.WriteBulk(_out, _protocol.NowMillis());
        _out.Write(_parser.RawFrom(2));
        return Queue(_out.WrittenMemory, RespReplyOrder.Ordered);
    }

    /// <summary>XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...</summary>
    private SessionAction XReadGroup(int argc)
    {
        // GROUP g c, then the options.
        var (block, streams) = StreamOptions(4, argc);

        var half = streams < 0 || (argc - streams - 1) % 2 != 0 ? 0 : (argc - streams - 1) / 2;
        var blocking = block >= 0 && half > 0 && !_inMulti;
        if (blocking && argc > RespRequestParser.TrackedArguments)
        {
            return Local(Encoding.ASCII.GetBytes($"-ERR resh: xreadgroup with BLOCK and more than {RespRequestParser.TrackedArguments} arguments is not supported under replication\r\n"));
        }

        long millis = 0;
        if (blocking && !RespEncoding.TryParseInteger(_parser.Arg(block + 1), out millis))
        {
            return Local(TimeoutNotInteger);
        }

        if (millis < 0)
        {
            return Local(TimeoutNegative);
        }

        // The streams are the script's keys when the parser kept them all; otherwise the script runs with none.
        var keys = streams >= 0 && argc <= RespRequestParser.TrackedArguments ? half : 0;
        _out.Reset();
        RespScripts.WriteEval(_out, RespStreamScripts.XReadGroup, keys, 2 + argc - 1 - (block >= 0 ? 2 : 0));
        for (var i = 0; i < keys; i++)
        {
            _out.Write(_parser.RawArg(streams + 1 + i));
        }

        // Where the milliseconds' digits start ("$13\r\n" before them), for a blocked session's later attempts.
        var stamp = _out.Count + 5;
        RespEncoding.WriteBulk(_out, _protocol.NowMillis());
        RespEncoding.WriteBulk(_out, blocking ? "1"u8 : "0"u8);
        if (block < 0)
        {
            _out.Write(_parser.RawFrom(1));
        }
        else
        {
            for (var i = 1; i < argc; i++)
            {
                if (i != block && i != block + 1)
                {
                    _out.Write(_parser.RawArg(i));
                }
            }
        }

        var transform = new StreamReadTransform(_protover == 3);
        if (!blocking)
        {
            return _inMulti ? Queue(_out.WrittenSpan) : Submit(_out.WrittenMemory, RespReplyOrder.Ordered, transform);
        }

        var streamKeys = new List<byte[]>(half);
        for (var i = 0; i < half; i++)
        {
            streamKeys.Add(_parser.Arg(streams + 1 + i).ToArray());
        }

        var template = _out.WrittenSpan.ToArray();
        var clock = _protocol.Clock;
        return BlockOn(streamKeys, millis / 1000.0, template, () => Restamp(template, stamp, clock), transform);
    }

    /// <summary>A blocked XREADGROUP's next attempt, stamped with the gateway's milliseconds of now.</summary>
    private static ReadOnlyMemory<byte> Restamp(byte[] template, int offset, TimeProvider clock)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var attempt = (byte[])template.Clone();
        if (template.AsSpan(offset - 5, 5).SequenceEqual("$13\r\n"u8) && now is >= 1_000_000_000_000 and < 10_000_000_000_000)
        {
            Utf8Formatter.TryFormat(now, attempt.AsSpan(offset, StampDigits), out _);
        }

        return attempt;
    }

    /// <summary>
    /// XREADGROUP's reply as Redis gives it: the script's null is a null array in RESP2; in RESP3 the streams are a map
    /// (a script can only answer an array of [key, entries] pairs).
    /// </summary>
    private sealed class StreamReadTransform(bool resp3) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) => ValueTask.FromResult(Apply(reply));

        private ReadOnlyMemory<byte> Apply(ReadOnlyMemory<byte> reply)
        {
            var span = reply.Span;
            if (span.SequenceEqual("$-1\r\n"u8))
            {
                return resp3 ? "_\r\n"u8.ToArray() : "*-1\r\n"u8.ToArray();
            }

            if (!resp3 || span.Length < 4 || span[0] != (byte)'*' || span[1] == (byte)'-')
            {
                return reply;
            }

            var headerEnd = span.IndexOf("\r\n"u8);
            if (!int.TryParse(span[1..headerEnd], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count))
            {
                return reply;
            }

            var sequence = new ReadOnlySequence<byte>(reply);
            var framer = new RespReplyFramer();
            var output = new ArrayBufferWriter<byte>(reply.Length);
            output.Write(Encoding.ASCII.GetBytes($"%{count}\r\n"));
            var offset = headerEnd + 2;
            for (var i = 0; i < count; i++)
            {
                if (framer.TryFrame(sequence.Slice(offset), out var end) != FrameStatus.Complete || !span[offset..].StartsWith("*2\r\n"u8))
                {
                    return reply;
                }

                var length = (int)sequence.Slice(offset, end).Length;
                output.Write(span.Slice(offset + 4, length - 4));
                offset += length;
            }

            return output.WrittenMemory;
        }
    }
}
