using System.Diagnostics;

namespace Resh.Memory;

/// <summary>
/// The state's snapshots: a pin that keeps the version of every object changed afterwards (copy on write) while the
/// apply loop goes on, the file format (little-endian: a header with everything the rules depend on, then every object
/// by id), and loading one back, at start or when the cluster falls back.
/// </summary>
internal sealed partial class MemoryState
{
    /// <summary>
    /// Starts a snapshot of the state as it is now: the apply loop goes on, and from now on keeps the version each object
    /// had at this point until the snapshot is written (copy on write). What the apply loop waits for is only this call.
    /// </summary>
    public StateSnapshot Pin()
    {
        lock (_sync)
        {
            var held = Stopwatch.GetTimestamp();
            if (_preserved is not null)
            {
                throw new InvalidOperationException("a snapshot is already being taken");
            }

            _preserved = [];
            _pinnedAt = _position;
            var ids = _objects.Keys.ToArray();
            var header = new SnapshotHeader(
                _position,
                _records,
                _nextOrdinal,
                [.. _highWater.OrderBy(kv => kv.Key)],
                [.. _reservations.Values.OrderBy(r => r.Ordinal).Select(r => (r.Tx, r.Ids, r.Ordinal, r.GrantedAt))],
                [.. _outbox.Values]);
            return new StateSnapshot(this, header, ids, Stopwatch.GetElapsedTime(held));
        }
    }

    internal StoredObject? SnapshotRead(long id)
    {
        lock (_sync)
        {
            if (_preserved is { } preserved && preserved.TryGetValue(id, out var kept))
            {
                return kept;
            }

            return _objects.GetValueOrDefault(id);
        }
    }

    internal void Unpin()
    {
        lock (_sync)
        {
            _preserved = null;
            _pinnedAt = -1;
        }
    }

    /// <summary>Position of the snapshot being taken, or -1.</summary>
    public long PinnedAt
    {
        get
        {
            lock (_sync)
            {
                return _pinnedAt;
            }
        }
    }

    /// <summary>Replaces everything with <paramref name="other"/>'s state (a fallback), at log position <paramref name="position"/>.</summary>
    public void ReplaceWith(MemoryState other, long position)
    {
        lock (_sync)
        {
            lock (other._sync)
            {
                foreach (var id in _objects.Keys.ToList())
                {
                    Preserve(id);
                }

                _objects.Clear();
                foreach (var (id, o) in other._objects)
                {
                    _objects[id] = o;
                }

                _highWater.Clear();
                foreach (var (node, high) in other._highWater)
                {
                    _highWater[node] = Math.Max(high, _highWater.GetValueOrDefault(node));
                }

                _reservations.Clear();
                _queues.Clear();
                _outbox.Clear();
                foreach (var (op, entry) in other._outbox)
                {
                    _outbox[op] = entry;
                }

                _nextOrdinal = other._nextOrdinal;
                _records = other._records;
                _position = position;
            }
        }
    }

    /// <summary>Writes a pinned snapshot: a header and every object at the pinned position, by id.</summary>
    public static async Task WriteAsync(StateSnapshot snapshot, Stream stream, CancellationToken cancellationToken)
    {
        var h = snapshot.Header;
        var w = new RecordWriter();
        w.Long(Magic);
        w.Long(h.Position);
        w.Long(h.Records);
        w.Long(h.NextOrdinal);
        w.Int(h.HighWater.Length);
        foreach (var (node, high) in h.HighWater)
        {
            w.Int(node);
            w.Long(high);
        }

        w.Int(h.Reservations.Length);
        foreach (var (tx, reserved, ordinal, granted) in h.Reservations)
        {
            w.Int(tx.Node);
            w.Long(tx.Tx);
            w.Longs(reserved);
            w.Long(ordinal);
            w.Long(granted);
        }

        w.Int(h.Outbox.Length);
        foreach (var e in h.Outbox)
        {
            w.Long(e.Operation);
            w.Int(e.Node);
            w.String(e.Device);
            w.Bytes(e.Payload);
        }

        await stream.WriteAsync(w.ToArray(), cancellationToken);
        var ids = snapshot.Ids;
        Array.Sort(ids);
        var count = 0L;
        var batch = new RecordWriter();
        foreach (var id in ids)
        {
            if (snapshot.Read(id) is not { } o)
            {
                continue;
            }

            batch.Byte(1);
            batch.Long(id);
            batch.Long(o.Version);
            batch.Long(o.LastLinked);
            batch.Bytes(o.Data);
            batch.Longs(o.Refs);
            count++;
            if (count % 4096 == 0)
            {
                await stream.WriteAsync(batch.ToArray(), cancellationToken);
                batch = new RecordWriter();
            }
        }

        batch.Byte(0);
        batch.Long(count);
        await stream.WriteAsync(batch.ToArray(), cancellationToken);
    }

    /// <summary>Reads a snapshot file back into a state.</summary>
    /// <exception cref="InvalidDataException">The file is not a complete snapshot of this format.</exception>
    public static MemoryState Load(byte[] bytes)
    {
        var r = new RecordReader(bytes);
        if (bytes.Length < 8 || r.Long() != Magic)
        {
            throw new InvalidDataException("not a memory snapshot (bad magic)");
        }

        var s = new MemoryState
        {
            _position = r.Long(),
            _records = r.Long(),
            _nextOrdinal = r.Long(),
        };
        for (var n = r.Count(12); n > 0; n--)
        {
            s._highWater[r.Int()] = r.Long();
        }

        for (var n = r.Count(32); n > 0; n--)
        {
            var res = new Reservation(new TxKey(r.Int(), r.Long()), r.Longs(), r.Long()) { GrantedAt = r.Long() };
            s._reservations[res.Tx] = res;
            foreach (var id in res.Ids)
            {
                if (!s._queues.TryGetValue(id, out var queue))
                {
                    s._queues[id] = queue = [];
                }

                queue.Add(res);
            }
        }

        for (var n = r.Count(20); n > 0; n--)
        {
            var e = new OutboxEntry(r.Long(), r.Int(), r.String(), r.Bytes());
            s._outbox[e.Operation] = e;
        }

        long count = 0;
        while (r.Byte() == 1)
        {
            var id = r.Long();
            var version = r.Long();
            var linked = r.Long();
            var data = r.Bytes();
            s._objects[id] = new StoredObject(version, data, r.Longs(), linked);
            count++;
        }

        if (r.Long() != count || !r.End)
        {
            throw new InvalidDataException("memory snapshot: the object count does not match (the file is damaged or cut short)");
        }

        return s;
    }
}

/// <summary>What a snapshot holds besides the objects.</summary>
internal sealed record SnapshotHeader(
    long Position,
    long Records,
    long NextOrdinal,
    KeyValuePair<int, long>[] HighWater,
    (TxKey Tx, long[] Ids, long Ordinal, long GrantedAt)[] Reservations,
    OutboxEntry[] Outbox);

/// <summary>A state pinned at one position while the apply loop goes on; dispose to let go of the kept versions.</summary>
internal sealed class StateSnapshot(MemoryState state, SnapshotHeader header, long[] ids, TimeSpan pause) : IDisposable
{
    /// <summary>How long the pin held the state's lock: the only time the apply loop (and every reader) waited for it.</summary>
    public TimeSpan Pause { get; } = pause;

    public SnapshotHeader Header { get; } = header;

    public long Position => Header.Position;

    public long[] Ids { get; } = ids;

    public StoredObject? Read(long id) => state.SnapshotRead(id);

    public void Dispose() => state.Unpin();
}
