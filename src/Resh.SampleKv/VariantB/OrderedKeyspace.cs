using System.Security.Cryptography;
using System.Text;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.VariantB;

/// <summary>
/// Variant B: per database, one ordered tree from key to a cell holding value and optional deadline.
/// Keys are Latin-1 strings (one char per byte), whose ordinal order is exactly the byte-wise order.
/// </summary>
internal sealed class OrderedKeyspace : IKeyspace
{
    private readonly SortedDictionary<string, Cell>[] _tables;
    private readonly int[] _withDeadline;

    public OrderedKeyspace(int databases)
    {
        _tables = new SortedDictionary<string, Cell>[databases];
        _withDeadline = new int[databases];
        for (int i = 0; i < databases; i++)
        {
            _tables[i] = new SortedDictionary<string, Cell>(StringComparer.Ordinal);
        }
    }

    public bool TryGet(int db, byte[] key, long now, out byte[] value, out long deadline)
    {
        Cell? cell = Live(db, ToName(key), now);
        value = cell?.Data ?? [];
        deadline = cell?.Deadline ?? IKeyspace.NoDeadline;
        return cell is not null;
    }

    public void Set(int db, byte[] key, byte[] value, long deadline)
    {
        string name = ToName(key);
        SortedDictionary<string, Cell> table = _tables[db];
        if (table.TryGetValue(name, out Cell? cell))
        {
            if (cell.Deadline is not null)
            {
                _withDeadline[db]--;
            }
        }
        else
        {
            cell = new Cell();
            table.Add(name, cell);
        }

        cell.Data = value;
        cell.Deadline = deadline == IKeyspace.NoDeadline ? null : deadline;
        if (cell.Deadline is not null)
        {
            _withDeadline[db]++;
        }
    }

    public bool Remove(int db, byte[] key, long now)
    {
        string name = ToName(key);
        if (Live(db, name, now) is null)
        {
            return false;
        }

        Drop(db, name);
        return true;
    }

    public bool SetDeadline(int db, byte[] key, long deadline, long now)
    {
        Cell? cell = Live(db, ToName(key), now);
        if (cell is null)
        {
            return false;
        }

        _withDeadline[db] += (deadline == IKeyspace.NoDeadline ? 0 : 1) - (cell.Deadline is null ? 0 : 1);
        cell.Deadline = deadline == IKeyspace.NoDeadline ? null : deadline;
        return true;
    }

    public long Count(int db, long now)
    {
        Sweep(db, now);
        return _tables[db].Count;
    }

    public List<byte[]> SortedKeys(int db, long now)
    {
        Sweep(db, now);
        var keys = new List<byte[]>(_tables[db].Count);
        foreach (string name in _tables[db].Keys)
        {
            keys.Add(Encoding.Latin1.GetBytes(name));
        }

        return keys;
    }

    public byte[]? SmallestKey(int db, long now)
    {
        List<string>? expired = null;
        string? smallest = null;
        foreach (KeyValuePair<string, Cell> pair in _tables[db])
        {
            if (IsExpired(pair.Value, now))
            {
                (expired ??= []).Add(pair.Key);
                continue;
            }

            smallest = pair.Key;
            break;
        }

        if (expired is not null)
        {
            foreach (string name in expired)
            {
                Drop(db, name);
            }
        }

        return smallest is null ? null : Encoding.Latin1.GetBytes(smallest);
    }

    public void Clear(int db)
    {
        _tables[db].Clear();
        _withDeadline[db] = 0;
    }

    public void ClearAll()
    {
        for (int db = 0; db < _tables.Length; db++)
        {
            Clear(db);
        }
    }

    public string Digest(long now)
    {
        using var canonical = new MemoryStream();
        for (int db = 0; db < _tables.Length; db++)
        {
            Sweep(db, now);
            foreach (KeyValuePair<string, Cell> pair in _tables[db])
            {
                byte[] key = Encoding.Latin1.GetBytes(pair.Key);
                canonical.WriteByte((byte)db);
                WriteBigEndian(canonical, (ulong)key.Length, 4);
                canonical.Write(key);
                WriteBigEndian(canonical, (ulong)pair.Value.Data.Length, 4);
                canonical.Write(pair.Value.Data);
                WriteBigEndian(canonical, unchecked((ulong)(pair.Value.Deadline ?? IKeyspace.NoDeadline)), 8);
            }
        }

        canonical.Position = 0;
        byte[] sha = SHA1.HashData(canonical);
        var hex = new StringBuilder(sha.Length * 2);
        foreach (byte b in sha)
        {
            hex.Append("0123456789abcdef"[b >> 4]).Append("0123456789abcdef"[b & 0xF]);
        }

        return hex.ToString();
    }

    private static string ToName(byte[] key) => Encoding.Latin1.GetString(key);

    private static bool IsExpired(Cell cell, long now) => cell.Deadline is long deadline && now > deadline;

    private static void WriteBigEndian(Stream stream, ulong value, int bytes)
    {
        for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
        {
            stream.WriteByte((byte)(value >> shift));
        }
    }

    private Cell? Live(int db, string name, long now)
    {
        if (!_tables[db].TryGetValue(name, out Cell? cell))
        {
            return null;
        }

        if (IsExpired(cell, now))
        {
            Drop(db, name);
            return null;
        }

        return cell;
    }

    private void Drop(int db, string name)
    {
        if (_tables[db].Remove(name, out Cell? cell) && cell.Deadline is not null)
        {
            _withDeadline[db]--;
        }
    }

    private void Sweep(int db, long now)
    {
        if (_withDeadline[db] == 0)
        {
            return;
        }

        var expired = new List<string>();
        foreach (KeyValuePair<string, Cell> pair in _tables[db])
        {
            if (IsExpired(pair.Value, now))
            {
                expired.Add(pair.Key);
            }
        }

        foreach (string name in expired)
        {
            Drop(db, name);
        }
    }

    private sealed class Cell
    {
        public byte[] Data { get; set; } = [];

        public long? Deadline { get; set; }
    }
}
