namespace Resh.Memory;

/// <summary>
/// One run of a transaction's body on the node's local copy of the memory. It records what it read (object and version)
/// and what it writes; nothing is visible to anyone else until the log orders its commit and every node applies it. Reads
/// are consistent: when the local copy moved on since the last read and something read before changed, the body is
/// stopped and run again, so it never works on a mix of old and new data.
/// </summary>
public sealed class Transaction
{
    private readonly MemoryNode _node;
    private readonly Dictionary<long, long> _reads = [];
    private readonly Dictionary<long, ObjectWrite> _writes = [];
    private readonly List<DeviceWrite> _devices = [];
    private long _seen;

    internal Transaction(MemoryNode node, TxKey key, int attempt)
    {
        _node = node;
        Key = key;
        Attempt = attempt;
        _seen = node.State.Position;
    }

    internal TxKey Key { get; }

    /// <summary>How many times the body ran before this run (0 on the first).</summary>
    public int Attempt { get; }

    internal IReadOnlyDictionary<long, long> Reads => _reads;

    internal IReadOnlyCollection<ObjectWrite> Writes => _writes.Values;

    internal IReadOnlyList<DeviceWrite> Devices => _devices;

    /// <summary>The object <paramref name="reference"/> names, as this transaction sees it.</summary>
    /// <exception cref="ObjectFreedException">It names no object.</exception>
    public MemoryObject Read(Ref reference)
    {
        if (reference.IsNull)
        {
            throw new ArgumentException("cannot read the null reference", nameof(reference));
        }

        return ReadId(reference.Id) ?? throw new ObjectFreedException(reference);
    }

    /// <summary>Replaces an object's bytes and references.</summary>
    /// <exception cref="ObjectFreedException">It names no object.</exception>
    public void Write(Ref reference, ReadOnlySpan<byte> data, params ReadOnlySpan<Ref> refs)
    {
        if (reference.IsNull)
        {
            throw new ArgumentException("cannot write the null reference", nameof(reference));
        }

        if (!_writes.TryGetValue(reference.Id, out var existing))
        {
            _ = ReadId(reference.Id) ?? throw new ObjectFreedException(reference);
        }

        _writes[reference.Id] = new ObjectWrite(reference.Id, existing?.Allocated ?? false, data.ToArray(), Ids(refs));
    }

    /// <summary>A new object, visible to others once the transaction commits (and reachable once a reachable object refers to it).</summary>
    public Ref Allocate(ReadOnlySpan<byte> data, params ReadOnlySpan<Ref> refs)
    {
        var id = _node.NextObjectId();
        _writes[id] = new ObjectWrite(id, true, data.ToArray(), Ids(refs));
        return new Ref(id);
    }

    /// <summary>The object a named root refers to, or <see cref="Ref.Null"/> when the root was never set.</summary>
    public Ref GetRoot(string name)
    {
        var anchor = ReadId(MemoryState.AnchorId(name));
        return anchor is { RawRefs.Length: > 0 } ? new Ref(anchor.RawRefs[0]) : Ref.Null;
    }

    /// <summary>Makes a named root refer to an object (roots are where reachability, and so garbage collection, starts).</summary>
    public void SetRoot(string name, Ref target)
    {
        var id = MemoryState.AnchorId(name);
        if (!_writes.ContainsKey(id))
        {
            _ = ReadId(id);
        }

        _writes[id] = new ObjectWrite(id, false, [], target.IsNull ? [] : [target.Id]);
    }

    /// <summary>
    /// Declares an effect on one of the node's devices. It happens only if the transaction commits, once, after the
    /// commit (and again after a crash only in a way the device's class makes harmless).
    /// </summary>
    public void Emit(string device, ReadOnlySpan<byte> payload)
    {
        if (!_node.HasDevice(device))
        {
            throw new ArgumentException($"this node has no device named '{device}'", nameof(device));
        }

        if (_devices.Count >= MemoryState.MaxDeviceWrites)
        {
            throw new InvalidOperationException($"a transaction may declare at most {MemoryState.MaxDeviceWrites} device effects");
        }

        _devices.Add(new DeviceWrite(device, payload.ToArray()));
    }

    /// <summary>
    /// Makes a transaction that read nothing read and write its node's own anchor, so that a copy of its commit record
    /// (appended again after a failure) conflicts with the first instead of committing twice.
    /// </summary>
    internal void Guard(long anchor)
    {
        if (_reads.Count == 0)
        {
            _ = ReadId(anchor);
            _writes[anchor] = new ObjectWrite(anchor, false, [], []);
        }
    }

    private MemoryObject? ReadId(long id)
    {
        if (_writes.TryGetValue(id, out var written))
        {
            return new MemoryObject(written.Data, written.Refs);
        }

        var state = _node.State;
        var (stored, version) = state.Read(id);
        if (_reads.TryGetValue(id, out var earlier) && earlier != version)
        {
            throw new RestartException();
        }

        _reads[id] = version;
        var now = state.Position;
        if (now != _seen)
        {
            // The local copy moved on: what was read before must still hold, or this run sees a mix and starts over.
            if (!state.StillValid(_reads))
            {
                throw new RestartException();
            }

            _seen = now;
        }

        return stored is null ? null : new MemoryObject(stored.Data, stored.Refs);
    }

    private static long[] Ids(ReadOnlySpan<Ref> refs)
    {
        var ids = new long[refs.Length];
        for (var i = 0; i < refs.Length; i++)
        {
            ids[i] = refs[i].Id;
        }

        return ids;
    }
}

/// <summary>Stops a transaction's body that saw inconsistent data; the node runs it again.</summary>
internal sealed class RestartException : Exception
{
    public RestartException()
        : base("the transaction read data that changed under it; it runs again")
    {
    }
}
