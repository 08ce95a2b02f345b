using System.Buffers.Binary;
using System.Security.Cryptography;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantA;

/// <summary>
/// Variant A: per database, one hash table from key to value and a second one holding only the
/// deadlines of keys that have one (the layout Redis itself uses).
/// </summary>
internal sealed class HashKeyspace : IKeyspace
{
    private readonly Database[] _databases;

    public HashKeyspace(int databases)
    {
        _databases = new Database[databases];
        for (int i = 0; i < databases; i++)
        {
            _databases[i] = new Database();
        }
    }

    public bool TryGet(int db, byte[] key, long now, out byte[] value, out long deadline)
    {
        Database database = _databases[db];
        var k = new ByteKey(key);
        if (!database.Values.TryGetValue(k, out byte[]? found))
        {
            value = [];
            deadline = IKeyspace.NoDeadline;
            return false;
        }

        if (database.Deadlines.TryGetValue(k, out long when))
        {
            if (now > when)
            {
                database.Values.Remove(k);
                database.Deadlines.Remove(k);
                value = [];
                deadline = IKeyspace.NoDeadline;
                return false;
            }

            deadline = when;
        }
        else
        {
            deadline = IKeyspace.NoDeadline;
        }

        value = found;
        return true;
    }

    public void Set(int db, byte[] key, byte[] value, long deadline)
    {
        Database database = _databases[db];
        var k = new ByteKey(key);
        database.Values[k] = value;
        if (deadline == IKeyspace.NoDeadline)
        {
            database.Deadlines.Remove(k);
        }
        else
        {
            database.Deadlines[k] = deadline;
        }
    }

    public bool Remove(int db, byte[] key, long now)
    {
        if (!TryGet(db, key, now, out _, out _))
        {
            return false;
        }

        Database database = _databases[db];
        var k = new ByteKey(key);
        database.Values.Remove(k);
        database.Deadlines.Remove(k);
        return true;
    }

    public bool SetDeadline(int db, byte[] key, long deadline, long now)
    {
        if (!TryGet(db, key, now, out _, out _))
        {
            return false;
        }

        Database database = _databases[db];
        var k = new ByteKey(key);
        if (deadline == IKeyspace.NoDeadline)
        {
            database.Deadlines.Remove(k);
        }
        else
        {
            database.Deadlines[k] = deadline;
        }

        return true;
    }

    public long Count(int db, long now)
    {
        Database database = _databases[db];
        RemoveExpired(database, now);
        return database.Values.Count;
    }

    public List<byte[]> SortedKeys(int db, long now)
    {
        Database database = _databases[db];
        RemoveExpired(database, now);
        var keys = new List<byte[]>(database.Values.Count);
        foreach (ByteKey key in database.Values.Keys)
        {
            keys.Add(key.Bytes);
        }

        keys.Sort(ByteKey.Compare);
        return keys;
    }

    public byte[]? SmallestKey(int db, long now)
    {
        Database database = _databases[db];
        RemoveExpired(database, now);
        byte[]? smallest = null;
        foreach (ByteKey key in database.Values.Keys)
        {
            if (smallest is null || ByteKey.Compare(key.Bytes, smallest) < 0)
            {
                smallest = key.Bytes;
            }
        }

        return smallest;
    }

    public void Clear(int db)
    {
        _databases[db].Values.Clear();
        _databases[db].Deadlines.Clear();
    }

    public void ClearAll()
    {
        for (int i = 0; i < _databases.Length; i++)
        {
            Clear(i);
        }
    }

    public string Digest(long now)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        Span<byte> header = stackalloc byte[5];
        Span<byte> number = stackalloc byte[8];
        for (int db = 0; db < _databases.Length; db++)
        {
            Database database = _databases[db];
            foreach (byte[] key in SortedKeys(db, now))
            {
                var k = new ByteKey(key);
                byte[] value = database.Values[k];
                long deadline = database.Deadlines.TryGetValue(k, out long when) ? when : IKeyspace.NoDeadline;

                header[0] = (byte)db;
                BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)key.Length);
                hash.AppendData(header);
                hash.AppendData(key);
                BinaryPrimitives.WriteUInt32BigEndian(number, (uint)value.Length);
                hash.AppendData(number[..4]);
                hash.AppendData(value);
                BinaryPrimitives.WriteInt64BigEndian(number, deadline);
                hash.AppendData(number);
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void RemoveExpired(Database database, long now)
    {
        if (database.Deadlines.Count == 0)
        {
            return;
        }

        List<ByteKey>? expired = null;
        foreach (KeyValuePair<ByteKey, long> pair in database.Deadlines)
        {
            if (now > pair.Value)
            {
                (expired ??= []).Add(pair.Key);
            }
        }

        if (expired is null)
        {
            return;
        }

        foreach (ByteKey key in expired)
        {
            database.Values.Remove(key);
            database.Deadlines.Remove(key);
        }
    }

    private sealed class Database
    {
        public Dictionary<ByteKey, byte[]> Values { get; } = [];

        public Dictionary<ByteKey, long> Deadlines { get; } = [];
    }
}
