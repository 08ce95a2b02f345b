using System.Buffers;
using System.Buffers.Text;

namespace Resh.Protocols.Resp;

internal enum NumberLine
{
    Ok,
    Incomplete,
    Invalid,
}

/// <summary>Encoding helpers for RESP: canonical multibulk writing and Redis's strict integer syntax.</summary>
internal static class RespEncoding
{
    /// <summary>Longest decimal form of a 64-bit integer: sign and 19 digits.</summary>
    public const int MaxIntegerDigits = 20;

    /// <summary>
    /// Parses an integer the way Redis's string2ll does: optional '-', no '+', no leading zeros,
    /// no spaces, no "-0", within the 64-bit range.
    /// </summary>
    public static bool TryParseInteger(ReadOnlySpan<byte> text, out long value)
    {
        value = 0;
        if (text.IsEmpty || text.Length > MaxIntegerDigits)
        {
            return false;
        }

        if (text.Length == 1 && text[0] == (byte)'0')
        {
            return true;
        }

        var negative = false;
        var i = 0;
        if (text[0] == (byte)'-')
        {
            negative = true;
            i = 1;
            if (text.Length == 1)
            {
                return false;
            }
        }

        if (text[i] < (byte)'1' || text[i] > (byte)'9')
        {
            return false;
        }

        ulong magnitude = 0;
        for (; i < text.Length; i++)
        {
            var digit = (uint)(text[i] - (byte)'0');
            if (digit > 9)
            {
                return false;
            }

            if (magnitude > (ulong.MaxValue - digit) / 10)
            {
                return false;
            }

            magnitude = (magnitude * 10) + digit;
        }

        if (negative)
        {
            if (magnitude > (ulong)long.MaxValue + 1)
            {
                return false;
            }

            value = (long)(0 - magnitude);
            return true;
        }

        if (magnitude > long.MaxValue)
        {
            return false;
        }

        value = (long)magnitude;
        return true;
    }

    /// <summary>Writes "&lt;prefix&gt;&lt;value&gt;\r\n", e.g. "*3\r\n" or "$5\r\n".</summary>
    public static void WriteLine(IBufferWriter<byte> output, byte prefix, long value)
    {
        var span = output.GetSpan(MaxIntegerDigits + 3);
        span[0] = prefix;
        Utf8Formatter.TryFormat(value, span[1..], out var written);
        span[written + 1] = (byte)'\r';
        span[written + 2] = (byte)'\n';
        output.Advance(written + 3);
    }

    public static void WriteArrayHeader(IBufferWriter<byte> output, long count) => WriteLine(output, (byte)'*', count);

    /// <summary>Writes one bulk string: "$len\r\n" data "\r\n".</summary>
    public static void WriteBulk(IBufferWriter<byte> output, ReadOnlySpan<byte> data)
    {
        WriteLine(output, (byte)'$', data.Length);
        output.Write(data);
        output.Write("\r\n"u8);
    }

    /// <summary>Writes the decimal form of <paramref name="value"/> as one bulk string.</summary>
    public static void WriteBulk(IBufferWriter<byte> output, long value)
    {
        Span<byte> digits = stackalloc byte[MaxIntegerDigits];
        Utf8Formatter.TryFormat(value, digits, out var written);
        WriteBulk(output, digits[..written]);
    }

    /// <summary>Writes a simple string reply: "+text\r\n".</summary>
    public static void WriteSimple(IBufferWriter<byte> output, ReadOnlySpan<byte> text)
    {
        output.Write("+"u8);
        output.Write(text);
        output.Write("\r\n"u8);
    }

    /// <summary>Encodes a whole command as canonical multibulk.</summary>
    public static byte[] Command(params string[] args)
    {
        var buffer = new ArrayBufferWriter<byte>();
        WriteArrayHeader(buffer, args.Length);
        foreach (var arg in args)
        {
            WriteBulk(buffer, System.Text.Encoding.UTF8.GetBytes(arg));
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads "&lt;integer&gt;\r\n" at the reader (the type byte already consumed), in Redis's strict syntax.
    /// Incomplete when the line may still become valid with more input; the reader moves only on Ok.
    /// </summary>
    public static NumberLine ReadNumberLine(ref SequenceReader<byte> reader, out long value)
    {
        const int window = MaxIntegerDigits + 2;
        value = 0;
        Span<byte> scratch = stackalloc byte[window];
        var unread = reader.UnreadSpan;
        scoped ReadOnlySpan<byte> line = unread[..Math.Min(unread.Length, window)];
        var newline = line.IndexOf((byte)'\n');
        if (newline < 0 && line.Length < window && reader.Remaining > line.Length)
        {
            var available = (int)Math.Min(window, reader.Remaining);
            reader.TryCopyTo(scratch[..available]);
            line = scratch[..available];
            newline = line.IndexOf((byte)'\n');
        }

        if (newline < 0)
        {
            return line.Length == window || line.IndexOfAnyExcept("0123456789-\r"u8) >= 0
                ? NumberLine.Invalid
                : NumberLine.Incomplete;
        }

        if (newline == 0 || line[newline - 1] != (byte)'\r' || !TryParseInteger(line[..(newline - 1)], out value))
        {
            return NumberLine.Invalid;
        }

        reader.Advance(newline + 1);
        return NumberLine.Ok;
    }

    /// <summary>The byte at the front of a sequence (its first segment may be empty).</summary>
    public static bool TryPeekFirst(in ReadOnlySequence<byte> buffer, out byte value)
    {
        if (!buffer.FirstSpan.IsEmpty)
        {
            value = buffer.FirstSpan[0];
            return true;
        }

        foreach (var segment in buffer)
        {
            if (!segment.IsEmpty)
            {
                value = segment.Span[0];
                return true;
            }
        }

        value = 0;
        return false;
    }
}
