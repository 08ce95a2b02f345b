using System.Buffers;

namespace Resh.Protocols.Resp;

/// <summary>
/// Reads the few reply shapes the gateway itself needs to understand (an integer, a flat collection of strings),
/// from one complete reply. Never throws on a malformed reply: it answers false.
/// </summary>
internal static class RespReplyReader
{
    /// <summary>Whether the reply is an error ("-" or "!").</summary>
    public static bool IsError(ReadOnlySpan<byte> reply) => !reply.IsEmpty && reply[0] is (byte)'-' or (byte)'!';

    /// <summary>An integer reply (":n").</summary>
    public static bool TryReadInteger(ReadOnlySpan<byte> reply, out long value)
    {
        value = 0;
        if (reply.Length < 4 || reply[0] != (byte)':')
        {
            return false;
        }

        var end = reply.IndexOf("\r\n"u8);
        return end > 1 && RespEncoding.TryParseInteger(reply[1..end], out value);
    }

    /// <summary>
    /// The elements of an array, set, map or push reply, flattened one level (a map gives key, value, key, value),
    /// each a string: bulk and simple strings as their data, integers and doubles as their text; a nested pair
    /// ([member, score] in RESP3) is flattened too. A null reply gives no elements. False when the reply is an
    /// error or not a collection.
    /// </summary>
    public static bool TryReadStrings(ReadOnlySpan<byte> reply, out List<byte[]> elements)
    {
        elements = [];
        if (reply.Length >= 3 && (reply[0] == (byte)'_' || reply.StartsWith("*-1\r\n"u8)))
        {
            return true;
        }

        var offset = 0;
        return TryReadAggregate(reply, ref offset, elements, depth: 0);
    }

    private static bool TryReadAggregate(ReadOnlySpan<byte> reply, ref int offset, List<byte[]> elements, int depth)
    {
        if (offset >= reply.Length || reply[offset] is not ((byte)'*' or (byte)'~' or (byte)'%' or (byte)'>') || depth > 1)
        {
            return false;
        }

        var map = reply[offset] == (byte)'%';
        if (!TryReadLine(reply, ref offset, out var header) || !RespEncoding.TryParseInteger(header[1..], out var count) || count < 0)
        {
            return false;
        }

        var items = map ? count * 2 : count;
        for (long i = 0; i < items; i++)
        {
            if (offset >= reply.Length)
            {
                return false;
            }

            var type = reply[offset];
            if (type is (byte)'*' or (byte)'~' or (byte)'%')
            {
                if (!TryReadAggregate(reply, ref offset, elements, depth + 1))
                {
                    return false;
                }

                continue;
            }

            if (type == (byte)'$')
            {
                if (!TryReadLine(reply, ref offset, out var lengthLine) || !RespEncoding.TryParseInteger(lengthLine[1..], out var length))
                {
                    return false;
                }

                if (length < 0)
                {
                    continue;
                }

                if (offset + length + 2 > reply.Length)
                {
                    return false;
                }

                elements.Add(reply.Slice(offset, (int)length).ToArray());
                offset += (int)length + 2;
                continue;
            }

            if (type is (byte)'+' or (byte)':' or (byte)',')
            {
                if (!TryReadLine(reply, ref offset, out var line))
                {
                    return false;
                }

                elements.Add(line[1..].ToArray());
                continue;
            }

            if (type == (byte)'_' && TryReadLine(reply, ref offset, out _))
            {
                continue;
            }

            return false;
        }

        return true;
    }

    private static bool TryReadLine(ReadOnlySpan<byte> reply, ref int offset, out ReadOnlySpan<byte> line)
    {
        var end = reply[offset..].IndexOf("\r\n"u8);
        if (end < 1)
        {
            line = default;
            return false;
        }

        line = reply.Slice(offset, end);
        offset += end + 2;
        return true;
    }

    /// <summary>Writes an array of bulk strings.</summary>
    public static void WriteBulkArray(IBufferWriter<byte> output, IReadOnlyList<byte[]> items)
    {
        RespEncoding.WriteArrayHeader(output, items.Count);
        foreach (var item in items)
        {
            RespEncoding.WriteBulk(output, item);
        }
    }

    public static byte[] Integer(long value)
    {
        var buffer = new ArrayBufferWriter<byte>(24);
        RespEncoding.WriteLine(buffer, (byte)':', value);
        return buffer.WrittenSpan.ToArray();
    }
}
