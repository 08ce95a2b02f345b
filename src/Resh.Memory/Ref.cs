namespace Resh.Memory;

/// <summary>
/// A reference to an object of the shared memory. Programs get references only from the memory (an allocation, a root,
/// or the references stored in an object they read), never from a number: that is what lets the pageserver find garbage
/// from a snapshot, and what keeps a program from reaching an object nobody gave it.
/// </summary>
public readonly struct Ref : IEquatable<Ref>
{
    internal Ref(long id) => Id = id;

    /// <summary>The reference to nothing.</summary>
    public static Ref Null => default;

    internal long Id { get; }

    public bool IsNull => Id == 0;

    public bool Equals(Ref other) => Id == other.Id;

    public override bool Equals(object? obj) => obj is Ref other && Equals(other);

    public override int GetHashCode() => Id.GetHashCode();

    public override string ToString() => IsNull ? "ref:null" : $"ref:{(ulong)Id >> 40:x}.{Id & ((1L << 40) - 1):x}";

    public static bool operator ==(Ref left, Ref right) => left.Equals(right);

    public static bool operator !=(Ref left, Ref right) => !left.Equals(right);
}

/// <summary>What a transaction reads of an object: its bytes and its references, both immutable.</summary>
public sealed class MemoryObject
{
    internal MemoryObject(byte[] data, long[] refs)
    {
        RawData = data;
        RawRefs = refs;
    }

    internal byte[] RawData { get; }

    internal long[] RawRefs { get; }

    public ReadOnlyMemory<byte> Data => RawData;

    public int RefCount => RawRefs.Length;

    /// <summary>The i-th reference the object holds.</summary>
    public Ref GetRef(int index) => new(RawRefs[index]);

    public IEnumerable<Ref> Refs => RawRefs.Select(id => new Ref(id));
}

/// <summary>The object a reference names no longer exists (it was freed as garbage, or the reference is stale).</summary>
public sealed class ObjectFreedException(Ref reference)
    : InvalidOperationException($"{reference} names no object: it was freed as unreachable, or never committed")
{
    public Ref Reference { get; } = reference;
}

/// <summary>A transaction wrote a reference to an object that was freed before the write was ordered.</summary>
public sealed class DanglingReferenceException(Ref reference)
    : InvalidOperationException($"the transaction stored {reference}, which names an object freed before the transaction committed")
{
    public Ref Reference { get; } = reference;
}
