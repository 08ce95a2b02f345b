namespace Resh.Ordering;

/// <summary>
/// The totally ordered sequence of events every replica applies, kept in memory.
/// One writer at a time appends (the sequencer); any number of readers follow it.
/// Readers never see a gap: entries are published in sequence order.
/// </summary>
/// <remarks>
/// Every entry is held twice while it is in flight: as its <see cref="LogEntry"/> object (which carries where its reply
/// goes) and as a <see cref="Record"/> in a chunk of structs. Once its owner says the entries below a position no longer
/// need their objects (<see cref="ReleaseObjectsBefore"/>: the group, once they are decided), only the record is kept,
/// and a reader of such an entry gets a new object made from it. A log holds up to a million entries between two
/// checkpoints: as objects, every collection traced them and copied each one twice on its way to the oldest generation
/// (the checkpoint stall of docs/benchmarks.md); as records in arrays of 4,096 on the large object heap, they are
/// neither copied nor traced one by one.
/// </remarks>
public sealed class OrderedLog
{
    private const int ChunkBits = 12;
    private const int ChunkSize = 1 << ChunkBits;

    private readonly Lock _appendLock = new();
    private readonly List<Chunk> _chunks = [];
    private long _objectsFrom;
    private LogSubscription[] _subscribers = [];
    private long _count;
    private long _first;
    private readonly TimeProvider _clock;
    private DurableLog? _durable;

    /// <param name="clock">Stamps each entry's append time; the replica group that follows the log must read the same clock. The system clock when null.</param>
    public OrderedLog(TimeProvider? clock = null) => _clock = clock ?? TimeProvider.System;

    /// <summary>Number of entries appended; the next sequence number.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>The last appended sequence number, -1 when empty.</summary>
    public long Head => Count - 1;

    /// <summary>The first entry still held; entries before it were truncated (covered by a checkpoint).</summary>
    public long First => Volatile.Read(ref _first);

    /// <summary>Entries held in memory.</summary>
    public long Retained => Count - First;

    /// <summary>
    /// About how many bytes the held entries take: their payloads and a record each (what a checkpoint frees when it
    /// truncates the log; the objects of entries still in flight and the runtime's own overhead come on top).
    /// </summary>
    public long RetainedBytes => Volatile.Read(ref _retainedBytes);

    /// <summary>The bytes of every entry appended so far, counted as <see cref="RetainedBytes"/> counts them (never lowered by a truncation).</summary>
    public long AppendedBytes => Volatile.Read(ref _appendedBytes);

    /// <summary>What one held entry costs beside its payload (its record in a chunk).</summary>
    internal static int RecordBytes => System.Runtime.CompilerServices.Unsafe.SizeOf<Record>();

    private long _retainedBytes;
    private long _appendedBytes;

    /// <summary>
    /// Makes an empty log continue at <paramref name="sequence"/>: the entries before it are covered by a
    /// checkpoint the replicas start from. Allowed again as long as nothing was appended (a newer checkpoint was found).
    /// </summary>
    public void StartAt(long sequence)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        lock (_appendLock)
        {
            if (_count != _first)
            {
                throw new InvalidOperationException($"the log already holds entries (#{_first}..#{_count - 1})");
            }

            _chunks.Clear();
            for (var i = 0; i < sequence >> ChunkBits; i++)
            {
                _chunks.Add(null!);
            }

            _first = sequence;
            _objectsFrom = sequence;
            _retainedBytes = 0;
            Volatile.Write(ref _count, sequence);
        }
    }

    /// <summary>
    /// Says that the entries before <paramref name="sequence"/> need their <see cref="LogEntry"/> objects no longer:
    /// nothing will deliver a reply through them again. The log then keeps their records only, and reading one makes a
    /// new object without an <see cref="LogEntry.Origin"/>. Checkpoint entries keep their objects (their owner tells
    /// them apart by identity). A log nobody calls this on keeps every object until it is truncated.
    /// </summary>
    public void ReleaseObjectsBefore(long sequence)
    {
        lock (_appendLock)
        {
            var end = Math.Min(sequence, _count);
            for (var seq = Math.Max(_objectsFrom, _first); seq < end;)
            {
                var chunk = _chunks[(int)(seq >> ChunkBits)];
                var chunkEnd = Math.Min(end, ((seq >> ChunkBits) + 1) << ChunkBits);
                chunk.ReleaseObjects((int)(seq & (ChunkSize - 1)), (int)(chunkEnd - seq));
                seq = chunkEnd;
            }

            _objectsFrom = Math.Max(_objectsFrom, end);
        }
    }

    /// <summary>How many entries still hold their objects (for tests and diagnostics).</summary>
    internal long ObjectsHeld
    {
        get
        {
            lock (_appendLock)
            {
                var held = 0L;
                foreach (var chunk in _chunks)
                {
                    held += chunk?.ObjectsHeld ?? 0;
                }

                return held;
            }
        }
    }

    /// <summary>
    /// Forgets the entries before <paramref name="sequence"/> (at most up to the head): whole chunks of 4096 entries
    /// are dropped, and in the chunk the new first entry falls in, the forgotten slots are cleared, so that a few large
    /// entries are not kept alive until their chunk fills. Reading a forgotten entry throws. Returns the new
    /// <see cref="First"/>.
    /// </summary>
    public long TruncateBefore(long sequence)
    {
        lock (_appendLock)
        {
            var first = Math.Clamp(sequence, _first, _count);
            var freed = 0L;
            for (var chunk = (int)(_first >> ChunkBits); chunk < (int)(first >> ChunkBits); chunk++)
            {
                freed += _chunks[chunk]?.Bytes ?? 0;
                _chunks[chunk] = null!;
            }

            if ((first & (ChunkSize - 1)) != 0 && (int)(first >> ChunkBits) < _chunks.Count && _chunks[(int)(first >> ChunkBits)] is { } partial)
            {
                var from = first >> ChunkBits == _first >> ChunkBits ? (int)(_first & (ChunkSize - 1)) : 0;
                freed += partial.Clear(from, (int)(first & (ChunkSize - 1)) - from);
            }

            Volatile.Write(ref _retainedBytes, _retainedBytes - freed);

            _objectsFrom = Math.Max(_objectsFrom, first);
            Volatile.Write(ref _first, first);
            return first;
        }
    }

    /// <summary>Every entry appended from now on is also queued to <paramref name="durable"/>, in order.</summary>
    public void AttachDurable(DurableLog durable)
    {
        lock (_appendLock)
        {
            if (_durable is not null)
            {
                throw new InvalidOperationException("a durable log is already attached");
            }

            _durable = durable;
        }
    }

    /// <summary>The durable log entries are written to, if any.</summary>
    public DurableLog? Durable => _durable;

    /// <summary>
    /// Sees every entry in log order as it is appended, before the durable log and any replica do, and may give it a
    /// new payload (a protocol's decision that depends on the order, e.g. an aborted optimistic transaction). Every
    /// gateway appends the same entries in the same order, so every gateway decides the same. Set before the first append.
    /// </summary>
    public IAppendObserver? Observer { get; set; }

    /// <summary>Appends an entry, assigning its sequence number, and wakes the readers.</summary>
    public long Append(LogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        LogSubscription[] toWake;
        long seq;
        lock (_appendLock)
        {
            seq = AppendUnderLock(entry);
            toWake = _subscribers;
        }

        Wake(toWake);
        return seq;
    }

    /// <summary>
    /// Appends the entry <paramref name="build"/> makes for the position it is given, called under the append lock: nothing
    /// is appended between what the builder read of the log (it may read entries before that position) and its entry.
    /// Returns the position, or -1 when the builder returned null and nothing was appended. Keep the builder short: every
    /// append waits for it.
    /// </summary>
    public long Append(Func<long, LogEntry?> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        LogSubscription[] toWake;
        long seq;
        lock (_appendLock)
        {
            if (build(_count) is not { } entry)
            {
                return -1;
            }

            seq = AppendUnderLock(entry);
            toWake = _subscribers;
        }

        Wake(toWake);
        return seq;
    }

    private long AppendUnderLock(LogEntry entry)
    {
        if (entry.Sequence >= 0)
        {
            throw new InvalidOperationException($"entry already appended at #{entry.Sequence}");
        }

        var seq = _count;
        var chunk = (int)(seq >> ChunkBits);
        if (chunk == _chunks.Count)
        {
            _chunks.Add(new Chunk());
        }

        entry.Sequence = seq;
        entry.AppendedTimestamp = _clock.GetTimestamp();
        try
        {
            if (Observer?.Appending(entry) is { } payload)
            {
                entry.Payload = payload;
            }

            _durable?.Append(entry);
        }
        catch
        {
            entry.Sequence = -1;
            throw;
        }

        var bytes = _chunks[chunk].Set((int)(seq & (ChunkSize - 1)), entry);
        Volatile.Write(ref _retainedBytes, _retainedBytes + bytes);
        Volatile.Write(ref _appendedBytes, _appendedBytes + bytes);
        Volatile.Write(ref _count, seq + 1);
        return seq;
    }

    private static void Wake(LogSubscription[] subscribers)
    {
        foreach (var subscriber in subscribers)
        {
            subscriber.Wake();
        }
    }

    /// <summary>Returns the entry at <paramref name="sequence"/>; it must be below <see cref="Count"/>.</summary>
    public LogEntry this[long sequence]
    {
        get
        {
            lock (_appendLock)
            {
                if (sequence < _first || sequence >= _count)
                {
                    throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"log holds #{_first}..#{_count - 1}");
                }

                return _chunks[(int)(sequence >> ChunkBits)].Get(sequence);
            }
        }
    }

    /// <summary>Copies entries from <paramref name="from"/> on into <paramref name="destination"/>; returns how many.</summary>
    public int Read(long from, Span<LogEntry> destination)
    {
        var count = Count;
        var n = (int)Math.Min(destination.Length, Math.Max(0, count - from));
        if (n <= 0)
        {
            return 0;
        }

        lock (_appendLock)
        {
            if (from < _first)
            {
                throw new ArgumentOutOfRangeException(nameof(from), from, $"entries before #{_first} were truncated (covered by a checkpoint)");
            }

            for (var i = 0; i < n; i++)
            {
                var seq = from + i;
                destination[i] = _chunks[(int)(seq >> ChunkBits)].Get(seq);
            }
        }

        return n;
    }

    /// <summary>A reader's wake-up: completes a wait whenever something was appended since the last wait.</summary>
    /// <param name="wakeInline">Asked at each append: whether the waiting reader goes on on the appending thread (see <see cref="LogSubscription"/>). Never when null.</param>
    public LogSubscription Subscribe(Func<bool>? wakeInline = null)
    {
        var subscription = new LogSubscription(this, wakeInline);
        lock (_appendLock)
        {
            _subscribers = [.. _subscribers, subscription];
        }

        return subscription;
    }

    internal void Unsubscribe(LogSubscription subscription)
    {
        lock (_appendLock)
        {
            _subscribers = [.. _subscribers.Where(c => c != subscription)];
        }
    }

    /// <summary>What the log keeps of an entry once its object is released: everything a replica or a reader needs.</summary>
    private struct Record
    {
        public ReadOnlyMemory<byte> Payload;
        public long SessionId;
        public long AppendedTimestamp;
        public int Context;
        public int ReplyCount;
        public int ReplyHint;
        public LogEventKind Kind;
        public bool ReadOnly;
        public bool ReplyLastOnly;
    }

    /// <summary>4,096 consecutive entries: their records, and the objects of those not released yet.</summary>
    private sealed class Chunk
    {
        private readonly Record[] _records = new Record[ChunkSize];
        private LogEntry?[]? _objects = new LogEntry?[ChunkSize];
        private int _released;

        public int ObjectsHeld
        {
            get
            {
                if (_objects is null)
                {
                    return 0;
                }

                var held = 0;
                foreach (var entry in _objects)
                {
                    held += entry is null ? 0 : 1;
                }

                return held;
            }
        }

        /// <summary>The bytes of the entries this chunk holds (see <see cref="RetainedBytes"/>).</summary>
        public long Bytes { get; private set; }

        /// <summary>Holds the entry at <paramref name="index"/>; returns the bytes it adds.</summary>
        public long Set(int index, LogEntry entry)
        {
            var bytes = (long)entry.Payload.Length + RecordBytes;
            Bytes += bytes;
            _records[index] = new Record
            {
                Payload = entry.Payload,
                SessionId = entry.SessionId,
                AppendedTimestamp = entry.AppendedTimestamp,
                Context = entry.Context,
                ReplyCount = entry.ReplyCount,
                ReplyHint = entry.ReplyHint,
                Kind = entry.Kind,
                ReadOnly = entry.ReadOnly,
                ReplyLastOnly = entry.ReplyLastOnly,
            };
            _objects![index] = entry;
            return bytes;
        }

        public LogEntry Get(long sequence)
        {
            var index = (int)(sequence & (ChunkSize - 1));
            if (_objects?[index] is { } entry)
            {
                return entry;
            }

            ref readonly var record = ref _records[index];
            return new LogEntry(record.Kind, record.SessionId, record.Context, record.Payload, record.ReplyCount, record.ReplyLastOnly, origin: null, record.ReplyHint)
            {
                ReadOnly = record.ReadOnly,
                Sequence = sequence,
                AppendedTimestamp = record.AppendedTimestamp,
            };
        }

        /// <summary>Lets the objects of <paramref name="count"/> entries from <paramref name="from"/> go (checkpoints excepted).</summary>
        public void ReleaseObjects(int from, int count)
        {
            if (_objects is not { } objects)
            {
                return;
            }

            for (var i = from; i < from + count; i++)
            {
                if (objects[i] is { Kind: not LogEventKind.Checkpoint })
                {
                    objects[i] = null;
                }
            }

            _released = Math.Max(_released, from + count);
            if (_released == ChunkSize && Array.TrueForAll(objects, e => e is null))
            {
                _objects = null;
            }
        }

        /// <summary>Forgets <paramref name="count"/> truncated entries from <paramref name="from"/>: their objects and their bytes. Returns the bytes freed.</summary>
        public long Clear(int from, int count)
        {
            var freed = 0L;
            for (var i = from; i < from + count; i++)
            {
                freed += _records[i].Payload.Length + RecordBytes;
            }

            Bytes -= freed;
            Array.Clear(_records, from, count);
            if (_objects is { } objects)
            {
                Array.Clear(objects, from, count);
            }

            return freed;
        }
    }
}

/// <summary>
/// Wakes one log reader when entries are appended. While the reader's own test says it is nearly idle, an append
/// wakes it on the appending thread (after the append lock is released): a replica's writer then sends a lone
/// request at once, with no hand-off to another thread. While it is busy, it is woken on the thread pool and takes
/// everything appended meanwhile in one batch.
/// </summary>
public sealed class LogSubscription : IDisposable, IDeferredWake
{
    private readonly OrderedLog _log;
    private readonly WakeSignal _signal = new();
    private readonly Func<bool>? _wakeInline;
    private int _deferred;

    internal LogSubscription(OrderedLog log, Func<bool>? wakeInline)
    {
        _log = log;
        _wakeInline = wakeInline;
    }

    /// <summary>Waits until the log holds an entry at <paramref name="sequence"/>.</summary>
    public async ValueTask WaitForAsync(long sequence, CancellationToken cancellationToken)
    {
        while (_log.Count <= sequence)
        {
            await _signal.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Waits for the next wake-up: an append, or a <see cref="Poke"/>, since the last wait.</summary>
    public ValueTask WaitForSignalAsync(CancellationToken cancellationToken) => _signal.WaitAsync(cancellationToken);

    /// <summary>Lets a waiter re-check its own conditions (e.g. after a state change); it goes on on the thread pool.</summary>
    public void Poke() => _signal.Set(inline: false);

    /// <summary>
    /// Wakes the subscriber after an append: at once, or, inside a wake batch (a client's reader appending the requests
    /// of one read), once at the batch's end, so the subscriber takes them all in one go.
    /// </summary>
    internal void Wake()
    {
        if (WakeBatch.IsOpen)
        {
            if (Interlocked.Exchange(ref _deferred, 1) == 0)
            {
                WakeBatch.Defer(this);
            }

            return;
        }

        _signal.Set(_wakeInline?.Invoke() == true);
    }

    void IDeferredWake.Wake()
    {
        Interlocked.Exchange(ref _deferred, 0);
        _signal.Set(WakeBatch.EndingInline || _wakeInline?.Invoke() == true);
    }

    public void Dispose() => _log.Unsubscribe(this);
}

/// <summary>Sees every log entry in order as it is appended (see <see cref="OrderedLog.Observer"/>).</summary>
public interface IAppendObserver
{
    /// <summary>
    /// Called under the log's append lock, in log order: keep it short. Returns a replacement payload (same number of
    /// replies), or null to keep the entry's own.
    /// </summary>
    ReadOnlyMemory<byte>? Appending(LogEntry entry);
}
