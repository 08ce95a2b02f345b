// Over 400 lines: one on-disk format with its group-commit writer and its recovery (truncated or damaged tails), which must agree byte for byte.
using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Native;

namespace Resh.Ordering;

/// <summary>When appended entries reach the disk.</summary>
public enum LogFsync
{
    /// <summary>A request's reply is released only after the request is written and fsynced (group commit).</summary>
    Always,

    /// <summary>Written at once, fsynced about once per second; replies are not held back.</summary>
    EverySecond,

    /// <summary>Written at once; the operating system decides when it reaches the disk.</summary>
    No,
}

public sealed class DurableLogOptions
{
    /// <summary>Directory of the log file.</summary>
    public string Directory { get; set; } = "";

    public LogFsync Fsync { get; set; } = LogFsync.Always;

    public IReadOnlyList<string> Validate() =>
        string.IsNullOrWhiteSpace(Directory) ? ["log: needs a state directory (state-dir)"] : [];
}

/// <summary>
/// The ordered log on disk: append-only segment files of records in sequence order, written by a background
/// flusher in batches (group commit). Each record is framed and checksummed; on open, the valid prefix is
/// read back and a torn tail (a crash in the middle of a write) is cut off. A segment is named after the
/// sequence number of its first record, so records carry no number of their own. When a checkpoint covers
/// a prefix of the log, <see cref="TruncateThrough"/> starts a new segment and deletes the covered ones.
/// Knows nothing of protocols.
/// </summary>
/// <remarks>
/// Segment: <c>ordered-FIRST.log</c> (FIRST in 20 digits; a plain <c>ordered.log</c> starts at 0).
/// Record: u32 length of what follows the checksum | u64 checksum | u8 kind | i64 session | i32 context |
/// i32 reply count | u8 flags (1 = last reply only) | i32 reply hint | payload. Little endian.
/// </remarks>
public sealed partial class DurableLog : ICommitGate, IAsyncDisposable
{
    private const int HeaderBytes = 4 + 8;
    private const int FixedBytes = LogEntryCodec.FixedBytes;
    private const string LegacyFileName = "ordered.log";
    private const string SegmentPrefix = "ordered-";
    private const string SegmentSuffix = ".log";

    private readonly DurableLogOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _work = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(long First, string Path)> _segments;
    private readonly Task _flusher;
    private FileStream _file;
    private MemoryStream _pending = new();
    private long _appended;
    private long _durable;
    private long _truncateThrough = -1;
    private string? _failure;

    private DurableLog(DurableLogOptions options, ILogger logger, FileStream file, List<(long First, string Path)> segments, long recoveredFrom, IReadOnlyList<LogEntry> recovered, long next)
    {
        _options = options;
        _logger = logger;
        _file = file;
        _segments = segments;
        RecoveredFrom = recoveredFrom;
        Recovered = recovered;
        _appended = next;
        _durable = next;
        _flusher = Task.Run(FlushLoopAsync);
    }

    /// <summary>Entries found on disk when the log was opened, in order, starting at <see cref="RecoveredFrom"/>.</summary>
    public IReadOnlyList<LogEntry> Recovered { get; }

    /// <summary>The sequence number of <see cref="Recovered"/>[0].</summary>
    public long RecoveredFrom { get; }

    /// <summary>The sequence number the next appended entry must carry.</summary>
    public long Next
    {
        get
        {
            lock (_lock)
            {
                return _appended;
            }
        }
    }

    /// <summary>How many entries are on disk as the fsync mode promises (fsynced for Always), as a sequence count.</summary>
    public long DurableCount => Volatile.Read(ref _durable);

    public LogFsync Fsync => _options.Fsync;

    /// <summary>Segment files on disk now.</summary>
    public int SegmentCount
    {
        get
        {
            lock (_segments)
            {
                return _segments.Count;
            }
        }
    }

    /// <summary>Test hook: awaited before each batch is written (lets a test hold the disk back).</summary>
    internal Func<Task>? BeforeFlush { get; set; }

    /// <summary>Called (on the flusher's thread) after entries up to a count became durable.</summary>
    public event Action<long>? Durable;

    /// <summary>With fsync always, a reply waits until its request is on disk; the other modes hold nothing back.</summary>
    long ICommitGate.CommittedCount => Fsync == LogFsync.Always ? DurableCount : long.MaxValue;

    event Action<long>? ICommitGate.Committed
    {
        add => Durable += value;
        remove => Durable -= value;
    }

    /// <summary>
    /// Opens or creates the log in <see cref="DurableLogOptions.Directory"/> and reads back what it holds after
    /// <paramref name="coveredThrough"/> (the position of the checkpoint the replicas will start from; -1 for none).
    /// </summary>
    /// <exception cref="InvalidDataException">The segments leave a gap after the checkpoint.</exception>
    /// <exception cref="LogDamagedException">A segment is damaged where the checkpoint does not cover it (anything but a torn final record).</exception>
    public static DurableLog Open(DurableLogOptions options, ILogger? logger = null, long coveredThrough = -1)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        logger ??= NullLogger.Instance;
        System.IO.Directory.CreateDirectory(options.Directory);
        var segments = FindSegments(options.Directory);
        var recovered = new List<LogEntry>();
        var recoveredFrom = coveredThrough + 1;
        var next = 0L;
        SegmentScan? last = null;
        for (var i = 0; i < segments.Count; i++)
        {
            var (first, path) = segments[i];
            if (first != next && i > 0)
            {
                throw new InvalidDataException($"ordered log {options.Directory}: segment {Path.GetFileName(path)} starts at #{first}, but the one before ends at #{next - 1}; a segment is missing");
            }

            var entries = new List<LogEntry>();
            var scan = ScanSegment(path, first, entries);
            long? nextFirst = i < segments.Count - 1 ? segments[i + 1].First : null;
            if (scan.Damage == SegmentDamage.Damaged || (scan.Damage == SegmentDamage.TornTail && nextFirst is not null))
            {
                // Damage the newest checkpoint covers loses nothing: the segment is deleted once the log is open.
                if (scan.CoveredBy(nextFirst, coveredThrough))
                {
                    CoveredDamage(logger, scan.Path, scan.ValidLength, scan.FirstUnreadable, nextFirst!.Value - 1, coveredThrough);
                }
                else
                {
                    throw new LogDamagedException(DamageMessage(options.Directory, scan, nextFirst));
                }
            }

            for (var j = 0; j < entries.Count; j++)
            {
                if (first + j > coveredThrough)
                {
                    if (recovered.Count == 0 && first + j != recoveredFrom)
                    {
                        throw new InvalidDataException($"ordered log {options.Directory}: starts at #{first + j}, but the newest checkpoint covers only up to #{coveredThrough}; entries #{recoveredFrom}..#{first + j - 1} are missing (was a checkpoint store removed?)");
                    }

                    recovered.Add(entries[j]);
                }
            }

            // A damaged segment's count is unknown: only one the checkpoint covers gets here, and the next one follows it.
            next = scan.Damage != SegmentDamage.None && nextFirst is { } followingFirst ? followingFirst : first + entries.Count;
            last = scan;
        }

        if (recovered.Count == 0 && next > recoveredFrom)
        {
            throw new InvalidDataException($"ordered log {options.Directory}: continues at #{next}, but the newest checkpoint covers only up to #{coveredThrough}; entries #{recoveredFrom}..#{next - 1} are missing (was a checkpoint store removed?)");
        }

        FileStream file;
        if (last is { } tail && next > coveredThrough)
        {
            // Appending continues the last segment, after its valid prefix (only a torn tail gets here).
            file = new FileStream(tail.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.None);
            if (tail.ValidLength < tail.Length)
            {
                TornTail(logger, tail.Path, tail.Length - tail.ValidLength, tail.ValidLength);
                file.SetLength(tail.ValidLength);
                file.Flush(flushToDisk: true);
            }

            file.Seek(tail.ValidLength, SeekOrigin.Begin);
        }
        else
        {
            // Nothing on disk, or the checkpoint is newer than the whole log: a new segment right after it.
            next = coveredThrough + 1;
            var path = SegmentPath(options.Directory, next);
            file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.None);
            Libc.FsyncDirectory(options.Directory);
            segments.Add((next, path));
        }

        var log = new DurableLog(options, logger, file, segments, recoveredFrom, recovered, next);
        log.DeleteCovered(coveredThrough);
        return log;
    }

    /// <summary>
    /// Queues one entry. Must be called in sequence order (the ordered log calls it under its append lock);
    /// the entry's sequence must be the next one.
    /// </summary>
    public void Append(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            if (_failure is not null)
            {
                throw new IOException($"the ordered log cannot be written: {_failure}");
            }

            if (entry.Sequence != _appended)
            {
                throw new InvalidOperationException($"durable log expects #{_appended}, got #{entry.Sequence}");
            }

            Write(_pending, entry);
            _appended++;
        }

        _work.Release();
    }

    /// <summary>
    /// Entries up to <paramref name="sequence"/> are covered by a durable checkpoint: the flusher starts a new
    /// segment at its next write and deletes every segment that holds only covered entries.
    /// </summary>
    public void TruncateThrough(long sequence)
    {
        lock (_lock)
        {
            _truncateThrough = Math.Max(_truncateThrough, sequence);
        }

        _work.Release();
    }

    public async ValueTask DisposeAsync()
    {
        _work.Release();
        _stop.Cancel();
        try
        {
            await _flusher.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }

        await _file.DisposeAsync();
        _stop.Dispose();
        _work.Dispose();
    }

    private async Task FlushLoopAsync()
    {
        var lastSync = Environment.TickCount64;
        var unsynced = false;
        while (true)
        {
            var stopping = _stop.IsCancellationRequested;
            if (!stopping)
            {
                try
                {
                    var timeout = _options.Fsync == LogFsync.EverySecond && unsynced ? TimeSpan.FromSeconds(1) : Timeout.InfiniteTimeSpan;
                    await _work.WaitAsync(timeout, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    stopping = true;
                }
            }

            MemoryStream batch;
            long count;
            long truncate;
            lock (_lock)
            {
                batch = _pending;
                count = _appended;
                truncate = _truncateThrough;
                _truncateThrough = -1;
                _pending = new MemoryStream();
            }

            try
            {
                if (BeforeFlush is { } gate && batch.Length > 0)
                {
                    await gate();
                }

                if (batch.Length > 0)
                {
                    await _file.WriteAsync(batch.GetBuffer().AsMemory(0, (int)batch.Length));
                    await _file.FlushAsync();
                    unsynced = true;
                }

                var now = Environment.TickCount64;
                if (unsynced && (_options.Fsync == LogFsync.Always || stopping || truncate >= 0 || (_options.Fsync == LogFsync.EverySecond && now - lastSync >= 1000)))
                {
                    _file.Flush(flushToDisk: true);
                    unsynced = false;
                    lastSync = now;
                }

                if (truncate >= 0 && !stopping)
                {
                    Roll(count);
                    DeleteCovered(truncate);
                }
            }
            catch (IOException e)
            {
                // A full or failing disk: stop acknowledging (Always holds replies back from here on).
                lock (_lock)
                {
                    _failure ??= e.Message;
                }

                WriteFailed(_logger, e);
                return;
            }

            if (count > Volatile.Read(ref _durable))
            {
                Volatile.Write(ref _durable, count);
                Durable?.Invoke(count);
            }

            if (stopping)
            {
                return;
            }
        }
    }

    /// <summary>Continues in a new segment starting at <paramref name="next"/> (the current one is fsynced).</summary>
    private void Roll(long next)
    {
        lock (_segments)
        {
            if (_segments[^1].First == next)
            {
                return;
            }
        }

        var path = SegmentPath(_options.Directory, next);
        var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.None);
        Libc.FsyncDirectory(_options.Directory);
        var old = _file;
        _file = file;
        old.Dispose();
        lock (_segments)
        {
            _segments.Add((next, path));
        }
    }

    /// <summary>Deletes the segments all of whose entries are at or before <paramref name="coveredThrough"/>; never the last.</summary>
    private void DeleteCovered(long coveredThrough)
    {
        var deleted = false;
        lock (_segments)
        {
            while (_segments.Count > 1 && _segments[1].First <= coveredThrough + 1)
            {
                File.Delete(_segments[0].Path);
                _segments.RemoveAt(0);
                deleted = true;
            }
        }

        if (deleted)
        {
            Libc.FsyncDirectory(_options.Directory);
        }
    }

    private static string SegmentPath(string directory, long first) =>
        Path.Combine(directory, $"{SegmentPrefix}{first.ToString("D20", System.Globalization.CultureInfo.InvariantCulture)}{SegmentSuffix}");

    private static List<(long First, string Path)> FindSegments(string directory)
    {
        var segments = new List<(long First, string Path)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory))
        {
            var name = Path.GetFileName(path);
            if (name == LegacyFileName)
            {
                segments.Add((0, path));
            }
            else if (name.StartsWith(SegmentPrefix, StringComparison.Ordinal) && name.EndsWith(SegmentSuffix, StringComparison.Ordinal)
                && long.TryParse(name.AsSpan(SegmentPrefix.Length, name.Length - SegmentPrefix.Length - SegmentSuffix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var first))
            {
                segments.Add((first, path));
            }
        }

        segments.Sort((a, b) => a.First.CompareTo(b.First));
        return segments;
    }

    private static void Write(MemoryStream output, LogEntry entry)
    {
        var bodyLength = LogEntryCodec.EncodedLength(entry);
        var record = new byte[HeaderBytes + bodyLength];
        var body = record.AsSpan(HeaderBytes);
        LogEntryCodec.Encode(entry, body);
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)bodyLength);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(4), (ulong)ReplyDigest.Compute(body));
        output.Write(record);
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Ordered log {Path}: cut off a torn tail of {Bytes} bytes after byte {Valid} (a write interrupted by a crash)")]
    private static partial void TornTail(ILogger logger, string path, long bytes, long valid);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Warning, Message = "Ordered log {Path}: damaged at byte {Offset}; entries #{From}..#{Through} are lost with it, but the newest checkpoint covers them (through #{Covered}), so nothing is missing")]
    private static partial void CoveredDamage(ILogger logger, string path, long offset, long from, long through, long covered);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Critical, Message = "The ordered log cannot be written; replies that need it are held back")]
    private static partial void WriteFailed(ILogger logger, Exception exception);
}
