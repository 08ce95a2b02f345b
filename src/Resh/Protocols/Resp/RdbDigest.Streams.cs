using System.Buffers.Binary;
using System.IO.Hashing;

namespace Resh.Protocols.Resp;

public static partial class RdbDigest
{
    /// <summary>
    /// Streams (RDB types 15, 19 and 21): the entries in id order whatever nodes they are packed in (deleted ones left
    /// out), the stream's ids and counters, and its consumer groups in any order: last id, entries read, the pending
    /// entries with delivery time and count (the gateway stamps those deterministically), and each consumer's name and
    /// pending ids. A consumer's seen and active times are the replica's own clock and are left out.
    /// </summary>
    private static class Streams
    {
        private const long Deleted = 1;
        private const long SameFields = 2;

        public static void Read(RdbReader reader, byte type, State state)
        {
            for (var nodes = reader.ReadLength(); nodes > 0; nodes--)
            {
                var key = reader.ReadString();
                if (key.Length != 16)
                {
                    throw new InvalidDataException($"a stream node key of {key.Length} bytes (16 expected)");
                }

                var masterMs = BinaryPrimitives.ReadInt64BigEndian(key);
                var masterSeq = BinaryPrimitives.ReadInt64BigEndian(key[8..]);
                Node(Packed.Listpack(reader.ReadString()), masterMs, masterSeq, state);
            }

            state.Ordered(reader.ReadNumber());
            state.Ordered(reader.ReadNumber());
            state.Ordered(reader.ReadNumber());
            if (type >= 19)
            {
                // First id, largest deleted id, entries ever added.
                for (var i = 0; i < 5; i++)
                {
                    state.Ordered(reader.ReadNumber());
                }
            }

            var groups = reader.ReadLength();
            UInt128 sum = 0;
            var group = new XxHash128();
            var consumer = new XxHash128();
            for (var g = 0; g < groups; g++)
            {
                group.Reset();
                Field(group, reader.ReadString());
                Number(group, reader.ReadNumber());
                Number(group, reader.ReadNumber());
                if (type >= 19)
                {
                    Number(group, reader.ReadNumber());
                }

                var pending = reader.ReadLength();
                Number(group, pending);
                for (var i = 0; i < pending; i++)
                {
                    var (ms, seq) = reader.ReadStreamId();
                    Number(group, (long)ms);
                    Number(group, (long)seq);
                    Number(group, reader.ReadInt64LittleEndian());
                    Number(group, reader.ReadNumber());
                }

                var consumers = reader.ReadLength();
                UInt128 consumerSum = 0;
                for (var c = 0; c < consumers; c++)
                {
                    consumer.Reset();
                    Field(consumer, reader.ReadString());
                    reader.ReadInt64LittleEndian();
                    if (type >= 21)
                    {
                        reader.ReadInt64LittleEndian();
                    }

                    for (var n = reader.ReadLength(); n > 0; n--)
                    {
                        var (ms, seq) = reader.ReadStreamId();
                        Number(consumer, (long)ms);
                        Number(consumer, (long)seq);
                    }

                    consumerSum += consumer.GetCurrentHashAsUInt128();
                }

                Sum(group, consumerSum);
                Number(group, consumers);
                sum += group.GetCurrentHashAsUInt128();
            }

            state.Unordered(sum, groups);
        }

        /// <summary>
        /// One node: a master entry (live and deleted counts, the master fields, a 0), then each entry as flags, id deltas,
        /// its values (the master's fields) or its own fields and values, and its item count.
        /// </summary>
        private static void Node(List<Packed.Item> items, long masterMs, long masterSeq, State state)
        {
            var p = 0;
            Packed.Item Next() => p < items.Count ? items[p++] : throw new InvalidDataException("a damaged stream node: it ends inside an entry");

            Next();
            Next();
            var masterFields = Count(Next().Integer);
            var fields = new Packed.Item[masterFields];
            for (var i = 0; i < masterFields; i++)
            {
                fields[i] = Next();
            }

            if (Next().Integer != 0)
            {
                throw new InvalidDataException("a damaged stream node: no end of its master entry");
            }

            while (p < items.Count)
            {
                var flags = Next().Integer;
                var ms = masterMs + Next().Integer;
                var seq = masterSeq + Next().Integer;
                var live = (flags & Deleted) == 0;
                if (live)
                {
                    state.Ordered(ms);
                    state.Ordered(seq);
                }

                if ((flags & SameFields) != 0)
                {
                    if (live)
                    {
                        state.Ordered(masterFields);
                    }

                    for (var i = 0; i < masterFields; i++)
                    {
                        var value = Next();
                        if (live)
                        {
                            state.Ordered(fields[i].Text());
                            state.Ordered(value.Text());
                        }
                    }
                }
                else
                {
                    var count = Count(Next().Integer);
                    if (live)
                    {
                        state.Ordered(count);
                    }

                    for (var i = 0; i < count; i++)
                    {
                        var field = Next();
                        var value = Next();
                        if (live)
                        {
                            state.Ordered(field.Text());
                            state.Ordered(value.Text());
                        }
                    }
                }

                // The entry's item count, for walking the node backwards.
                Next();
            }
        }

        private static int Count(long value) =>
            value is >= 0 and <= int.MaxValue ? (int)value : throw new InvalidDataException($"a damaged stream node: a count of {value}");
    }
}
