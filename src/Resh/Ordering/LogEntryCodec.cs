using System.Buffers.Binary;

namespace Resh.Ordering;

/// <summary>
/// The binary form of one log entry's content (not its position or decision), little-endian:
/// kind (1), session (8), context (4), reply count (4), last-only (1), reply hint (4), payload. Shared by the
/// ordered log on disk and the Remus backup link.
/// </summary>
public static class LogEntryCodec
{
    /// <summary>Bytes before the payload.</summary>
    public const int FixedBytes = 1 + 8 + 4 + 4 + 1 + 4;

    public static int EncodedLength(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return FixedBytes + entry.Payload.Length;
    }

    /// <summary>Writes <paramref name="entry"/> into the first <see cref="EncodedLength"/> bytes of <paramref name="destination"/>.</summary>
    public static void Encode(LogEntry entry, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(entry);
        destination[0] = (byte)entry.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(destination[1..], entry.SessionId);
        BinaryPrimitives.WriteInt32LittleEndian(destination[9..], entry.Context);
        BinaryPrimitives.WriteInt32LittleEndian(destination[13..], entry.ReplyCount);
        destination[17] = entry.ReplyLastOnly ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(destination[18..], entry.ReplyHint);
        entry.Payload.Span.CopyTo(destination[FixedBytes..]);
    }

    /// <summary>Bytes of a batch of entries: u32 count, then per entry u32 length + body.</summary>
    public static int BatchLength(IReadOnlyList<LogEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var length = 4;
        foreach (var e in entries)
        {
            length += 4 + EncodedLength(e);
        }

        return length;
    }

    /// <summary>Writes a batch (count, then each entry with its length) into the first <see cref="BatchLength"/> bytes.</summary>
    public static void EncodeBatch(IReadOnlyList<LogEntry> entries, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(entries);
        BinaryPrimitives.WriteInt32LittleEndian(destination, entries.Count);
        var at = 4;
        foreach (var e in entries)
        {
            var n = EncodedLength(e);
            BinaryPrimitives.WriteInt32LittleEndian(destination[at..], n);
            Encode(e, destination.Slice(at + 4, n));
            at += 4 + n;
        }
    }

    /// <summary>Reads a batch back (payloads are slices of <paramref name="batch"/>); throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static List<LogEntry> DecodeBatch(ReadOnlyMemory<byte> batch)
    {
        var s = batch.Span;
        if (s.Length < 4)
        {
            throw new InvalidDataException("batch too short");
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(s);
        var entries = new List<LogEntry>(Math.Clamp(count, 0, 65536));
        var at = 4;
        for (var i = 0; i < count; i++)
        {
            if (at + 4 > s.Length)
            {
                throw new InvalidDataException($"batch entry {i} is cut off");
            }

            var n = BinaryPrimitives.ReadInt32LittleEndian(s[at..]);
            if (n < 0 || at + 4 + n > s.Length)
            {
                throw new InvalidDataException($"batch entry {i} has a bad length {n}");
            }

            entries.Add(TryDecode(batch.Slice(at + 4, n)) ?? throw new InvalidDataException($"batch entry {i} is not a log entry"));
            at += 4 + n;
        }

        return entries;
    }

    /// <summary>Reads an entry back; its payload is a slice of <paramref name="body"/>. Null when the bytes are not an entry.</summary>
    public static LogEntry? TryDecode(ReadOnlyMemory<byte> body)
    {
        var span = body.Span;
        if (span.Length < FixedBytes || (LogEventKind)span[0] > LogEventKind.Checkpoint)
        {
            return null;
        }

        var kind = (LogEventKind)span[0];
        var replies = BinaryPrimitives.ReadInt32LittleEndian(span[13..]);
        if (kind is LogEventKind.Request or LogEventKind.Checkpoint && replies < 1)
        {
            return null;
        }

        return new LogEntry(
            kind,
            BinaryPrimitives.ReadInt64LittleEndian(span[1..]),
            BinaryPrimitives.ReadInt32LittleEndian(span[9..]),
            body[FixedBytes..],
            replies,
            replyLastOnly: span[17] == 1,
            replyHint: BinaryPrimitives.ReadInt32LittleEndian(span[18..]));
    }
}
