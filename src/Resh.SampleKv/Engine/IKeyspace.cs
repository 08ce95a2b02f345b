namespace Resh.SampleKv.Engine;

/// <summary>
/// The sixteen databases of string keys, each key with an optional absolute deadline (Unix time in
/// milliseconds). Expiry is lazy: a key whose deadline is strictly before <c>now</c> is treated as absent
/// and removed when it is met. Keys and values are binary-safe; the arrays handed in are owned by the
/// keyspace afterwards and never mutated by anyone. Each variant has its own implementation.
/// </summary>
internal interface IKeyspace
{
    /// <summary>Marks "no deadline".</summary>
    const long NoDeadline = -1;

    /// <summary>Looks a live key up; <paramref name="deadline"/> is <see cref="NoDeadline"/> when it has none.</summary>
    bool TryGet(int db, byte[] key, long now, out byte[] value, out long deadline);

    /// <summary>Creates or replaces a key with the given deadline (or <see cref="NoDeadline"/>).</summary>
    void Set(int db, byte[] key, byte[] value, long deadline);

    /// <summary>Removes a live key; false when there was none.</summary>
    bool Remove(int db, byte[] key, long now);

    /// <summary>Replaces the deadline of a live key (<see cref="NoDeadline"/> removes it); false when there is no such key.</summary>
    bool SetDeadline(int db, byte[] key, long deadline, long now);

    /// <summary>The number of live keys.</summary>
    long Count(int db, long now);

    /// <summary>The live keys in byte-wise ascending order (unsigned bytes, a prefix before its extensions).</summary>
    List<byte[]> SortedKeys(int db, long now);

    /// <summary>The byte-wise smallest live key, or null when the database is empty.</summary>
    byte[]? SmallestKey(int db, long now);

    /// <summary>Removes every key of one database.</summary>
    void Clear(int db);

    /// <summary>Removes every key of every database.</summary>
    void ClearAll();

    /// <summary>
    /// SHA-1 (40 lowercase hex digits) over the canonical serialization of all live keys: for each
    /// database in ascending order and each of its keys in byte-wise ascending order, the record
    /// <c>u8 db | u32be keyLength | key | u32be valueLength | value | i64be deadline (-1 = none)</c>.
    /// An empty keyspace hashes the empty string.
    /// </summary>
    string Digest(long now);
}
