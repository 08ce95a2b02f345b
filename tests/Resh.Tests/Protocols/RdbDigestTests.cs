using System.Buffers.Binary;
using System.Text;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

/// <summary>
/// The RDB digest on files built here byte by byte, for the encodings Redis 7.0 reads but no longer writes (ziplist,
/// zipmap, quicklist of ziplists, text scores, linked lists): each must digest like the same data in another encoding.
/// Files written by a real redis-server are tested in the integration tests.
/// </summary>
public sealed class RdbDigestTests
{
    [Fact]
    public void The_checksum_is_redis_crc64_jones()
    {
        Assert.Equal(0xe9c6d914c4b8d9caUL, Crc64.Update(0, "123456789"u8));
        var split = Crc64.Update(Crc64.Update(0, "1234"u8), "56789"u8);
        Assert.Equal(0xe9c6d914c4b8d9caUL, split);
    }

    [Fact]
    public void Lzf_literals_and_overlapping_back_references_decompress()
    {
        var output = new byte[10];
        Lzf.Decompress([0x00, (byte)'a', 0xE0, 0x00, 0x00], output);
        Assert.Equal("aaaaaaaaaa", Encoding.ASCII.GetString(output));
        Assert.Throws<InvalidDataException>(() => Lzf.Decompress([0x00, (byte)'a', 0xE0, 0x00, 0x05], new byte[10]));
        Assert.Throws<InvalidDataException>(() => Lzf.Decompress([0x05, (byte)'a'], new byte[6]));
    }

    [Fact]
    public void A_hash_digests_alike_as_hash_table_ziplist_zipmap_and_listpack()
    {
        var table = Digest(f => f.Value(4, "h", w => w.Length(2).String("f1").String("v1").String("f2").String("2")));
        Assert.Equal(table, Digest(f => f.Value(13, "h", w => w.String(Ziplist(S("f2"), I(2), S("f1"), S("v1"))))));
        Assert.Equal(table, Digest(f => f.Value(9, "h", w => w.String(Zipmap(("f1", "v1"), ("f2", "2"))))));
        Assert.Equal(table, Digest(f => f.Value(16, "h", w => w.String(Listpack(S("f1"), S("v1"), S("f2"), I(2))))));
        Assert.NotEqual(table, Digest(f => f.Value(4, "h", w => w.Length(2).String("f1").String("v1").String("f2").String("3"))));
        Assert.NotEqual(table, Digest(f => f.Value(4, "h", w => w.Length(2).String("f1").String("v2").String("f2").String("1"))));
    }

    [Fact]
    public void A_list_digests_alike_in_every_list_encoding_and_its_order_counts()
    {
        var linked = Digest(f => f.Value(1, "l", w => w.Length(4).String("a").String("1").String("-5000").String("b")));
        Assert.Equal(linked, Digest(f => f.Value(10, "l", w => w.String(Ziplist(S("a"), I(1), I(-5000), S("b"))))));
        Assert.Equal(linked, Digest(f => f.Value(14, "l", w => w.Length(2).String(Ziplist(S("a"), I(1))).String(Ziplist(I(-5000), S("b"))))));
        Assert.Equal(linked, Digest(f => f.Value(18, "l", w => w.Length(3).Length(2).String(Listpack(S("a"), I(1))).Length(1).String("-5000").Length(2).String(Listpack(S("b"))))));
        Assert.NotEqual(linked, Digest(f => f.Value(1, "l", w => w.Length(4).String("1").String("a").String("-5000").String("b"))));
    }

    [Fact]
    public void A_sorted_set_digests_alike_with_binary_text_and_packed_scores()
    {
        var binary = Digest(f => f.Value(5, "z", w => w.Length(2).String("a").Double(1.5).String("b").Double(2)));
        Assert.Equal(binary, Digest(f => f.Value(3, "z", w => w.Length(2).String("b").TextScore("2").String("a").TextScore("1.5"))));
        Assert.Equal(binary, Digest(f => f.Value(12, "z", w => w.String(Ziplist(S("a"), S("1.5"), S("b"), I(2))))));
        Assert.Equal(binary, Digest(f => f.Value(17, "z", w => w.String(Listpack(S("a"), S("1.5"), S("b"), I(2))))));
        Assert.NotEqual(binary, Digest(f => f.Value(5, "z", w => w.Length(2).String("a").Double(1.5).String("b").Double(2.5))));
    }

    [Fact]
    public void A_set_digests_alike_as_intset_and_hash_table_but_not_like_a_list()
    {
        var intset = Digest(f => f.Value(11, "s", w => w.String(Intset(-70000, 1, 2))));
        Assert.Equal(intset, Digest(f => f.Value(2, "s", w => w.Length(3).String("2").String("-70000").String("1"))));
        Assert.NotEqual(intset, Digest(f => f.Value(1, "s", w => w.Length(3).String("-70000").String("1").String("2"))));
    }

    [Fact]
    public void Keys_in_any_order_digest_alike_but_expiry_database_and_functions_count()
    {
        var ab = Digest(f => f.Value(0, "a", w => w.String("1")).Value(0, "b", w => w.String("2")));
        Assert.Equal(ab, Digest(f => f.Value(0, "b", w => w.String("2")).Value(0, "a", w => w.String("1"))));
        Assert.Equal(ab, Digest(f => f.Aux("ctime", "1").Value(0, "b", w => w.String("2")).Idle(5).Value(0, "a", w => w.String("1"))));
        Assert.NotEqual(ab, Digest(f => f.ExpireMs(1_000_000).Value(0, "a", w => w.String("1")).Value(0, "b", w => w.String("2"))));
        Assert.NotEqual(ab, Digest(f => f.Value(0, "a", w => w.String("1")).Select(1).Value(0, "b", w => w.String("2"))));
        Assert.NotEqual(ab, Digest(f => f.Function("#!lua name=x\n").Value(0, "a", w => w.String("1")).Value(0, "b", w => w.String("2"))));
    }

    [Fact]
    public void A_damaged_file_is_refused_with_where_and_why()
    {
        var good = new RdbFile().Value(0, "a", w => w.String("1")).Build(checksum: true);
        Assert.StartsWith("rdb:", RdbDigest.Compute(new MemoryStream(good)).ToString(), StringComparison.Ordinal);
        var flipped = (byte[])good.Clone();
        flipped[^10] ^= 0x01; // the value's byte
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => RdbDigest.Compute(new MemoryStream(flipped))).Message, StringComparison.Ordinal);
        Assert.Contains("ends inside", Assert.Throws<InvalidDataException>(() => RdbDigest.Compute(new MemoryStream(good[..^12]))).Message, StringComparison.Ordinal);
        Assert.Contains("not an RDB file", Assert.Throws<InvalidDataException>(() => RdbDigest.Compute(new MemoryStream("HELLO0009"u8.ToArray()))).Message, StringComparison.Ordinal);
        var module = new RdbFile().Value(7, "m", w => w.Length(1)).Build(checksum: false);
        Assert.Contains("module", Assert.Throws<InvalidDataException>(() => RdbDigest.Compute(new MemoryStream(module))).Message, StringComparison.Ordinal);
    }

    private static string Digest(Func<RdbFile, RdbFile> build) => RdbDigest.Compute(new MemoryStream(build(new RdbFile()).Build(checksum: true))).ToString();

    private static object S(string text) => text;

    private static object I(long value) => value;

    /// <summary>A ziplist: header, entries with the previous entry's length, 0xFF.</summary>
    private static byte[] Ziplist(params object[] items)
    {
        var body = new List<byte>();
        var previous = 0;
        foreach (var item in items)
        {
            var entry = new List<byte>();
            if (previous < 254)
            {
                entry.Add((byte)previous);
            }
            else
            {
                entry.Add(0xFE);
                entry.AddRange(BitConverter.GetBytes(previous));
            }

            if (item is string s)
            {
                entry.Add((byte)s.Length);
                entry.AddRange(Encoding.ASCII.GetBytes(s));
            }
            else
            {
                var v = (long)item;
                if (v is >= 0 and <= 12)
                {
                    entry.Add((byte)(0xF1 + v));
                }
                else
                {
                    entry.Add(0xC0);
                    entry.AddRange(BitConverter.GetBytes((short)v));
                }
            }

            previous = entry.Count;
            body.AddRange(entry);
        }

        var total = 10 + body.Count + 1;
        var bytes = new byte[total];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)(total - 1));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)items.Length);
        body.CopyTo(bytes, 10);
        bytes[^1] = 0xFF;
        return bytes;
    }

    /// <summary>A listpack: header, entries each with their back length, 0xFF.</summary>
    private static byte[] Listpack(params object[] items)
    {
        var body = new List<byte>();
        foreach (var item in items)
        {
            var entry = new List<byte>();
            if (item is string s)
            {
                entry.Add((byte)(0x80 | s.Length));
                entry.AddRange(Encoding.ASCII.GetBytes(s));
            }
            else
            {
                var v = (long)item;
                if (v is >= 0 and <= 127)
                {
                    entry.Add((byte)v);
                }
                else
                {
                    entry.Add(0xF1);
                    entry.AddRange(BitConverter.GetBytes((short)v));
                }
            }

            body.AddRange(entry);
            body.Add((byte)entry.Count);
        }

        var total = 6 + body.Count + 1;
        var bytes = new byte[total];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)total);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), (ushort)items.Length);
        body.CopyTo(bytes, 6);
        bytes[^1] = 0xFF;
        return bytes;
    }

    private static byte[] Zipmap(params (string Key, string Value)[] pairs)
    {
        var bytes = new List<byte> { (byte)pairs.Length };
        foreach (var (key, value) in pairs)
        {
            bytes.Add((byte)key.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(key));
            bytes.Add((byte)value.Length);
            bytes.Add(2); // free bytes after the value
            bytes.AddRange(Encoding.ASCII.GetBytes(value));
            bytes.AddRange([0, 0]);
        }

        bytes.Add(0xFF);
        return [.. bytes];
    }

    private static byte[] Intset(params int[] values)
    {
        var bytes = new byte[8 + (4 * values.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8 + (4 * i)), values[i]);
        }

        return bytes;
    }

    /// <summary>Writes an RDB file of version 9 part by part.</summary>
    private sealed class RdbFile
    {
        private readonly List<byte> _bytes = [.. "REDIS0009"u8.ToArray(), 0xFE, 0x00];

        public RdbFile Length(long n)
        {
            if (n < 64)
            {
                _bytes.Add((byte)n);
            }
            else
            {
                _bytes.Add(0x80);
                var b = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(b, (uint)n);
                _bytes.AddRange(b);
            }

            return this;
        }

        public RdbFile String(string text) => String(Encoding.ASCII.GetBytes(text));

        public RdbFile String(byte[] bytes)
        {
            Length(bytes.Length);
            _bytes.AddRange(bytes);
            return this;
        }

        public RdbFile Double(double value)
        {
            _bytes.AddRange(BitConverter.GetBytes(value));
            return this;
        }

        public RdbFile TextScore(string text)
        {
            _bytes.Add((byte)text.Length);
            _bytes.AddRange(Encoding.ASCII.GetBytes(text));
            return this;
        }

        public RdbFile Value(byte type, string key, Func<RdbFile, RdbFile> value)
        {
            _bytes.Add(type);
            String(key);
            return value(this);
        }

        public RdbFile Aux(string key, string value)
        {
            _bytes.Add(0xFA);
            return String(key).String(value);
        }

        public RdbFile Idle(long seconds)
        {
            _bytes.Add(0xF8);
            return Length(seconds);
        }

        public RdbFile ExpireMs(long ms)
        {
            _bytes.Add(0xFC);
            _bytes.AddRange(BitConverter.GetBytes(ms));
            return this;
        }

        public RdbFile Select(int db)
        {
            _bytes.Add(0xFE);
            return Length(db);
        }

        public RdbFile Function(string code)
        {
            _bytes.Add(0xF5);
            return String(code);
        }

        public byte[] Build(bool checksum)
        {
            var bytes = new List<byte>(_bytes) { 0xFF };
            var crc = checksum ? Crc64.Update(0, bytes.ToArray()) : 0;
            bytes.AddRange(BitConverter.GetBytes(crc));
            return [.. bytes];
        }
    }
}
