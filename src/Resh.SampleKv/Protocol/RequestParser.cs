using System.Buffers;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.Protocol;

/// <summary>What <see cref="RequestParser.TryParse"/> found at the start of the buffer.</summary>
internal enum ParseStatus
{
    /// <summary>Not a whole request yet: read more and try again from the same start.</summary>
    Incomplete,

    /// <summary>One whole request (possibly with no arguments, to be skipped).</summary>
    Request,

    /// <summary>A protocol error: reply with it and close the connection.</summary>
    ProtocolError,
}

/// <summary>
/// Parses requests in both RESP forms, as Redis does: multibulk (<c>*n</c> then <c>$len</c> bulk
/// strings) when the request starts with '*', otherwise an inline line split like a shell would.
/// Stateless between calls: an incomplete request is parsed again from its start once more bytes arrived.
/// </summary>
internal sealed class RequestParser
{
    /// <summary>The longest inline request or count line accepted without a line end (Redis' PROTO_INLINE_MAX_SIZE).</summary>
    public const int InlineMaxSize = 64 * 1024;

    /// <summary>The largest bulk argument accepted (Redis' default proto-max-bulk-len).</summary>
    public const long MaxBulkLength = 512L * 1024 * 1024;

    private readonly IIntegerCodec _integers;

    public RequestParser(IIntegerCodec integers)
    {
        _integers = integers;
    }

    /// <summary>
    /// Parses one request at the start of <paramref name="buffer"/>. On <see cref="ParseStatus.Request"/>
    /// the buffer is moved past it; on <see cref="ParseStatus.ProtocolError"/> <paramref name="error"/>
    /// holds the error text (without the "ERR " code).
    /// </summary>
    public ParseStatus TryParse(ref ReadOnlySequence<byte> buffer, out byte[][] args, out byte[] error)
    {
        args = [];
        error = [];
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryPeek(out byte type))
        {
            return ParseStatus.Incomplete;
        }

        ParseStatus status = type == (byte)'*'
            ? ParseMultibulk(ref reader, out args, out error)
            : ParseInline(ref reader, out args, out error);
        if (status == ParseStatus.Request)
        {
            buffer = buffer.Slice(reader.Position);
        }

        return status;
    }

    private static ParseStatus ParseInline(ref SequenceReader<byte> reader, out byte[][] args, out byte[] error)
    {
        args = [];
        error = [];
        long available = reader.Remaining;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            if (available > InlineMaxSize)
            {
                error = "Protocol error: too big inline request"u8.ToArray();
                return ParseStatus.ProtocolError;
            }

            return ParseStatus.Incomplete;
        }

        byte[] text = line.ToArray();
        int length = text.Length > 0 && text[^1] == (byte)'\r' ? text.Length - 1 : text.Length;
        byte[][]? words = InlineArgs.Split(text.AsSpan(0, length));
        if (words is null)
        {
            error = "Protocol error: unbalanced quotes in request"u8.ToArray();
            return ParseStatus.ProtocolError;
        }

        args = words;
        return ParseStatus.Request;
    }

    private ParseStatus ParseMultibulk(ref SequenceReader<byte> reader, out byte[][] args, out byte[] error)
    {
        args = [];
        error = [];
        ParseStatus status = ReadNumberLine(ref reader, "Protocol error: too big mbulk count string"u8, out _, out long count, out bool valid, out error);
        if (status != ParseStatus.Request)
        {
            return status;
        }

        if (!valid || count > int.MaxValue)
        {
            error = "Protocol error: invalid multibulk length"u8.ToArray();
            return ParseStatus.ProtocolError;
        }

        if (count <= 0)
        {
            return ParseStatus.Request;
        }

        var parsed = new List<byte[]>((int)Math.Min(count, 1024));
        for (long i = 0; i < count; i++)
        {
            status = ReadNumberLine(ref reader, "Protocol error: too big bulk count string"u8, out byte first, out long length, out valid, out error);
            if (status != ParseStatus.Request)
            {
                return status;
            }

            if (first != (byte)'$')
            {
                error = [.. "Protocol error: expected '$', got '"u8, first, (byte)'\''];
                return ParseStatus.ProtocolError;
            }

            if (!valid || length < 0 || length > MaxBulkLength)
            {
                error = "Protocol error: invalid bulk length"u8.ToArray();
                return ParseStatus.ProtocolError;
            }

            // The bulk is followed by two bytes Redis skips without looking at them.
            if (reader.Remaining < length + 2)
            {
                return ParseStatus.Incomplete;
            }

            byte[] arg = new byte[length];
            reader.TryCopyTo(arg);
            reader.Advance(length + 2);
            parsed.Add(arg);
        }

        args = [.. parsed];
        return ParseStatus.Request;
    }

    // Reads "<type><number>\r?" where the line ends at the first CR, which must be followed by one more
    // byte (the LF, not checked, as in Redis). `first` is the type byte (CR itself for an empty line).
    private ParseStatus ReadNumberLine(ref SequenceReader<byte> reader, ReadOnlySpan<byte> tooBig, out byte first, out long number, out bool valid, out byte[] error)
    {
        first = 0;
        number = 0;
        valid = false;
        error = [];
        long available = reader.Remaining;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\r'))
        {
            if (available > InlineMaxSize)
            {
                error = tooBig.ToArray();
                return ParseStatus.ProtocolError;
            }

            return ParseStatus.Incomplete;
        }

        if (reader.End)
        {
            return ParseStatus.Incomplete;
        }

        reader.Advance(1);
        if (line.IsEmpty)
        {
            first = (byte)'\r';
            return ParseStatus.Request;
        }

        first = line.FirstSpan[0];
        ReadOnlySequence<byte> digits = line.Slice(1);
        if (digits.Length <= IIntegerCodec.MaxLength)
        {
            Span<byte> scratch = stackalloc byte[IIntegerCodec.MaxLength];
            digits.CopyTo(scratch);
            valid = _integers.TryParse(scratch[..(int)digits.Length], out number);
        }

        return ParseStatus.Request;
    }
}
