using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Resh.Memory;

/// <summary>The kinds of records in the memory's ordered log. The numbers are the wire format: never reuse one.</summary>
internal enum RecordKind : byte
{
    Commit = 1,
    Reserve = 2,
    Release = 3,
    Free = 4,
    Done = 5,
    Join = 6,
    Leave = 7,
    Fallback = 8,
}

/// <summary>A transaction of a node, named across the cluster.</summary>
internal readonly record struct TxKey(int Node, long Tx)
{
    public override string ToString() => $"{Node}/{Tx}";
}

/// <summary>One object a transaction writes: its new bytes and references, and whether the transaction allocated it.</summary>
internal sealed record ObjectWrite(long Id, bool Allocated, byte[] Data, long[] Refs);

/// <summary>An effect on a device, declared inside a transaction; it happens once the transaction commits.</summary>
internal sealed record DeviceWrite(string Device, byte[] Payload);

/// <summary>
/// A record of the memory's ordered log. Every node applies the same records in the same order with the same
/// deterministic rules (<see cref="MemoryState"/>), so every node decides every commit alike without talking to the others.
/// The wire format is little-endian, length-prefixed, and starts with a version byte.
/// </summary>
internal abstract record MemoryRecord
{
    private const byte FormatVersion = 1;

    public abstract RecordKind Kind { get; }

    public byte[] Encode()
    {
        var w = new RecordWriter();
        w.Byte(FormatVersion);
        w.Byte((byte)Kind);
        Write(w);
        return w.ToArray();
    }

    protected abstract void Write(RecordWriter w);

    /// <exception cref="InvalidDataException">The bytes are not a record of this format.</exception>
    public static MemoryRecord Decode(ReadOnlySpan<byte> bytes)
    {
        var r = new RecordReader(bytes);
        if (r.Byte() != FormatVersion)
        {
            throw new InvalidDataException("a memory log record of an unknown format version");
        }

        MemoryRecord record = (RecordKind)r.Byte() switch
        {
            RecordKind.Commit => CommitRecord.Read(ref r),
            RecordKind.Reserve => new ReserveRecord(new TxKey(r.Int(), r.Long()), r.Longs()),
            RecordKind.Release => new ReleaseRecord(new TxKey(r.Int(), r.Long())),
            RecordKind.Free => new FreeRecord(r.Long(), r.Longs()),
            RecordKind.Done => new DoneRecord(r.Int(), r.Longs()),
            RecordKind.Join => new JoinRecord(r.Int()),
            RecordKind.Leave => new LeaveRecord(r.Int()),
            RecordKind.Fallback => new FallbackRecord(r.Long(), r.String()),
            var other => throw new InvalidDataException($"a memory log record of unknown kind {(byte)other}"),
        };
        if (!r.End)
        {
            throw new InvalidDataException($"{record.Kind} record: trailing bytes");
        }

        return record;
    }
}

/// <summary>A transaction asks to commit: the versions it read, what it writes, the device effects it declares.</summary>
internal sealed record CommitRecord(TxKey Tx, IReadOnlyList<(long Id, long Version)> Reads, IReadOnlyList<ObjectWrite> Writes, IReadOnlyList<DeviceWrite> Devices) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Commit;

    protected override void Write(RecordWriter w)
    {
        w.Int(Tx.Node);
        w.Long(Tx.Tx);
        w.Int(Reads.Count);
        foreach (var (id, version) in Reads)
        {
            w.Long(id);
            w.Long(version);
        }

        w.Int(Writes.Count);
        foreach (var write in Writes)
        {
            w.Long(write.Id);
            w.Byte(write.Allocated ? (byte)1 : (byte)0);
            w.Bytes(write.Data);
            w.Longs(write.Refs);
        }

        w.Int(Devices.Count);
        foreach (var device in Devices)
        {
            w.String(device.Device);
            w.Bytes(device.Payload);
        }
    }

    public static CommitRecord Read(ref RecordReader r)
    {
        var tx = new TxKey(r.Int(), r.Long());
        var reads = new (long, long)[r.Count(16)];
        for (var i = 0; i < reads.Length; i++)
        {
            reads[i] = (r.Long(), r.Long());
        }

        var writes = new ObjectWrite[r.Count(13)];
        for (var i = 0; i < writes.Length; i++)
        {
            writes[i] = new ObjectWrite(r.Long(), r.Byte() != 0, r.Bytes(), r.Longs());
        }

        var devices = new DeviceWrite[r.Count(8)];
        for (var i = 0; i < devices.Length; i++)
        {
            devices[i] = new DeviceWrite(r.String(), r.Bytes());
        }

        return new CommitRecord(tx, reads, writes, devices);
    }
}

/// <summary>A transaction that lost too often reserves the objects it uses; the others wait their turn (fairness).</summary>
internal sealed record ReserveRecord(TxKey Tx, long[] Ids) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Reserve;

    protected override void Write(RecordWriter w)
    {
        w.Int(Tx.Node);
        w.Long(Tx.Tx);
        w.Longs(Ids);
    }
}

/// <summary>A reservation is given up without a commit (the transaction failed for good).</summary>
internal sealed record ReleaseRecord(TxKey Tx) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Release;

    protected override void Write(RecordWriter w)
    {
        w.Int(Tx.Node);
        w.Long(Tx.Tx);
    }
}

/// <summary>The pageserver found these objects unreachable in its snapshot at <see cref="AsOf"/>.</summary>
internal sealed record FreeRecord(long AsOf, long[] Ids) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Free;

    protected override void Write(RecordWriter w)
    {
        w.Long(AsOf);
        w.Longs(Ids);
    }
}

/// <summary>A node performed these device effects (by operation id); they leave the outbox.</summary>
internal sealed record DoneRecord(int Node, long[] Operations) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Done;

    protected override void Write(RecordWriter w)
    {
        w.Int(Node);
        w.Longs(Operations);
    }
}

/// <summary>A node (re)starts: whatever its earlier run reserved is released.</summary>
internal sealed record JoinRecord(int Node) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Join;

    protected override void Write(RecordWriter w) => w.Int(Node);
}

/// <summary>A node shut down in order: its reservations are released.</summary>
internal sealed record LeaveRecord(int Node) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Leave;

    protected override void Write(RecordWriter w) => w.Int(Node);
}

/// <summary>The whole cluster falls back to the snapshot taken at <see cref="Position"/> (store id <see cref="Snapshot"/>).</summary>
internal sealed record FallbackRecord(long Position, string Snapshot) : MemoryRecord
{
    public override RecordKind Kind => RecordKind.Fallback;

    protected override void Write(RecordWriter w)
    {
        w.Long(Position);
        w.String(Snapshot);
    }
}

internal sealed class RecordWriter
{
    private readonly ArrayBufferWriter<byte> _buffer = new(256);

    public void Byte(byte value) => _buffer.Write([value]);

    public void Int(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public void Long(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    public void Bytes(ReadOnlySpan<byte> value)
    {
        Int(value.Length);
        _buffer.Write(value);
    }

    public void Longs(long[] values)
    {
        Int(values.Length);
        foreach (var v in values)
        {
            Long(v);
        }
    }

    public void String(string value) => Bytes(Encoding.UTF8.GetBytes(value));

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();
}

internal ref struct RecordReader(ReadOnlySpan<byte> bytes)
{
    private ReadOnlySpan<byte> _rest = bytes;

    public readonly bool End => _rest.IsEmpty;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _rest.Length)
        {
            throw new InvalidDataException("a memory log record ends early");
        }

        var taken = _rest[..n];
        _rest = _rest[n..];
        return taken;
    }

    public byte Byte() => Take(1)[0];

    public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

    public long Long() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    /// <summary>A count of items each at least <paramref name="minSize"/> bytes: one the rest of the record cannot hold is damage.</summary>
    public int Count(int minSize)
    {
        var n = Int();
        if (n < 0 || (long)n * minSize > _rest.Length)
        {
            throw new InvalidDataException($"a memory log record claims {n} items it cannot hold");
        }

        return n;
    }

    public byte[] Bytes() => Take(Int()).ToArray();

    public long[] Longs()
    {
        var values = new long[Count(8)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Long();
        }

        return values;
    }

    public string String() => Encoding.UTF8.GetString(Take(Int()));
}
