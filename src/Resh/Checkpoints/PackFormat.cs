using System.Buffers.Binary;
using System.Numerics;

namespace Resh.Checkpoints;

/// <summary>Where a chunk's record sits in a pack, and how it is stored.</summary>
internal readonly record struct PackEntry(ChunkId Id, long Offset, int StoredLength, int RawLength, byte Flags)
{
    /// <summary>Bytes of the record in the pack: header and payload.</summary>
    public long RecordLength => PackFormat.RecordHeaderSize + StoredLength;

    public bool IsCompressed => Flags != 0;
}

/// <summary>
/// Byte layout of pack files (little-endian throughout):
/// <code>
/// pack    := header record* footer
/// header  := "RESHPACK" u32 version(1) u32 reserved(0)                                  16 bytes
/// record  := u32 magic("RCR1") u8 flags u8[3] 0 u32 storedLength u32 rawLength
///            u8[32] chunkId u32 crc32c(previous 48 bytes)                               52 bytes
///            u8[storedLength] payload (flags 0: raw, 1: Brotli, 2: Zstandard)
/// footer  := entry* u32 count u32 crc32c(entries) "RESHPEND"
/// entry   := u8[32] chunkId u64 recordOffset u32 storedLength u32 rawLength u8 flags     49 bytes
/// </code>
/// The record header checksum protects the framing; the payload is checked by its SHA-256, which
/// is the chunk id. The footer duplicates the index entries of the pack, so a pack describes itself.
/// </summary>
internal static class PackFormat
{
    public const int Version = 1;
    public const int HeaderSize = 16;
    public const int RecordHeaderSize = 52;
    public const int EntrySize = 49;
    public const int TailSize = 16;
    public const byte FlagBrotli = 1;
    public const byte FlagZstd = 2;
    public const uint RecordMagic = 0x31524352; // "RCR1"

    public static ReadOnlySpan<byte> HeaderMagic => "RESHPACK"u8;

    public static ReadOnlySpan<byte> TailMagic => "RESHPEND"u8;

    public static void WriteHeader(Span<byte> destination)
    {
        HeaderMagic.CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], 0);
    }

    public static string? CheckHeader(ReadOnlySpan<byte> header)
    {
        if (header.Length < HeaderSize || !header[..8].SequenceEqual(HeaderMagic))
        {
            return "bad pack header magic";
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        return version == Version ? null : $"unsupported pack version {version}";
    }

    public static void WriteRecordHeader(Span<byte> destination, ChunkId id, int storedLength, int rawLength, byte flags)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, RecordMagic);
        destination[4] = flags;
        destination[5] = 0;
        destination[6] = 0;
        destination[7] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(destination[8..], storedLength);
        BinaryPrimitives.WriteInt32LittleEndian(destination[12..], rawLength);
        id.WriteTo(destination[16..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[48..], Crc32C(destination[..48]));
    }

    /// <summary>Parses a record header; returns an error text when it is damaged.</summary>
    public static string? ReadRecordHeader(ReadOnlySpan<byte> header, long offset, out PackEntry entry)
    {
        entry = default;
        if (header.Length < RecordHeaderSize)
        {
            return "record header truncated";
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != RecordMagic)
        {
            return "bad record magic";
        }

        if (BinaryPrimitives.ReadUInt32LittleEndian(header[48..]) != Crc32C(header[..48]))
        {
            return "record header checksum mismatch";
        }

        var stored = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        var raw = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        if (stored < 0 || raw < 0 || raw > StoreOptions.MaxChunkSizeLimit || stored > StoreOptions.MaxChunkSizeLimit + 1024)
        {
            return "record lengths out of range";
        }

        entry = new PackEntry(new ChunkId(header[16..48]), offset, stored, raw, header[4]);
        return null;
    }

    public static void WriteEntry(Span<byte> destination, in PackEntry entry)
    {
        entry.Id.WriteTo(destination);
        BinaryPrimitives.WriteInt64LittleEndian(destination[32..], entry.Offset);
        BinaryPrimitives.WriteInt32LittleEndian(destination[40..], entry.StoredLength);
        BinaryPrimitives.WriteInt32LittleEndian(destination[44..], entry.RawLength);
        destination[48] = entry.Flags;
    }

    public static PackEntry ReadEntry(ReadOnlySpan<byte> source) => new(
        new ChunkId(source),
        BinaryPrimitives.ReadInt64LittleEndian(source[32..]),
        BinaryPrimitives.ReadInt32LittleEndian(source[40..]),
        BinaryPrimitives.ReadInt32LittleEndian(source[44..]),
        source[48]);

    public static void WriteTail(Span<byte> destination, int count, uint entriesCrc)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, count);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], entriesCrc);
        TailMagic.CopyTo(destination[8..]);
    }

    /// <summary>Parses the footer of a whole pack image; returns an error text when it is damaged.</summary>
    public static string? ReadFooter(ReadOnlySpan<byte> pack, out List<PackEntry> entries, out long recordsEnd)
    {
        entries = [];
        recordsEnd = 0;
        if (pack.Length < HeaderSize + TailSize)
        {
            return "pack truncated (no footer)";
        }

        var tail = pack[^TailSize..];
        if (!tail[8..].SequenceEqual(TailMagic))
        {
            return "bad pack footer magic (pack incomplete or damaged)";
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(tail);
        var footerLength = (long)count * EntrySize;
        if (count < 0 || footerLength > pack.Length - HeaderSize - TailSize)
        {
            return "pack footer entry count out of range";
        }

        var entryBytes = pack.Slice(pack.Length - TailSize - (int)footerLength, (int)footerLength);
        if (Crc32C(entryBytes) != BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]))
        {
            return "pack footer checksum mismatch";
        }

        for (var i = 0; i < count; i++)
        {
            entries.Add(ReadEntry(entryBytes.Slice(i * EntrySize, EntrySize)));
        }

        recordsEnd = pack.Length - TailSize - footerLength;
        return null;
    }

    /// <summary>CRC-32C (Castagnoli), hardware-accelerated where the CPU has it.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = uint.MaxValue;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return ~crc;
    }
}
