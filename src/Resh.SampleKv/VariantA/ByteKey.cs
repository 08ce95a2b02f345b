namespace Resh.SampleKv.VariantA;

/// <summary>Variant A's key: the raw bytes plus their hash, computed once.</summary>
internal readonly struct ByteKey : IEquatable<ByteKey>
{
    private readonly int _hash;

    public ByteKey(byte[] bytes)
    {
        Bytes = bytes;
        var hash = new HashCode();
        hash.AddBytes(bytes);
        _hash = hash.ToHashCode();
    }

    public byte[] Bytes { get; }

    public bool Equals(ByteKey other) => _hash == other._hash && Bytes.AsSpan().SequenceEqual(other.Bytes);

    public override bool Equals(object? obj) => obj is ByteKey other && Equals(other);

    public override int GetHashCode() => _hash;

    /// <summary>Byte-wise order: unsigned bytes, a prefix before its extensions.</summary>
    public static int Compare(byte[] x, byte[] y) => x.AsSpan().SequenceCompareTo(y);
}
