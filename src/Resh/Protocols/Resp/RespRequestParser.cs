// Over 400 lines: one incremental parser (multibulk and inline requests, limits, the argument index) whose states share their buffers; split, the hot path would cross files.
using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

internal enum RequestStatus
{
    Incomplete,
    Complete,
    Fatal,
}

/// <summary>
/// Frames client requests, multibulk (<c>*N\r\n$len\r\n...</c>) or inline (telnet style, with Redis's
/// quoting rules), and leaves each complete one in canonical multibulk form. Valid multibulk input is
/// already canonical (Redis accepts no leading zeros or '+' in lengths), so it is copied as is; inline
/// requests are re-encoded. The first <see cref="TrackedArguments"/> arguments are indexed for inspection.
/// </summary>
/// <remarks>
/// Incomplete requests are not copied. When the buffer passed after an Incomplete result starts at the
/// same position (the unconsumed input plus more), scanning resumes at the first argument not yet
/// complete, so a large request arriving in many fragments is scanned once.
/// </remarks>
internal sealed class RespRequestParser : IDisposable
{
    public const int TrackedArguments = 16;

    private readonly long _maxInline;
    private readonly long _maxBulk;
    private readonly long _maxQuery;
    private readonly int _maxArguments;
    private readonly PooledBuffer _request = new();
    private readonly PooledBuffer _line = new();
    private readonly PooledBuffer _inlineArgs = new();
    private readonly List<int> _inlineLengths = [];
    private readonly int[] _headers = new int[TrackedArguments + 1];
    private readonly int[] _data = new int[TrackedArguments];
    private readonly int[] _lengths = new int[TrackedArguments];
    private int _argCount;

    private bool _resumeValid;
    private SequencePosition _resumeStart;
    private long _resumeOffset;
    private int _resumeTotal;
    private int _resumeLeft;
    private bool _resumeInline;

    public RespRequestParser(long maxInlineBytes, long maxBulkBytes, int maxArguments, long maxQueryBufferBytes)
    {
        _maxInline = maxInlineBytes;
        _maxBulk = maxBulkBytes;
        _maxArguments = maxArguments;
        _maxQuery = maxQueryBufferBytes;
    }

    /// <summary>Canonical multibulk bytes of the last complete request.</summary>
    public ReadOnlyMemory<byte> Request => _request.WrittenMemory;

    public ReadOnlySpan<byte> RequestSpan => _request.WrittenSpan;

    public int ArgCount => _argCount;

    /// <summary>The error reply after a Fatal result.</summary>
    public byte[] FatalReply { get; private set; } = [];

    /// <summary>Data of argument <paramref name="index"/> (index &lt; <see cref="TrackedArguments"/>).</summary>
    public ReadOnlySpan<byte> Arg(int index) => _request.WrittenSpan.Slice(_data[index], _lengths[index]);

    /// <summary>The encoded form ("$len\r\ndata\r\n") of argument <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> RawArg(int index) => _request.WrittenSpan[_headers[index].._headers[index + 1]];

    /// <summary>The encoded arguments from <paramref name="index"/> (at most <see cref="TrackedArguments"/>) to the end.</summary>
    public ReadOnlySpan<byte> RawFrom(int index) => _request.WrittenSpan[_headers[index]..];

    /// <summary>Whether argument <paramref name="index"/> exists and is indexed.</summary>
    public bool Has(int index) => index < _argCount && index < TrackedArguments;

    /// <summary>
    /// Frames one request at the front of <paramref name="buffer"/>. Skipped input (empty inline lines,
    /// multibulk requests of zero arguments, as Redis skips them) is consumed even when the result is Incomplete.
    /// </summary>
    public RequestStatus Parse(ref ReadOnlySequence<byte> buffer)
    {
        while (true)
        {
            if (!RespEncoding.TryPeekFirst(buffer, out var first))
            {
                _resumeValid = false;
                return RequestStatus.Incomplete;
            }

            bool skipped;
            var status = first == (byte)'*' ? ParseMultibulk(ref buffer, out skipped) : ParseInline(ref buffer, out skipped);
            if (!skipped)
            {
                return status;
            }
        }
    }

    /// <summary>Releases pooled memory; oversized buffers are also released before each request.</summary>
    public void Dispose()
    {
        _request.Dispose();
        _line.Dispose();
        _inlineArgs.Dispose();
        _resumeValid = false;
    }

    private RequestStatus ParseMultibulk(ref ReadOnlySequence<byte> buffer, out bool skipped)
    {
        skipped = false;
        var reader = new SequenceReader<byte>(buffer);
        int total;
        int left;
        if (_resumeValid && !_resumeInline && buffer.Start.Equals(_resumeStart) && buffer.Length >= _resumeOffset)
        {
            reader.Advance(_resumeOffset);
            total = _resumeTotal;
            left = _resumeLeft;
        }
        else
        {
            reader.Advance(1);
            var status = RespEncoding.ReadNumberLine(ref reader, out var count);
            if (status == NumberLine.Incomplete)
            {
                _resumeValid = false;
                return RequestStatus.Incomplete;
            }

            if (status == NumberLine.Invalid || count > int.MaxValue)
            {
                return Fail("-ERR Protocol error: invalid multibulk length\r\n");
            }

            if (count <= 0)
            {
                buffer = buffer.Slice(reader.Position);
                skipped = true;
                _resumeValid = false;
                return RequestStatus.Incomplete;
            }

            if (count > _maxArguments)
            {
                return Fail($"-ERR resh: request exceeds max-arguments ({_maxArguments})\r\n");
            }

            total = left = (int)count;
        }

        _resumeValid = false;
        while (left > 0)
        {
            var argStart = reader.Consumed;
            if (!reader.TryRead(out var marker))
            {
                return Suspend(buffer, argStart, total, left);
            }

            if (marker != (byte)'$')
            {
                return Fail($"-ERR Protocol error: expected '$', got '{Show(marker)}'\r\n");
            }

            var status = RespEncoding.ReadNumberLine(ref reader, out var length);
            if (status == NumberLine.Incomplete)
            {
                return Suspend(buffer, argStart, total, left);
            }

            if (status == NumberLine.Invalid || length < 0)
            {
                return Fail("-ERR Protocol error: invalid bulk length\r\n");
            }

            if (length > _maxBulk)
            {
                return Fail($"-ERR resh: request exceeds max-bulk-bytes ({_maxBulk})\r\n");
            }

            if (reader.Consumed + length + 2 > _maxQuery)
            {
                return Fail($"-ERR resh: request exceeds max-query-buffer-bytes ({_maxQuery})\r\n");
            }

            if (reader.Remaining < length + 2)
            {
                return Suspend(buffer, argStart, total, left);
            }

            reader.Advance(length);
            if (!reader.IsNext("\r\n"u8, advancePast: true))
            {
                return Fail("-ERR Protocol error: expected CRLF after bulk data\r\n");
            }

            left--;
        }

        _request.Reset();
        _request.Write(buffer.Slice(0, reader.Position));
        Index(total);
        buffer = buffer.Slice(reader.Position);
        return RequestStatus.Complete;
    }

    private RequestStatus Suspend(in ReadOnlySequence<byte> buffer, long offset, int total, int left)
    {
        _resumeValid = true;
        _resumeInline = false;
        _resumeStart = buffer.Start;
        _resumeOffset = offset;
        _resumeTotal = total;
        _resumeLeft = left;
        return RequestStatus.Incomplete;
    }

    private RequestStatus ParseInline(ref ReadOnlySequence<byte> buffer, out bool skipped)
    {
        skipped = false;
        var windowLength = Math.Min(buffer.Length, _maxInline + 2);
        var searched = 0L;
        if (_resumeValid && _resumeInline && buffer.Start.Equals(_resumeStart) && windowLength >= _resumeOffset)
        {
            searched = _resumeOffset;
        }

        _resumeValid = false;
        var newline = buffer.Slice(searched, windowLength - searched).PositionOf((byte)'\n');
        if (newline is null)
        {
            if (buffer.Length >= _maxInline + 2)
            {
                return Fail($"-ERR resh: request exceeds max-inline-bytes ({_maxInline})\r\n");
            }

            _resumeValid = true;
            _resumeInline = true;
            _resumeStart = buffer.Start;
            _resumeOffset = windowLength;
            return RequestStatus.Incomplete;
        }

        _line.Reset();
        _line.Write(buffer.Slice(0, newline.Value));
        var line = _line.WrittenSpan;
        if (!line.IsEmpty && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        if (line.Length > _maxInline)
        {
            return Fail($"-ERR resh: request exceeds max-inline-bytes ({_maxInline})\r\n");
        }

        _inlineArgs.Reset();
        _inlineLengths.Clear();
        if (!SplitArgs(line))
        {
            return Fail("-ERR Protocol error: unbalanced quotes in request\r\n");
        }

        var next = buffer.GetPosition(1, newline.Value);
        if (_inlineLengths.Count == 0)
        {
            buffer = buffer.Slice(next);
            skipped = true;
            return RequestStatus.Incomplete;
        }

        if (_inlineLengths.Count > _maxArguments)
        {
            return Fail($"-ERR resh: request exceeds max-arguments ({_maxArguments})\r\n");
        }

        _request.Reset();
        RespEncoding.WriteArrayHeader(_request, _inlineLengths.Count);
        var args = _inlineArgs.WrittenSpan;
        var offset = 0;
        foreach (var length in _inlineLengths)
        {
            RespEncoding.WriteBulk(_request, args.Slice(offset, length));
            offset += length;
        }

        Index(_inlineLengths.Count);
        buffer = buffer.Slice(next);
        return RequestStatus.Complete;
    }

    /// <summary>
    /// Splits an inline request the way Redis's sdssplitargs does: whitespace separates arguments;
    /// "..." supports \n \r \t \b \a \xHH and \c escapes; '...' supports \' only; a closing quote must be
    /// followed by whitespace or the end; a NUL byte ends the line. Returns false on unbalanced quotes.
    /// </summary>
    private bool SplitArgs(ReadOnlySpan<byte> line)
    {
        var p = 0;
        while (true)
        {
            while (p < line.Length && IsSpace(line[p]))
            {
                p++;
            }

            if (At(line, p) == 0)
            {
                return true;
            }

            var inDouble = false;
            var inSingle = false;
            var done = false;
            var start = _inlineArgs.Count;
            while (!done)
            {
                var c = At(line, p);
                if (inDouble)
                {
                    if (c == (byte)'\\' && At(line, p + 1) == (byte)'x' && IsHex(At(line, p + 2)) && IsHex(At(line, p + 3)))
                    {
                        _inlineArgs.WriteByte((byte)((HexValue(At(line, p + 2)) << 4) | HexValue(At(line, p + 3))));
                        p += 3;
                    }
                    else if (c == (byte)'\\' && At(line, p + 1) != 0)
                    {
                        p++;
                        _inlineArgs.WriteByte(line[p] switch
                        {
                            (byte)'n' => (byte)'\n',
                            (byte)'r' => (byte)'\r',
                            (byte)'t' => (byte)'\t',
                            (byte)'b' => (byte)'\b',
                            (byte)'a' => (byte)'\a',
                            var other => other,
                        });
                    }
                    else if (c == (byte)'"')
                    {
                        if (At(line, p + 1) != 0 && !IsSpace(At(line, p + 1)))
                        {
                            return false;
                        }

                        done = true;
                    }
                    else if (c == 0)
                    {
                        return false;
                    }
                    else
                    {
                        _inlineArgs.WriteByte(c);
                    }
                }
                else if (inSingle)
                {
                    if (c == (byte)'\\' && At(line, p + 1) == (byte)'\'')
                    {
                        p++;
                        _inlineArgs.WriteByte((byte)'\'');
                    }
                    else if (c == (byte)'\'')
                    {
                        if (At(line, p + 1) != 0 && !IsSpace(At(line, p + 1)))
                        {
                            return false;
                        }

                        done = true;
                    }
                    else if (c == 0)
                    {
                        return false;
                    }
                    else
                    {
                        _inlineArgs.WriteByte(c);
                    }
                }
                else
                {
                    switch (c)
                    {
                        case (byte)' ':
                        case (byte)'\n':
                        case (byte)'\r':
                        case (byte)'\t':
                        case 0:
                            done = true;
                            break;
                        case (byte)'"':
                            inDouble = true;
                            break;
                        case (byte)'\'':
                            inSingle = true;
                            break;
                        default:
                            _inlineArgs.WriteByte(c);
                            break;
                    }
                }

                if (At(line, p) != 0)
                {
                    p++;
                }
            }

            _inlineLengths.Add(_inlineArgs.Count - start);
        }
    }

    /// <summary>Indexes the first arguments of the canonical request in <see cref="_request"/>.</summary>
    private void Index(int count)
    {
        _argCount = count;
        var span = _request.WrittenSpan;
        var pos = span.IndexOf((byte)'\n') + 1;
        var tracked = Math.Min(count, TrackedArguments);
        for (var i = 0; i < tracked; i++)
        {
            _headers[i] = pos;
            var lineEnd = pos + span[pos..].IndexOf((byte)'\r');
            RespEncoding.TryParseInteger(span[(pos + 1)..lineEnd], out var length);
            _data[i] = lineEnd + 2;
            _lengths[i] = (int)length;
            pos = lineEnd + 2 + (int)length + 2;
        }

        _headers[tracked] = pos;
    }

    private RequestStatus Fail(string reply)
    {
        _resumeValid = false;
        FatalReply = Encoding.ASCII.GetBytes(reply);
        return RequestStatus.Fatal;
    }

    private static byte At(ReadOnlySpan<byte> line, int index) => index < line.Length ? line[index] : (byte)0;

    private static bool IsSpace(byte c) => c is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r';

    private static bool IsHex(byte c) => char.IsAsciiHexDigit((char)c);

    private static int HexValue(byte c) => c <= (byte)'9' ? c - '0' : (c | 0x20) - 'a' + 10;

    private static string Show(byte b) => b is >= 0x21 and < 0x7f ? ((char)b).ToString() : $"\\x{b:x2}";
}
