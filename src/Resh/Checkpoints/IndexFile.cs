using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Resh.Checkpoints;

/// <summary>
/// Byte layout of index files <c>index/ID.idx</c> (little-endian; ids of packs and index files are
/// 128-bit, written as 16 raw bytes):
/// <code>
/// index  := "RESHIDX1" u32 n superseded[n] u32 m pack[m] u8[32] sha256(all previous bytes)
/// pack   := u8[16] packId u64 size i64 createdUnixMs u32 k entry[k]      (entry as in the pack footer)
/// </code>
/// An index file that names others in <c>superseded</c> replaces them (compaction writes one
/// consolidated index that supersedes every index file it read): readers ignore superseded files.
/// </summary>
internal static class IndexFile
{
    private const int IdBytes = 16;

    public static ReadOnlySpan<byte> Magic => "RESHIDX1"u8;

    public static string NewId() => RandomNumberGenerator.GetHexString(IdBytes * 2, lowercase: true);

    public static bool IsId(string text) => text.Length == IdBytes * 2 && text.All(char.IsAsciiHexDigitLower);

    public static byte[] Encode(IReadOnlyCollection<PackInfo> packs, IReadOnlyCollection<string> superseded)
    {
        long length = Magic.Length + 4 + (superseded.Count * IdBytes) + 4 + 32;
        foreach (var p in packs)
        {
            length += IdBytes + 8 + 8 + 4 + ((long)p.Entries.Length * PackFormat.EntrySize);
        }

        var data = new byte[length];
        var span = data.AsSpan();
        Magic.CopyTo(span);
        var pos = Magic.Length;
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], superseded.Count);
        pos += 4;
        foreach (var s in superseded)
        {
            Convert.FromHexString(s, span.Slice(pos, IdBytes), out _, out _);
            pos += IdBytes;
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], packs.Count);
        pos += 4;
        foreach (var p in packs)
        {
            Convert.FromHexString(p.Id, span.Slice(pos, IdBytes), out _, out _);
            pos += IdBytes;
            BinaryPrimitives.WriteInt64LittleEndian(span[pos..], p.Size);
            BinaryPrimitives.WriteInt64LittleEndian(span[(pos + 8)..], p.Created.ToUnixTimeMilliseconds());
            BinaryPrimitives.WriteInt32LittleEndian(span[(pos + 16)..], p.Entries.Length);
            pos += 20;
            foreach (var e in p.Entries)
            {
                PackFormat.WriteEntry(span[pos..], e);
                pos += PackFormat.EntrySize;
            }
        }

        SHA256.HashData(span[..pos], span[pos..]);
        return data;
    }

    /// <summary>Parses an index file; returns an error text when it is damaged.</summary>
    public static string? Decode(ReadOnlySpan<byte> data, out List<PackInfo> packs, out List<string> superseded)
    {
        packs = [];
        superseded = [];
        if (data.Length < Magic.Length + 8 + 32 || !data[..Magic.Length].SequenceEqual(Magic))
        {
            return "bad index magic or truncated";
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(data[..^32], hash);
        if (!hash.SequenceEqual(data[^32..]))
        {
            return "index checksum mismatch";
        }

        var body = data[..^32];
        var pos = Magic.Length;
        if (!TryReadCount(body, ref pos, IdBytes, out var n))
        {
            return "superseded count out of range";
        }

        for (var i = 0; i < n; i++)
        {
            superseded.Add(Convert.ToHexStringLower(body.Slice(pos, IdBytes)));
            pos += IdBytes;
        }

        if (!TryReadCount(body, ref pos, IdBytes + 20, out var m))
        {
            return "pack count out of range";
        }

        for (var i = 0; i < m; i++)
        {
            if (body.Length - pos < IdBytes + 20)
            {
                return "index truncated";
            }

            var id = Convert.ToHexStringLower(body.Slice(pos, IdBytes));
            var size = BinaryPrimitives.ReadInt64LittleEndian(body[(pos + IdBytes)..]);
            var created = BinaryPrimitives.ReadInt64LittleEndian(body[(pos + IdBytes + 8)..]);
            pos += IdBytes + 16;
            if (!TryReadCount(body, ref pos, PackFormat.EntrySize, out var k))
            {
                return $"entry count of pack {id} out of range";
            }

            var entries = new PackEntry[k];
            for (var j = 0; j < k; j++)
            {
                entries[j] = PackFormat.ReadEntry(body.Slice(pos, PackFormat.EntrySize));
                pos += PackFormat.EntrySize;
            }

            packs.Add(new PackInfo(id, size, DateTimeOffset.FromUnixTimeMilliseconds(created), entries));
        }

        return pos == body.Length ? null : "trailing bytes in index";
    }

    private static bool TryReadCount(ReadOnlySpan<byte> body, ref int pos, int itemSize, out int count)
    {
        count = 0;
        if (body.Length - pos < 4)
        {
            return false;
        }

        count = BinaryPrimitives.ReadInt32LittleEndian(body[pos..]);
        pos += 4;
        return count >= 0 && (long)count * itemSize <= body.Length - pos;
    }
}
