// Over 400 lines: one file format, read to the end (every value type and encoding Redis 7.0 reads, and the stream
// layout), whose parts must agree on what the digest covers.
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;

namespace Resh.Protocols.Resp;

/// <summary>
/// A digest of the data in an RDB file that two replicas holding the same data agree on, however Redis encoded it:
/// every key with its type, value and expiry deadline, per database, independent of the order of keys, of set members,
/// hash fields and sorted-set members, of the encoding (listpack, ziplist, zipmap, intset, quicklist, hash table), of
/// integers stored as numbers or text, of deleted stream entries still in a node, and of everything that is not data:
/// header fields, resize hints, LRU and LFU, consumers' seen times. Functions count. The file's CRC-64 must match
/// (a file damaged anywhere is refused, not digested). Streams through the file once, off the service's main thread.
/// </summary>
public static partial class RdbDigest
{
    private const byte OpFunction2 = 0xF5;
    private const byte OpFunction = 0xF6;
    private const byte OpModuleAux = 0xF7;
    private const byte OpIdle = 0xF8;
    private const byte OpFreq = 0xF9;
    private const byte OpAux = 0xFA;
    private const byte OpResizeDb = 0xFB;
    private const byte OpExpireMs = 0xFC;
    private const byte OpExpire = 0xFD;
    private const byte OpSelectDb = 0xFE;
    private const byte OpEof = 0xFF;

    /// <summary>The digest of one file, as text: "rdb:" and 32 hex digits, then each database's key count.</summary>
    public static string Compute(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        try
        {
            return Compute(stream).ToString();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>The digest of an RDB stream.</summary>
    public static Result Compute(Stream stream)
    {
        var reader = new RdbReader(stream);
        var header = new byte[9];
        for (var i = 0; i < header.Length; i++)
        {
            header[i] = reader.ReadByte();
        }

        if (!header.AsSpan(0, 5).SequenceEqual("REDIS"u8)
            || !int.TryParse(header.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            throw new InvalidDataException("not an RDB file (no REDIS header)");
        }

        if (version is < 1 or > 11)
        {
            throw new InvalidDataException($"RDB version {version} is not read here (1 to 11 are)");
        }

        var state = new State(version);
        var db = 0L;
        var expiry = -1L;
        while (true)
        {
            var type = reader.ReadByte();
            switch (type)
            {
                case OpEof:
                    return state.Finish(reader);
                case OpSelectDb:
                    db = reader.ReadLength();
                    continue;
                case OpResizeDb:
                    reader.ReadLength();
                    reader.ReadLength();
                    continue;
                case OpAux:
                    reader.ReadString();
                    reader.ReadString();
                    continue;
                case OpExpireMs:
                    expiry = reader.ReadInt64LittleEndian();
                    continue;
                case OpExpire:
                    expiry = reader.ReadUInt32LittleEndian() * 1000L;
                    continue;
                case OpIdle:
                    reader.ReadLength();
                    continue;
                case OpFreq:
                    reader.ReadByte();
                    continue;
                case OpFunction2:
                    state.Function(reader.ReadString());
                    continue;
                case OpFunction:
                    throw new InvalidDataException("functions of a Redis 7.0 release candidate (opcode 246) are not read here");
                case OpModuleAux:
                    throw new InvalidDataException("module data is not read here (a module's type cannot be digested)");
                default:
                    state.Key(reader, db, type, expiry);
                    expiry = -1;
                    continue;
            }
        }
    }

    /// <summary>
    /// The digest of the value in a DUMP payload (the value's type and RDB encoding, two bytes of RDB version and a
    /// CRC-64 of both), computed as for a key in a file but without the key's name and expiry. False when the
    /// checksum does not match, the version is not read here, or the value cannot be read (a module's type).
    /// </summary>
    public static bool TryDumpDigest(ReadOnlySpan<byte> dump, out UInt128 digest)
    {
        digest = default;
        if (dump.Length < 11)
        {
            return false;
        }

        var footer = dump.Length - 10;
        var version = BinaryPrimitives.ReadUInt16LittleEndian(dump.Slice(footer, 2));
        if (version is < 1 or > 11 || Crc64.Update(0, dump[..(footer + 2)]) != BinaryPrimitives.ReadUInt64LittleEndian(dump[(footer + 2)..]))
        {
            return false;
        }

        try
        {
            var reader = new RdbReader(dump[..footer].ToArray());
            digest = new State(version).Value(reader, reader.ReadByte());
            return reader.Offset == footer;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>What a file holds: one 128-bit digest, and the keys of each database (for the humans reading a mismatch).</summary>
    public sealed record Result(UInt128 Digest, IReadOnlyDictionary<long, long> Keys)
    {
        public override string ToString() =>
            $"rdb:{Digest:x32}" + string.Concat(Keys.OrderBy(k => k.Key).Select(k => string.Create(CultureInfo.InvariantCulture, $" db{k.Key}={k.Value}")));
    }

    /// <summary>A length-prefixed field into a hash (so two fields never run into one another).</summary>
    private static void Field(XxHash128 hash, ReadOnlySpan<byte> value)
    {
        Number(hash, value.Length);
        hash.Append(value);
    }

    private static void Number(XxHash128 hash, long value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        hash.Append(bytes);
    }

    /// <summary>A sum of element hashes (an unordered collection) into a hash.</summary>
    private static void Sum(XxHash128 hash, UInt128 sum)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128LittleEndian(bytes, sum);
        hash.Append(bytes);
    }

    /// <summary>The running digest: per key a hash of everything the key holds, summed (so the keys' order does not count).</summary>
    private sealed class State(int version)
    {
        private readonly XxHash128 _key = new();
        private readonly XxHash128 _element = new();
        private readonly Dictionary<long, (UInt128 Sum, long Keys)> _databases = [];
        private UInt128 _functions;

        public void Function(ReadOnlySpan<byte> code)
        {
            _element.Reset();
            _element.Append(code);
            _functions += _element.GetCurrentHashAsUInt128();
        }

        public void Key(RdbReader reader, long db, byte type, long expiry)
        {
            _key.Reset();
            var key = reader.ReadString();
            Field(_key, key);
            Number(_key, expiry);
            Values.Read(reader, type, version, this);
            var (sum, keys) = _databases.GetValueOrDefault(db);
            _databases[db] = (sum + _key.GetCurrentHashAsUInt128(), keys + 1);
        }

        /// <summary>The hash of one value alone (a DUMP payload): what <see cref="Key"/> sums, without the key's name and expiry.</summary>
        public UInt128 Value(RdbReader reader, byte type)
        {
            _key.Reset();
            Values.Read(reader, type, version, this);
            return _key.GetCurrentHashAsUInt128();
        }

        /// <summary>The logical type of the value being read, so a set and a list of the same members differ.</summary>
        public void Kind(char kind) => Number(_key, kind);

        /// <summary>An element of an ordered value (list items, a stream's entries and pending ids): into the key's hash in order.</summary>
        public void Ordered(ReadOnlySpan<byte> value) => Field(_key, value);

        public void Ordered(long value) => Number(_key, value);

        /// <summary>An element of an unordered value (set members, hash fields with their values, zset members with scores).</summary>
        public UInt128 Element(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second = default, long third = 0)
        {
            _element.Reset();
            Field(_element, first);
            Field(_element, second);
            Number(_element, third);
            return _element.GetCurrentHashAsUInt128();
        }

        /// <summary>Closes an unordered value: its elements' sum and count go into the key's hash.</summary>
        public void Unordered(UInt128 sum, long count)
        {
            Sum(_key, sum);
            Number(_key, count);
        }

        public Result Finish(RdbReader reader)
        {
            var computed = reader.Crc;
            reader.EndCrc();
            if (version >= 5)
            {
                var stored = (ulong)reader.ReadInt64LittleEndian();
                if (stored != 0 && stored != computed)
                {
                    throw new InvalidDataException($"the checksum does not match (file {stored:x16}, computed {computed:x16}): the file is damaged");
                }
            }

            var total = new XxHash128();
            foreach (var (db, (sum, keys)) in _databases.OrderBy(d => d.Key))
            {
                Number(total, db);
                Number(total, keys);
                Sum(total, sum);
            }

            Sum(total, _functions);
            return new Result(total.GetCurrentHashAsUInt128(), _databases.ToDictionary(d => d.Key, d => d.Value.Keys));
        }
    }

    /// <summary>Every value type and encoding, read into the state in its logical form.</summary>
    private static class Values
    {
        public static void Read(RdbReader reader, byte type, int version, State state)
        {
            switch (type)
            {
                case 0: // string
                    state.Kind('s');
                    state.Ordered(reader.ReadString());
                    break;
                case 1: // list, linked list of strings (old)
                    state.Kind('l');
                    for (var n = reader.ReadLength(); n > 0; n--)
                    {
                        state.Ordered(reader.ReadString());
                    }

                    break;
                case 2: // set, hash table
                    {
                        state.Kind('S');
                        UInt128 sum = 0;
                        var n = reader.ReadLength();
                        for (var i = 0; i < n; i++)
                        {
                            sum += state.Element(reader.ReadString());
                        }

                        state.Unordered(sum, n);
                        break;
                    }

                case 3 or 5: // sorted set, skiplist (3: scores as text, 5: binary doubles)
                    {
                        state.Kind('z');
                        UInt128 sum = 0;
                        var n = reader.ReadLength();
                        for (var i = 0; i < n; i++)
                        {
                            var member = reader.ReadString().ToArray();
                            var score = type == 5 ? reader.ReadDoubleLittleEndian() : ReadTextScore(reader);
                            sum += state.Element(member, default, ScoreBits(score));
                        }

                        state.Unordered(sum, n);
                        break;
                    }

                case 4: // hash, hash table
                    {
                        state.Kind('h');
                        UInt128 sum = 0;
                        var n = reader.ReadLength();
                        for (var i = 0; i < n; i++)
                        {
                            var field = reader.ReadString().ToArray();
                            sum += state.Element(field, reader.ReadString());
                        }

                        state.Unordered(sum, n);
                        break;
                    }

                case 6 or 7:
                    throw new InvalidDataException("a module type is not read here (a module's value cannot be digested)");
                case 9: // hash, zipmap (old)
                    state.Kind('h');
                    Pairs(Packed.Zipmap(reader.ReadString()), state, PairKind.Hash);
                    break;
                case 10: // list, ziplist
                    state.Kind('l');
                    foreach (var item in Packed.Ziplist(reader.ReadString()))
                    {
                        state.Ordered(item.Text());
                    }

                    break;
                case 11: // set, intset
                    {
                        state.Kind('S');
                        UInt128 sum = 0;
                        var members = Packed.Intset(reader.ReadString());
                        Span<byte> text = stackalloc byte[20];
                        foreach (var member in members)
                        {
                            member.TryFormat(text, out var written, default, CultureInfo.InvariantCulture);
                            sum += state.Element(text[..written]);
                        }

                        state.Unordered(sum, members.Count);
                        break;
                    }

                case 12: // sorted set, ziplist
                    state.Kind('z');
                    Pairs(Packed.Ziplist(reader.ReadString()), state, PairKind.Zset);
                    break;
                case 13: // hash, ziplist
                    state.Kind('h');
                    Pairs(Packed.Ziplist(reader.ReadString()), state, PairKind.Hash);
                    break;
                case 14 or 18: // list, quicklist (14: ziplist nodes; 18: listpack or plain nodes)
                    state.Kind('l');
                    for (var nodes = reader.ReadLength(); nodes > 0; nodes--)
                    {
                        var container = type == 18 ? reader.ReadLength() : 2;
                        var node = reader.ReadString();
                        if (container == 1)
                        {
                            state.Ordered(node);
                            continue;
                        }

                        foreach (var item in type == 14 ? Packed.Ziplist(node) : Packed.Listpack(node))
                        {
                            state.Ordered(item.Text());
                        }
                    }

                    break;
                case 16: // hash, listpack
                    state.Kind('h');
                    Pairs(Packed.Listpack(reader.ReadString()), state, PairKind.Hash);
                    break;
                case 17: // sorted set, listpack
                    state.Kind('z');
                    Pairs(Packed.Listpack(reader.ReadString()), state, PairKind.Zset);
                    break;
                case 20: // set, listpack (Redis 7.2)
                    {
                        state.Kind('S');
                        UInt128 sum = 0;
                        var members = Packed.Listpack(reader.ReadString());
                        foreach (var member in members)
                        {
                            sum += state.Element(member.Text());
                        }

                        state.Unordered(sum, members.Count);
                        break;
                    }

                case 15 or 19 or 21:
                    state.Kind('x');
                    Streams.Read(reader, type, state);
                    break;
                default:
                    throw new InvalidDataException($"unknown value type {type} at byte {reader.Offset - 1} (RDB version {version})");
            }
        }

        private enum PairKind
        {
            Hash,
            Zset,
        }

        /// <summary>Field and value (hash), or member and score (sorted set), alternating.</summary>
        private static void Pairs(List<Packed.Item> items, State state, PairKind kind)
        {
            if (items.Count % 2 != 0)
            {
                throw new InvalidDataException("an odd number of items in a packed hash or sorted set");
            }

            UInt128 sum = 0;
            for (var i = 0; i < items.Count; i += 2)
            {
                sum += kind == PairKind.Hash
                    ? state.Element(items[i].Text(), items[i + 1].Text())
                    : state.Element(items[i].Text(), default, ScoreBits(items[i + 1].Number()));
            }

            state.Unordered(sum, items.Count / 2);
        }

        private static double ReadTextScore(RdbReader reader)
        {
            var length = reader.ReadByte();
            return length switch
            {
                253 => double.NaN,
                254 => double.PositiveInfinity,
                255 => double.NegativeInfinity,
                _ => Packed.Score(reader.Take(length)),
            };
        }

        /// <summary>A score as the bits of its double (0 and -0 as one).</summary>
        private static long ScoreBits(double score) => BitConverter.DoubleToInt64Bits(score == 0 ? 0 : score);
    }
}
