using System.Buffers.Binary;
using System.Text;

namespace Resh.Memory;

/// <summary>How the log decided one commit.</summary>
internal enum CommitOutcome
{
    /// <summary>Applied: every node now holds the transaction's writes at the record's position.</summary>
    Committed,

    /// <summary>An object it read changed before its record was ordered (another transaction committed first).</summary>
    Conflict,

    /// <summary>It writes an object another transaction has reserved (fairness): it waits its turn and runs again.</summary>
    Reserved,

    /// <summary>It stores a reference to an object that no longer exists.</summary>
    Dangling,

    /// <summary>It breaks a rule no retry can mend (an allocation outside its node's range).</summary>
    Invalid,
}

/// <summary>The decision about one commit record, with the reference that made it dangle.</summary>
internal readonly record struct CommitDecision(TxKey Tx, CommitOutcome Outcome, long Position, long Dangling = 0);

/// <summary>An effect a committed transaction declared, waiting for its node to perform it.</summary>
internal sealed record OutboxEntry(long Operation, int Node, string Device, byte[] Payload);

/// <summary>An object as the memory holds it: immutable; a write or a new link replaces it.</summary>
internal sealed record StoredObject(long Version, byte[] Data, long[] Refs, long LastLinked);

/// <summary>
/// The replicated state of the memory and the deterministic rules that change it: every node (and the pageserver)
/// applies the same records of the ordered log in the same order to its own instance, and so every instance decides every
/// commit alike and holds the same objects. Nothing here reads a clock or a random number; whatever the rules depend on
/// (objects, allocation high-water marks, reservations, the outbox, the record count that times reservations out) is in
/// the snapshot, so a node restored from a snapshot decides exactly as the nodes that applied the whole log.
/// Thread-safe: one lock; the apply loop writes, transactions and snapshot writers read.
/// </summary>
internal sealed partial class MemoryState
{
    /// <summary>Records a granted reservation may stay unused before it lapses (its node may have died).</summary>
    public const long ReservationLimit = 10_000;

    /// <summary>Device effects one transaction may declare (they are numbered inside its position).</summary>
    public const int MaxDeviceWrites = 1024;

    private const long Magic = 0x314D_4454_4853_4552; // "RESHTDM1", little-endian

    private readonly Lock _sync = new();
    private readonly Dictionary<long, StoredObject> _objects = [];
    private readonly Dictionary<int, long> _highWater = [];
    private readonly Dictionary<TxKey, Reservation> _reservations = [];
    private readonly Dictionary<long, List<Reservation>> _queues = [];
    private readonly SortedDictionary<long, OutboxEntry> _outbox = [];
    private long _nextOrdinal;
    private long _records;
    private long _position;
    private Dictionary<long, StoredObject?>? _preserved;
    private long _pinnedAt = -1;

    /// <summary>The position of the last record applied (0: none).</summary>
    public long Position
    {
        get
        {
            lock (_sync)
            {
                return _position;
            }
        }
    }

    /// <summary>Records applied since the memory began (deterministic: the same on every node at the same position).</summary>
    public long Records
    {
        get
        {
            lock (_sync)
            {
                return _records;
            }
        }
    }

    public int ObjectCount
    {
        get
        {
            lock (_sync)
            {
                return _objects.Count;
            }
        }
    }

    /// <summary>The anchor object behind a named root: a fixed negative id, derived from the name.</summary>
    public static long AnchorId(string root)
    {
        var hash = System.IO.Hashing.XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(root));
        return -(long)(hash >> 1) - 1;
    }

    /// <summary>The version of an object now: its last writer's position; 0 for an anchor never written; -1 when it does not exist.</summary>
    public long VersionOf(long id)
    {
        lock (_sync)
        {
            return VersionLocked(id);
        }
    }

    private long VersionLocked(long id) => _objects.TryGetValue(id, out var o) ? o.Version : id < 0 ? 0 : -1;

    /// <summary>An object and its version, or null (and version -1) when it does not exist.</summary>
    public (StoredObject? Object, long Version) Read(long id)
    {
        lock (_sync)
        {
            if (_objects.TryGetValue(id, out var o))
            {
                return (o, o.Version);
            }

            return (null, id < 0 ? 0 : -1);
        }
    }

    /// <summary>Whether every (id, version) pair still holds: a transaction's reads are still consistent.</summary>
    public bool StillValid(IEnumerable<KeyValuePair<long, long>> reads)
    {
        lock (_sync)
        {
            foreach (var (id, version) in reads)
            {
                if (VersionLocked(id) != version)
                {
                    return false;
                }
            }

            return true;
        }
    }

    public long HighWater(int node)
    {
        lock (_sync)
        {
            return _highWater.GetValueOrDefault(node, (long)node << 40);
        }
    }

    /// <summary>Whether the reservation of <paramref name="tx"/> is at the head of every queue it joined.</summary>
    public bool IsGranted(TxKey tx)
    {
        lock (_sync)
        {
            return _reservations.TryGetValue(tx, out var r) && r.GrantedAt >= 0;
        }
    }

    /// <summary>Whether the reservation of <paramref name="tx"/> covers object <paramref name="id"/>.</summary>
    public bool IsReservedBy(long id, TxKey tx)
    {
        lock (_sync)
        {
            return _reservations.TryGetValue(tx, out var r) && Array.BinarySearch(r.Ids, id) >= 0;
        }
    }

    /// <summary>The other transactions whose reservations head the queues of <paramref name="ids"/>.</summary>
    public HashSet<TxKey> Holders(IEnumerable<long> ids, TxKey tx)
    {
        lock (_sync)
        {
            return [.. ids.Select(id => _queues.TryGetValue(id, out var queue) ? queue[0].Tx : tx).Where(holder => holder != tx)];
        }
    }

    public bool HasReservation(TxKey tx)
    {
        lock (_sync)
        {
            return _reservations.ContainsKey(tx);
        }
    }

    /// <summary>The effects node <paramref name="node"/> still has to perform, in operation order.</summary>
    public IReadOnlyList<OutboxEntry> Outbox(int node)
    {
        lock (_sync)
        {
            return [.. _outbox.Values.Where(e => e.Node == node)];
        }
    }

    public int OutboxCount
    {
        get
        {
            lock (_sync)
            {
                return _outbox.Count;
            }
        }
    }

    /// <summary>
    /// Applies one record at <paramref name="position"/> (positions only grow). Returns the decision when it was a commit.
    /// A fallback record is not applied here: the node replaces the whole state (<see cref="ReplaceWith"/>).
    /// </summary>
    public CommitDecision? Apply(long position, MemoryRecord record)
    {
        lock (_sync)
        {
            if (position <= _position)
            {
                throw new InvalidOperationException($"record at {position} applied after {_position}: positions must grow");
            }

            _position = position;
            _records++;
            CommitDecision? decision = null;
            switch (record)
            {
                case CommitRecord commit:
                    decision = ApplyCommit(position, commit);
                    break;
                case ReserveRecord reserve:
                    Reserve(reserve);
                    break;
                case ReleaseRecord release:
                    Release(release.Tx);
                    break;
                case FreeRecord free:
                    ApplyFree(free);
                    break;
                case DoneRecord done:
                    foreach (var op in done.Operations)
                    {
                        if (_outbox.TryGetValue(op, out var entry) && entry.Node == done.Node)
                        {
                            _outbox.Remove(op);
                        }
                    }

                    break;
                case JoinRecord join:
                    ReleaseNode(join.Node);
                    break;
                case LeaveRecord leave:
                    ReleaseNode(leave.Node);
                    break;
            }

            ExpireReservations();
            return decision;
        }
    }

    private CommitDecision ApplyCommit(long position, CommitRecord commit)
    {
        var tx = commit.Tx;
        foreach (var (id, version) in commit.Reads)
        {
            if (VersionLocked(id) != version)
            {
                return new(tx, CommitOutcome.Conflict, position);
            }
        }

        if (commit.Devices.Count > MaxDeviceWrites)
        {
            return new(tx, CommitOutcome.Invalid, position);
        }

        var allocated = new HashSet<long>();
        var highWater = _highWater.GetValueOrDefault(tx.Node, (long)tx.Node << 40);
        foreach (var write in commit.Writes)
        {
            if (write.Allocated)
            {
                if (write.Id >> 40 != tx.Node || write.Id <= highWater || _objects.ContainsKey(write.Id) || !allocated.Add(write.Id))
                {
                    return new(tx, CommitOutcome.Invalid, position);
                }
            }
            else if (write.Id == 0 || VersionLocked(write.Id) < 0)
            {
                return new(tx, CommitOutcome.Conflict, position);
            }
        }

        foreach (var write in commit.Writes)
        {
            if (_queues.TryGetValue(write.Id, out var queue) && queue[0].Tx != tx)
            {
                return new(tx, CommitOutcome.Reserved, position);
            }

            foreach (var target in write.Refs)
            {
                if (target == 0)
                {
                    continue;
                }

                if (target < 0)
                {
                    return new(tx, CommitOutcome.Invalid, position);
                }

                if (!allocated.Contains(target) && !_objects.ContainsKey(target))
                {
                    return new(tx, CommitOutcome.Dangling, position, target);
                }
            }
        }

        foreach (var write in commit.Writes)
        {
            var linked = _objects.TryGetValue(write.Id, out var old) ? old.LastLinked : 0;
            Preserve(write.Id);
            _objects[write.Id] = new StoredObject(position, write.Data, write.Refs, linked);
            if (write.Allocated && write.Id > highWater)
            {
                highWater = write.Id;
            }
        }

        _highWater[tx.Node] = highWater;
        foreach (var write in commit.Writes)
        {
            foreach (var target in write.Refs)
            {
                if (target > 0 && _objects.TryGetValue(target, out var o) && o.LastLinked != position)
                {
                    Preserve(target);
                    _objects[target] = o with { LastLinked = position };
                }
            }
        }

        for (var i = 0; i < commit.Devices.Count; i++)
        {
            var op = (position << 10) | (long)i;
            _outbox[op] = new OutboxEntry(op, tx.Node, commit.Devices[i].Device, commit.Devices[i].Payload);
        }

        Release(tx);
        return new(tx, CommitOutcome.Committed, position);
    }

    private void ApplyFree(FreeRecord free)
    {
        foreach (var id in free.Ids)
        {
            // Freed only when nothing linked it, and nothing wrote it, since the snapshot that found it unreachable: a
            // reference stored after that snapshot makes it reachable again, so it stays.
            if (id > 0 && _objects.TryGetValue(id, out var o) && o.LastLinked <= free.AsOf && o.Version <= free.AsOf)
            {
                Preserve(id);
                _objects.Remove(id);
            }
        }
    }

    private void Reserve(ReserveRecord reserve)
    {
        if (_reservations.ContainsKey(reserve.Tx))
        {
            return;
        }

        var r = new Reservation(reserve.Tx, [.. reserve.Ids.Distinct().Order()], _nextOrdinal++);
        _reservations[r.Tx] = r;
        foreach (var id in r.Ids)
        {
            if (!_queues.TryGetValue(id, out var queue))
            {
                _queues[id] = queue = [];
            }

            queue.Add(r);
        }

        TryGrant(r);
    }

    private void Release(TxKey tx)
    {
        if (!_reservations.Remove(tx, out var r))
        {
            return;
        }

        var next = new List<Reservation>();
        foreach (var id in r.Ids)
        {
            var queue = _queues[id];
            queue.Remove(r);
            if (queue.Count == 0)
            {
                _queues.Remove(id);
            }
            else
            {
                next.Add(queue[0]);
            }
        }

        foreach (var candidate in next.Distinct().OrderBy(c => c.Ordinal))
        {
            TryGrant(candidate);
        }
    }

    private void TryGrant(Reservation r)
    {
        if (r.GrantedAt < 0 && r.Ids.All(id => _queues[id][0] == r))
        {
            r.GrantedAt = _records;
        }
    }

    private void ReleaseNode(int node)
    {
        foreach (var tx in _reservations.Keys.Where(t => t.Node == node).ToList())
        {
            Release(tx);
        }
    }

    private void ExpireReservations()
    {
        if (_reservations.Count == 0)
        {
            return;
        }

        var lapsed = _reservations.Values.Where(r => r.GrantedAt >= 0 && _records - r.GrantedAt > ReservationLimit).OrderBy(r => r.Ordinal).ToList();
        foreach (var r in lapsed)
        {
            Release(r.Tx);
        }
    }

    private void Preserve(long id)
    {
        if (_preserved is { } preserved && !preserved.ContainsKey(id))
        {
            preserved[id] = _objects.TryGetValue(id, out var o) ? o : null;
        }
    }

    internal sealed class Reservation(TxKey tx, long[] ids, long ordinal)
    {
        public TxKey Tx { get; } = tx;

        public long[] Ids { get; } = ids;

        public long Ordinal { get; } = ordinal;

        public long GrantedAt { get; set; } = -1;
    }
}
