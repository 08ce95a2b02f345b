using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Voting;

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
/// The ordered log on disk: one append-only file of records in sequence order, written by a background
/// flusher in batches (group commit). Each record is framed and checksummed; on open, the valid prefix is
/// read back and a torn tail (a crash in the middle of a write) is cut off. Knows nothing of protocols.
/// </summary>
/// <remarks>
/// Record: u32 length of what follows the checksum | u64 checksum | u8 kind | i64 session | i32 context |
/// i32 reply count | u8 flags (1 = last reply only) | i32 reply hint | payload. Little endian.
/// </remarks>
public sealed partial class DurableLog : IAsyncDisposable
{
    private const int HeaderBytes = 4 + 8;
    private const int FixedBytes = 1 + 8 + 4 + 4 + 1 + 4;
    private const string FileName = "ordered.log";

    private readonly DurableLogOptions _options;
    private readonly ILogger _logger;
    private readonly FileStream _file;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _work = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _flusher;
    private MemoryStream _pending = new();
    private long _appended;
    private long _durable;
    private string? _failure;

    private DurableLog(DurableLogOptions options, ILogger logger, FileStream file, IReadOnlyList<LogEntry> recovered)
    {
        _options = options;
        _logger = logger;
        _file = file;
        Recovered = recovered;
        _appended = recovered.Count;
        _durable = recovered.Count;
        _flusher = Task.Run(FlushLoopAsync);
    }

    /// <summary>Entries found on disk when the log was opened, in order.</summary>
    public IReadOnlyList<LogEntry> Recovered { get; }

    /// <summary>How many entries are on disk as the fsync mode promises (fsynced for Always).</summary>
    public long DurableCount => Volatile.Read(ref _durable);

    public LogFsync Fsync => _options.Fsync;

    /// <summary>Test hook: awaited before each batch is written (lets a test hold the disk back).</summary>
    internal Func<Task>? BeforeFlush { get; set; }

    /// <summary>Called (on the flusher's thread) after entries up to a count became durable.</summary>
    public event Action<long>? Durable;

    /// <summary>Opens or creates the log in <see cref="DurableLogOptions.Directory"/> and reads back what it holds.</summary>
    public static DurableLog Open(DurableLogOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        logger ??= NullLogger.Instance;
        System.IO.Directory.CreateDirectory(options.Directory);
        var path = Path.Combine(options.Directory, FileName);
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16, FileOptions.None);
        try
        {
            var (entries, validLength) = ReadAll(path);
            if (validLength < file.Length)
            {
                TornTail(logger, path, file.Length - validLength, validLength);
                file.SetLength(validLength);
                file.Flush(flushToDisk: true);
            }

            file.Seek(validLength, SeekOrigin.Begin);
            return new DurableLog(options, logger, file, entries);
        }
        catch
        {
            file.Dispose();
            throw;
        }
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
            lock (_lock)
            {
                batch = _pending;
                count = _appended;
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
                if (unsynced && (_options.Fsync == LogFsync.Always || stopping || (_options.Fsync == LogFsync.EverySecond && now - lastSync >= 1000)))
                {
                    _file.Flush(flushToDisk: true);
                    unsynced = false;
                    lastSync = now;
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

    private static void Write(MemoryStream output, LogEntry entry)
    {
        var payload = entry.Payload.Span;
        var bodyLength = FixedBytes + payload.Length;
        var record = new byte[HeaderBytes + bodyLength];
        var body = record.AsSpan(HeaderBytes);
        body[0] = (byte)entry.Kind;
        BinaryPrimitives.WriteInt64LittleEndian(body[1..], entry.SessionId);
        BinaryPrimitives.WriteInt32LittleEndian(body[9..], entry.Context);
        BinaryPrimitives.WriteInt32LittleEndian(body[13..], entry.ReplyCount);
        body[17] = entry.ReplyLastOnly ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(body[18..], entry.ReplyHint);
        payload.CopyTo(body[FixedBytes..]);
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)bodyLength);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(4), (ulong)ReplyDigest.Compute(body));
        output.Write(record);
    }

    private static (List<LogEntry> Entries, long ValidLength) ReadAll(string path)
    {
        var entries = new List<LogEntry>();
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        using var reader = new BufferedStream(file, 1 << 16);
        var header = new byte[HeaderBytes];
        long valid = 0;
        while (true)
        {
            if (reader.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes)
            {
                break;
            }

            var bodyLength = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (bodyLength < FixedBytes || bodyLength > int.MaxValue - HeaderBytes || valid + HeaderBytes + bodyLength > file.Length)
            {
                break;
            }

            var body = new byte[bodyLength];
            if (reader.ReadAtLeast(body, body.Length, throwOnEndOfStream: false) < body.Length
                || (ulong)ReplyDigest.Compute(body) != BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(4)))
            {
                break;
            }

            var kind = (LogEventKind)body[0];
            if (kind > LogEventKind.Close)
            {
                break;
            }

            var entry = new LogEntry(
                kind,
                BinaryPrimitives.ReadInt64LittleEndian(body.AsSpan(1)),
                BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(9)),
                body.AsMemory(FixedBytes),
                BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(13)),
                replyLastOnly: body[17] == 1,
                replyHint: BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(18)));
            entries.Add(entry);
            valid += HeaderBytes + bodyLength;
        }

        return (entries, valid);
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Ordered log {Path}: cut off a torn tail of {Bytes} bytes after byte {Valid} (a write interrupted by a crash)")]
    private static partial void TornTail(ILogger logger, string path, long bytes, long valid);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Critical, Message = "The ordered log cannot be written; replies that need it are held back")]
    private static partial void WriteFailed(ILogger logger, Exception exception);
}
