using System.Buffers;

namespace Resh.Protocols.Resp;

/// <summary>
/// The iterations of SCAN, SSCAN, HSCAN and ZSCAN, kept by the gateway. A replica's cursor is a position in its own
/// randomly seeded hash table, so the replicas' cursors differ and cannot be voted on. Instead the gateway takes
/// one voted snapshot of the collection when an iteration starts (cursor 0: KEYS, SMEMBERS, HGETALL or ZRANGE,
/// ordered in the log like any read), sorts it, and hands it out page by page. Redis's guarantees hold: an
/// element present for the whole iteration was in the snapshot and is returned exactly once, and an iteration
/// ends after snapshot-size / COUNT calls. The snapshot lives in the gateway, not in a replica, so a replica's
/// rebuild does not invalidate a cursor. Snapshots are shared by the gateway's sessions (a client that
/// reconnects goes on), bounded in number and in elements, and dropped when finished or unused for
/// <see cref="IdleLimit"/>; an unknown cursor is answered with an error, never with a silently short iteration.
/// </summary>
internal sealed class RespCursors
{
    /// <summary>A snapshot not used for this long is dropped.</summary>
    public static readonly TimeSpan IdleLimit = TimeSpan.FromMinutes(10);

    private const int MaxSnapshots = 4096;
    private const long MaxElements = 50_000_000;
    private const int OffsetBits = 32;

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Snapshot> _snapshots = [];
    private readonly TimeProvider _clock;
    private long _nextId;
    private long _elements;

    public RespCursors(TimeProvider clock) => _clock = clock;

    /// <summary>Keeps a new snapshot (elements in pairs when <paramref name="unit"/> is 2) and writes its first page.</summary>
    public void Start(List<byte[]> elements, int unit, int count, byte[]? match, IBufferWriter<byte> output)
    {
        var snapshot = new Snapshot(Sort(elements, unit), unit);
        long id = 0;
        if (snapshot.Items.Length / unit > count)
        {
            lock (_lock)
            {
                Evict(snapshot.Items.Length);
                id = (_nextId = (_nextId % ((1L << 30) - 1)) + 1) << OffsetBits;
                snapshot.LastUsed = _clock.GetTimestamp();
                _snapshots[id] = snapshot;
                _elements += snapshot.Items.Length;
            }
        }

        WritePage(snapshot, id, 0, count, match, output);
    }

    /// <summary>Writes the page at <paramref name="cursor"/>; false when the cursor is unknown (finished, expired or never issued).</summary>
    public bool TryNext(ulong cursor, int count, byte[]? match, IBufferWriter<byte> output)
    {
        var id = (long)(cursor >> OffsetBits) << OffsetBits;
        var offset = (long)(cursor & ((1UL << OffsetBits) - 1));
        Snapshot? snapshot;
        lock (_lock)
        {
            if (cursor >> 62 != 0 || !_snapshots.TryGetValue(id, out snapshot) || offset * snapshot.Unit > snapshot.Items.Length)
            {
                return false;
            }

            snapshot.LastUsed = _clock.GetTimestamp();
        }

        WritePage(snapshot, id, offset, count, match, output);
        return true;
    }

    private void WritePage(Snapshot snapshot, long id, long offset, int count, byte[]? match, IBufferWriter<byte> output)
    {
        var units = snapshot.Items.Length / snapshot.Unit;
        var end = Math.Min(units, offset + count);
        var next = end >= units ? 0 : id | end;
        if (next == 0 && id != 0)
        {
            lock (_lock)
            {
                if (_snapshots.Remove(id))
                {
                    _elements -= snapshot.Items.Length;
                }
            }
        }

        var page = new List<byte[]>((int)(end - offset) * snapshot.Unit);
        for (var i = offset; i < end; i++)
        {
            var first = snapshot.Items[i * snapshot.Unit];
            if (match is not null && !RespGlob.Matches(match, first))
            {
                continue;
            }

            for (var j = 0; j < snapshot.Unit; j++)
            {
                page.Add(snapshot.Items[(i * snapshot.Unit) + j]);
            }
        }

        RespEncoding.WriteArrayHeader(output, 2);
        RespEncoding.WriteBulk(output, System.Text.Encoding.ASCII.GetBytes(((ulong)next).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        RespReplyReader.WriteBulkArray(output, page);
    }

    /// <summary>Drops idle snapshots, then the least recently used ones, until a snapshot of <paramref name="incoming"/> elements fits.</summary>
    private void Evict(long incoming)
    {
        var now = _clock.GetTimestamp();
        foreach (var (id, snapshot) in _snapshots.ToArray())
        {
            if (_clock.GetElapsedTime(snapshot.LastUsed, now) > IdleLimit)
            {
                _snapshots.Remove(id);
                _elements -= snapshot.Items.Length;
            }
        }

        while (_snapshots.Count > 0 && (_snapshots.Count >= MaxSnapshots || _elements + incoming > MaxElements))
        {
            var oldest = _snapshots.MinBy(s => s.Value.LastUsed);
            _snapshots.Remove(oldest.Key);
            _elements -= oldest.Value.Items.Length;
        }
    }

    private static byte[][] Sort(List<byte[]> elements, int unit)
    {
        if (unit == 1)
        {
            var items = elements.ToArray();
            Array.Sort(items, (x, y) => x.AsSpan().SequenceCompareTo(y));
            return items;
        }

        var pairs = Enumerable.Range(0, elements.Count / unit).Select(i => (Key: elements[i * unit], Value: elements[(i * unit) + 1])).ToArray();
        Array.Sort(pairs, (x, y) => x.Key.AsSpan().SequenceCompareTo(y.Key));
        return [.. pairs.SelectMany(p => new[] { p.Key, p.Value })];
    }

    private sealed class Snapshot(byte[][] items, int unit)
    {
        public byte[][] Items { get; } = items;

        public int Unit { get; } = unit;

        public long LastUsed { get; set; }
    }
}

/// <summary>Redis's glob-style pattern matching (stringmatchlen): *, ?, [abc], [^a-z], and \ escapes; case-sensitive.</summary>
internal static class RespGlob
{
    public static bool Matches(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text) => Match(pattern, text, 0);

    private static bool Match(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> text, int depth)
    {
        if (depth > 1000)
        {
            return false;
        }

        while (!pattern.IsEmpty)
        {
            switch (pattern[0])
            {
                case (byte)'*':
                    while (pattern.Length > 1 && pattern[1] == (byte)'*')
                    {
                        pattern = pattern[1..];
                    }

                    if (pattern.Length == 1)
                    {
                        return true;
                    }

                    for (var i = 0; i <= text.Length; i++)
                    {
                        if (Match(pattern[1..], text[i..], depth + 1))
                        {
                            return true;
                        }
                    }

                    return false;
                case (byte)'?':
                    if (text.IsEmpty)
                    {
                        return false;
                    }

                    text = text[1..];
                    break;
                case (byte)'[':
                    {
                        if (text.IsEmpty)
                        {
                            return false;
                        }

                        pattern = pattern[1..];
                        var not = !pattern.IsEmpty && pattern[0] == (byte)'^';
                        if (not)
                        {
                            pattern = pattern[1..];
                        }

                        var matched = false;
                        while (!pattern.IsEmpty && pattern[0] != (byte)']')
                        {
                            if (pattern[0] == (byte)'\\' && pattern.Length >= 2)
                            {
                                pattern = pattern[1..];
                                matched |= pattern[0] == text[0];
                            }
                            else if (pattern.Length >= 3 && pattern[1] == (byte)'-' && pattern[2] != (byte)']')
                            {
                                var (low, high) = pattern[0] <= pattern[2] ? (pattern[0], pattern[2]) : (pattern[2], pattern[0]);
                                matched |= text[0] >= low && text[0] <= high;
                                pattern = pattern[2..];
                            }
                            else
                            {
                                matched |= pattern[0] == text[0];
                            }

                            pattern = pattern[1..];
                        }

                        if (matched == not)
                        {
                            return false;
                        }

                        text = text[1..];
                        if (pattern.IsEmpty)
                        {
                            // An unclosed class ends the pattern, as in Redis.
                            return text.IsEmpty;
                        }

                        break;
                    }

                case (byte)'\\' when pattern.Length >= 2:
                    pattern = pattern[1..];
                    if (text.IsEmpty || pattern[0] != text[0])
                    {
                        return false;
                    }

                    text = text[1..];
                    break;
                default:
                    if (text.IsEmpty || pattern[0] != text[0])
                    {
                        return false;
                    }

                    text = text[1..];
                    break;
            }

            pattern = pattern[1..];
        }

        return text.IsEmpty;
    }
}
