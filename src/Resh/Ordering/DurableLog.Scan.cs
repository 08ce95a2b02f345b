using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Resh.Ordering;

/// <summary>What reading a segment back found after its valid prefix.</summary>
public enum SegmentDamage
{
    /// <summary>Every byte belongs to a valid record.</summary>
    None,

    /// <summary>
    /// An incomplete final record (fewer bytes than its header promises, or only zeros): a write a crash
    /// interrupted, never fsynced, so never acknowledged. Cut off automatically.
    /// </summary>
    TornTail,

    /// <summary>
    /// A record that is complete but fails its checksum, or valid records after a bad one: damage to
    /// written, possibly acknowledged entries. Never cut automatically.
    /// </summary>
    Damaged,
}

/// <summary>One segment as read back: its first sequence, the valid records, and what follows them.</summary>
public sealed record SegmentScan(string Path, long First, int Entries, long ValidLength, long Length, SegmentDamage Damage, int RecordsAfterDamage)
{
    /// <summary>Sequence of the first entry that could not be read (when damaged or torn).</summary>
    public long FirstUnreadable => First + Entries;

    /// <summary>
    /// Whether damage here loses nothing: a later segment starts at <paramref name="nextFirst"/> and a checkpoint
    /// covers everything before it. The last segment (no <paramref name="nextFirst"/>) is never covered: how many
    /// entries followed the damage cannot be known.
    /// </summary>
    public bool CoveredBy(long? nextFirst, long coveredThrough) => nextFirst is { } next && next - 1 <= coveredThrough;
}

/// <summary>A damaged durable log: names the file, the byte offset and the entries that cannot be read.</summary>
public sealed class LogDamagedException(string message) : IOException(message);

public sealed partial class DurableLog
{
    /// <summary>How far past a bad record a scan looks for the next valid one when its length field cannot be trusted.</summary>
    private const int ResyncWindow = 1 << 20;

    /// <summary>Reads every segment of the log in <paramref name="directory"/> and says what each holds; changes nothing.</summary>
    public static IReadOnlyList<SegmentScan> Inspect(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            return [];
        }

        return [.. FindSegments(directory).Select(s => ScanSegment(s.Path, s.First, keepEntries: null))];
    }

    /// <summary>
    /// The message for a damaged segment: the file, the offset, and the entries lost with it.
    /// <paramref name="nextFirst"/> is the first sequence of the following segment, or null for the last.
    /// </summary>
    public static string DamageMessage(string directory, SegmentScan scan, long? nextFirst)
    {
        var entries = nextFirst is { } next
            ? $"entries #{scan.FirstUnreadable}..#{next - 1} cannot be read, and the segments after it cannot be applied without them"
            : $"entries from #{scan.FirstUnreadable} on cannot be read ({scan.RecordsAfterDamage} intact records follow the damage, at positions that can no longer be known)";
        return $"ordered log {directory}: segment {System.IO.Path.GetFileName(scan.Path)} is damaged at byte {scan.ValidLength} of {scan.Length}; {entries}. "
            + "Nothing was changed. `resh log verify CONFIG` shows the log; `resh log repair CONFIG --yes` keeps what the newest checkpoint and the intact prefix cover and says what is lost";
    }

    /// <summary>
    /// Repairs a damaged log in <paramref name="directory"/> for a start from the checkpoint at
    /// <paramref name="coveredThrough"/> (-1: none): a damaged segment the checkpoint covers is deleted; the first
    /// one it does not cover is cut after its intact prefix and every later segment deleted (they cannot be applied
    /// after a gap). With <paramref name="apply"/> false nothing changes and the plan is returned.
    /// </summary>
    /// <exception cref="IOException">The log is open in a running resh (its last segment is locked).</exception>
    public static LogRepair Repair(string directory, long coveredThrough, bool apply)
    {
        var scans = Inspect(directory);
        var actions = new List<string>();
        var deletes = new List<string>();
        (string Path, long Length)? cut = null;
        string lost = "nothing";
        for (var i = 0; i < scans.Count; i++)
        {
            var scan = scans[i];
            long? nextFirst = i < scans.Count - 1 ? scans[i + 1].First : null;
            if (scan.Damage == SegmentDamage.None)
            {
                continue;
            }

            var name = System.IO.Path.GetFileName(scan.Path);
            if (scan.CoveredBy(nextFirst, coveredThrough))
            {
                deletes.Add(scan.Path);
                actions.Add($"delete {name}: damaged at byte {scan.ValidLength}, but the checkpoint (through #{coveredThrough}) covers all of it");
                continue;
            }

            cut = (scan.Path, scan.ValidLength);
            actions.Add($"cut {name} after byte {scan.ValidLength} (its intact entries end at #{scan.FirstUnreadable - 1})");
            foreach (var later in scans.Skip(i + 1))
            {
                deletes.Add(later.Path);
                actions.Add($"delete {System.IO.Path.GetFileName(later.Path)}: it follows the damage");
            }

            var from = Math.Max(scan.FirstUnreadable, coveredThrough + 1);
            lost = scans[^1] is var tail && tail.Damage == SegmentDamage.None && !ReferenceEquals(tail, scan)
                ? $"entries #{from}..#{tail.First + tail.Entries - 1}"
                : $"entries from #{from} on ({scan.RecordsAfterDamage} intact records followed the damage in {name})";
            if (scan.Damage == SegmentDamage.TornTail && nextFirst is null)
            {
                lost = "nothing acknowledged (a torn final record: a write a crash interrupted)";
            }

            break;
        }

        if (apply && actions.Count > 0)
        {
            // A running resh holds its last segment open for writing; refuse rather than cut under it.
            try
            {
                using (new FileStream(scans[^1].Path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                }
            }
            catch (IOException e) when (e is not FileNotFoundException)
            {
                throw new IOException($"ordered log {directory} is open in a running resh; stop it first ({e.Message})", e);
            }

            if (cut is { } c)
            {
                using var file = new FileStream(c.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                file.SetLength(c.Length);
                file.Flush(flushToDisk: true);
            }

            foreach (var path in deletes)
            {
                File.Delete(path);
            }

            Native.Libc.FsyncDirectory(directory);
        }

        return new LogRepair(actions, lost, apply && actions.Count > 0);
    }

    /// <summary>Reads a segment's valid prefix (adding its entries to <paramref name="keepEntries"/> when given) and classifies what follows.</summary>
    private static SegmentScan ScanSegment(string path, long first, List<LogEntry>? keepEntries)
    {
        var header = new byte[HeaderBytes];
        long valid = 0;
        long length;
        var entries = 0;
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1))
        using (var reader = new BufferedStream(file, 1 << 16))
        {
            length = file.Length;
            while (true)
            {
                if (reader.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
                {
                    break;
                }

                var bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(header);
                if (bodyLength < FixedBytes || bodyLength > int.MaxValue - HeaderBytes || valid + HeaderBytes + bodyLength > length)
                {
                    break;
                }

                var body = new byte[bodyLength];
                if (reader.ReadAtLeast(body, body.Length, throwOnEndOfStream: false) < body.Length
                    || (ulong)ReplyDigest.Compute(body) != BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(4))
                    || LogEntryCodec.TryDecode(body) is not { } entry)
                {
                    break;
                }

                keepEntries?.Add(entry);
                entries++;
                valid += HeaderBytes + bodyLength;
            }
        }

        if (valid == length)
        {
            return new SegmentScan(path, first, entries, valid, length, SegmentDamage.None, 0);
        }

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var after = CountRecordsAfter(handle, valid, length);
        var damage = after == 0 && IsIncompleteTail(handle, valid, length) ? SegmentDamage.TornTail : SegmentDamage.Damaged;
        return new SegmentScan(path, first, entries, valid, length, damage, after);
    }

    /// <summary>
    /// True when the bytes after <paramref name="valid"/> cannot be a complete record: shorter than a header,
    /// a header whose record runs past the end, or nothing but zeros (space the file system reserved for a
    /// write that never reached the disk).
    /// </summary>
    private static bool IsIncompleteTail(SafeFileHandle handle, long valid, long length)
    {
        var remaining = length - valid;
        if (remaining < HeaderBytes)
        {
            return true;
        }

        var header = new byte[HeaderBytes];
        RandomAccess.Read(handle, header, valid);
        var bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (bodyLength >= FixedBytes && valid + HeaderBytes + bodyLength > length)
        {
            return true;
        }

        var buffer = new byte[1 << 16];
        for (var offset = valid; offset < length;)
        {
            var n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset);
            if (n <= 0 || buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                return n <= 0;
            }

            offset += n;
        }

        return true;
    }

    /// <summary>
    /// Looks for intact records after a bad one at <paramref name="bad"/>: first where its own length says the
    /// next one starts (damage inside a payload), then byte by byte over a bounded window (a damaged length
    /// field). Returns how many records follow, one after another, from the first found; 0 when none is.
    /// </summary>
    private static int CountRecordsAfter(SafeFileHandle handle, long bad, long length)
    {
        var header = new byte[HeaderBytes];
        long start = -1;
        if (length - bad >= HeaderBytes)
        {
            RandomAccess.Read(handle, header, bad);
            var next = bad + HeaderBytes + BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (RecordAt(handle, next, length) > 0)
            {
                start = next;
            }
        }

        for (var p = bad + 1; start < 0 && p < Math.Min(length - HeaderBytes, bad + ResyncWindow); p++)
        {
            if (RecordAt(handle, p, length) > 0)
            {
                start = p;
            }
        }

        var count = 0;
        for (var p = start; p >= 0 && p < length;)
        {
            var size = RecordAt(handle, p, length);
            if (size <= 0)
            {
                break;
            }

            count++;
            p += size;
        }

        return count;
    }

    /// <summary>The size of an intact record at <paramref name="offset"/>, or 0 when there is none.</summary>
    private static long RecordAt(SafeFileHandle handle, long offset, long length)
    {
        if (offset < 0 || length - offset < HeaderBytes + FixedBytes)
        {
            return 0;
        }

        Span<byte> header = stackalloc byte[HeaderBytes];
        RandomAccess.Read(handle, header, offset);
        var bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (bodyLength < FixedBytes || offset + HeaderBytes + bodyLength > length || bodyLength > 64 << 20)
        {
            return 0;
        }

        var body = new byte[bodyLength];
        if (RandomAccess.Read(handle, body, offset + HeaderBytes) < body.Length
            || (ulong)ReplyDigest.Compute(body) != BinaryPrimitives.ReadUInt64LittleEndian(header[4..])
            || LogEntryCodec.TryDecode(body) is null)
        {
            return 0;
        }

        return HeaderBytes + bodyLength;
    }
}

/// <summary>What <see cref="DurableLog.Repair"/> does (or would do) to a damaged log, and what is lost by it.</summary>
public sealed record LogRepair(IReadOnlyList<string> Actions, string Lost, bool Changed);
