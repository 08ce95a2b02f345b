using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// The packed encodings Redis stores small values in, inside an RDB string: listpack (7.0), ziplist and zipmap (older
/// files), intset. Each decodes to its items in order: a string, or an integer Redis stored as a number.
/// </summary>
internal static class Packed
{
    /// <summary>One item: a string, or a number (whose text is its decimal form, as Redis would answer it).</summary>
    public readonly struct Item(ReadOnlyMemory<byte> text, long number, bool isNumber)
    {
        public long Integer => isNumber ? number : throw new InvalidDataException($"'{Encoding.UTF8.GetString(text.Span)}' where a number was expected");

        public ReadOnlySpan<byte> Text() => isNumber ? Encoding.ASCII.GetBytes(number.ToString(CultureInfo.InvariantCulture)) : text.Span;

        /// <summary>The item as a sorted-set score.</summary>
        public double Number() => isNumber ? number : Score(text.Span);

        public static Item Of(long value) => new(default, value, true);

        public static Item Of(ReadOnlyMemory<byte> value) => new(value, 0, false);
    }

    /// <summary>A sorted-set score written as text (as Redis writes doubles: "1.5", "inf", "-inf").</summary>
    public static double Score(ReadOnlySpan<byte> text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value
        : Encoding.ASCII.GetString(text) switch
        {
            "inf" or "+inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            var s => throw new InvalidDataException($"'{s}' is not a score"),
        };

    private static InvalidDataException Damaged(string encoding, string what) => new($"a damaged {encoding}: {what}");

    /// <summary>Listpack: total bytes (u32), count (u16), entries each followed by its back length, 0xFF.</summary>
    public static List<Item> Listpack(ReadOnlySpan<byte> blob)
    {
        var bytes = blob.ToArray();
        var data = bytes.AsMemory();
        if (bytes.Length < 7 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != bytes.Length)
        {
            throw Damaged("listpack", "its length field does not match");
        }

        var items = new List<Item>(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(4)));
        var p = 6;
        while (true)
        {
            if (p >= bytes.Length)
            {
                throw Damaged("listpack", "no end marker");
            }

            var b = bytes[p];
            if (b == 0xFF)
            {
                break;
            }

            int header, length;
            Item item;
            if ((b & 0x80) == 0)
            {
                (header, length, item) = (1, 0, Item.Of(b & 0x7F));
            }
            else if ((b & 0xC0) == 0x80)
            {
                (header, length) = (1, b & 0x3F);
                item = Item.Of(Slice(data, p + header, length, "listpack"));
            }
            else if ((b & 0xE0) == 0xC0)
            {
                var raw = ((b & 0x1F) << 8) | At(bytes, p + 1, "listpack");
                (header, length, item) = (2, 0, Item.Of(raw >= 1 << 12 ? raw - (1 << 13) : raw));
            }
            else if ((b & 0xF0) == 0xE0)
            {
                (header, length) = (2, ((b & 0x0F) << 8) | At(bytes, p + 1, "listpack"));
                item = Item.Of(Slice(data, p + header, length, "listpack"));
            }
            else
            {
                switch (b)
                {
                    case 0xF0:
                        Need(bytes, p + 5, "listpack");
                        (header, length) = (5, checked((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p + 1))));
                        item = Item.Of(Slice(data, p + header, length, "listpack"));
                        break;
                    case 0xF1:
                        Need(bytes, p + 3, "listpack");
                        (header, length, item) = (3, 0, Item.Of(BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(p + 1))));
                        break;
                    case 0xF2:
                        Need(bytes, p + 4, "listpack");
                        var u24 = bytes[p + 1] | (bytes[p + 2] << 8) | (bytes[p + 3] << 16);
                        (header, length, item) = (4, 0, Item.Of((u24 << 8) >> 8));
                        break;
                    case 0xF3:
                        Need(bytes, p + 5, "listpack");
                        (header, length, item) = (5, 0, Item.Of(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p + 1))));
                        break;
                    case 0xF4:
                        Need(bytes, p + 9, "listpack");
                        (header, length, item) = (9, 0, Item.Of(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(p + 1))));
                        break;
                    default:
                        throw Damaged("listpack", $"unknown entry encoding 0x{b:x2}");
                }
            }

            items.Add(item);
            var entry = header + length;
            p += entry + BackLength(entry);
        }

        return items;
    }

    /// <summary>How many bytes a listpack entry's back length takes for an entry of that size.</summary>
    private static int BackLength(int entry) => entry switch
    {
        <= 127 => 1,
        < 16383 => 2,
        < 2097151 => 3,
        < 268435455 => 4,
        _ => 5,
    };

    /// <summary>Ziplist: total bytes (u32), tail offset (u32), count (u16), entries each after the previous one's length, 0xFF.</summary>
    public static List<Item> Ziplist(ReadOnlySpan<byte> blob)
    {
        var bytes = blob.ToArray();
        var data = bytes.AsMemory();
        if (bytes.Length < 11 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != bytes.Length)
        {
            throw Damaged("ziplist", "its length field does not match");
        }

        var items = new List<Item>();
        var p = 10;
        while (true)
        {
            var b = At(bytes, p, "ziplist");
            if (b == 0xFF)
            {
                break;
            }

            // The previous entry's length: one byte, or 0xFE and four.
            p += b == 0xFE ? 5 : 1;
            var e = At(bytes, p, "ziplist");
            switch (e >> 6)
            {
                case 0:
                    items.Add(Item.Of(Slice(data, p + 1, e & 0x3F, "ziplist")));
                    p += 1 + (e & 0x3F);
                    continue;
                case 1:
                    var n14 = ((e & 0x3F) << 8) | At(bytes, p + 1, "ziplist");
                    items.Add(Item.Of(Slice(data, p + 2, n14, "ziplist")));
                    p += 2 + n14;
                    continue;
                case 2:
                    Need(bytes, p + 5, "ziplist");
                    var n32 = checked((int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(p + 1)));
                    items.Add(Item.Of(Slice(data, p + 5, n32, "ziplist")));
                    p += 5 + n32;
                    continue;
            }

            switch (e)
            {
                case 0xC0:
                    Need(bytes, p + 3, "ziplist");
                    items.Add(Item.Of(BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(p + 1))));
                    p += 3;
                    break;
                case 0xD0:
                    Need(bytes, p + 5, "ziplist");
                    items.Add(Item.Of(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(p + 1))));
                    p += 5;
                    break;
                case 0xE0:
                    Need(bytes, p + 9, "ziplist");
                    items.Add(Item.Of(BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(p + 1))));
                    p += 9;
                    break;
                case 0xF0:
                    Need(bytes, p + 4, "ziplist");
                    var u24 = bytes[p + 1] | (bytes[p + 2] << 8) | (bytes[p + 3] << 16);
                    items.Add(Item.Of((u24 << 8) >> 8));
                    p += 4;
                    break;
                case 0xFE:
                    Need(bytes, p + 2, "ziplist");
                    items.Add(Item.Of((sbyte)bytes[p + 1]));
                    p += 2;
                    break;
                case >= 0xF1 and <= 0xFD:
                    items.Add(Item.Of((e & 0x0F) - 1));
                    p += 1;
                    break;
                default:
                    throw Damaged("ziplist", $"unknown entry encoding 0x{e:x2}");
            }
        }

        return items;
    }

    /// <summary>Zipmap (hashes of old files): count byte, then key and value with their lengths (and a value's free bytes), 0xFF.</summary>
    public static List<Item> Zipmap(ReadOnlySpan<byte> blob)
    {
        var bytes = blob.ToArray();
        var data = bytes.AsMemory();
        var items = new List<Item>();
        var p = 1;
        while (true)
        {
            var b = At(bytes, p, "zipmap");
            if (b == 0xFF)
            {
                break;
            }

            var key = Length(bytes, ref p);
            items.Add(Item.Of(Slice(data, p, key, "zipmap")));
            p += key;
            var value = Length(bytes, ref p);
            var free = At(bytes, p++, "zipmap");
            items.Add(Item.Of(Slice(data, p, value, "zipmap")));
            p += value + free;
        }

        return items;

        static int Length(byte[] bytes, ref int p)
        {
            var b = At(bytes, p, "zipmap");
            if (b < 254)
            {
                p++;
                return b;
            }

            if (b == 254)
            {
                Need(bytes, p + 5, "zipmap");
                var n = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(p + 1)));
                p += 5;
                return n;
            }

            throw Damaged("zipmap", "a length of 255");
        }
    }

    /// <summary>Intset: element size (u32: 2, 4 or 8), count (u32), the sorted integers.</summary>
    public static List<long> Intset(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 8)
        {
            throw Damaged("intset", "shorter than its header");
        }

        var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(blob);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(blob[4..]);
        if (size is not (2 or 4 or 8) || 8 + ((long)size * count) != blob.Length)
        {
            throw Damaged("intset", $"{count} elements of {size} bytes in {blob.Length} bytes");
        }

        var values = new List<long>((int)count);
        for (var i = 0; i < count; i++)
        {
            var at = blob.Slice(8 + (i * size), size);
            values.Add(size switch
            {
                2 => BinaryPrimitives.ReadInt16LittleEndian(at),
                4 => BinaryPrimitives.ReadInt32LittleEndian(at),
                _ => BinaryPrimitives.ReadInt64LittleEndian(at),
            });
        }

        return values;
    }

    private static byte At(byte[] bytes, int index, string encoding) =>
        index < bytes.Length ? bytes[index] : throw Damaged(encoding, "an entry runs past its end");

    private static void Need(byte[] bytes, int end, string encoding)
    {
        if (end > bytes.Length)
        {
            throw Damaged(encoding, "an entry runs past its end");
        }
    }

    private static ReadOnlyMemory<byte> Slice(ReadOnlyMemory<byte> data, int start, int length, string encoding) =>
        start >= 0 && length >= 0 && (long)start + length <= data.Length ? data.Slice(start, length) : throw Damaged(encoding, "a string runs past its end");
}
