// Over 400 lines: one replica connection: the write pump (batches, the checkpoint barrier, settled reads) and the read pump (framing, matching replies to entries) share the in-flight queue and one Break.
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Resh.Ordering;
using Resh.Protocols;

namespace Resh.Replicas;

/// <summary>Where an applier reports what its replica did.</summary>
public interface IApplierCallbacks
{
    /// <summary>
    /// The replica answered <paramref name="entry"/>. <paramref name="reply"/> holds all of the entry's
    /// replies; the last one starts at <paramref name="lastReplyOffset"/>. It points into the connection's
    /// buffer and is valid only during the call. Called in log order, from one thread at a time.
    /// </summary>
    void OnReply(ReplicaApplier applier, LogEntry entry, ReadOnlySequence<byte> reply, int lastReplyOffset);

    /// <summary>The applier broke (first cause only).</summary>
    void OnBroken(ReplicaApplier applier, string reason);

    /// <summary>Whether the entry at <paramref name="sequence"/> was decided or disagreed on. Called from the writer, without a lock.</summary>
    bool IsDecided(long sequence);

    /// <summary>
    /// Whether this replica leaves the checkpoint entry out: one whose outcome is known, one from the history the
    /// group started with, or one that other replicas flush while this one rests. A flush changes no state, and an old
    /// one run again could collide with a running one.
    /// </summary>
    bool SkipsCheckpoint(ReplicaApplier applier, LogEntry entry);
}

/// <summary>
/// Applies the ordered log to one replica over a single pipelined connection: every entry is written
/// in log order (with the protocol's context switch in front where the session context changes), and
/// replies are read back in the same order. A connection is processed strictly in order by the service,
/// so the replica can never reorder two events. Knows nothing of voting.
/// </summary>
public sealed class ReplicaApplier : IAsyncDisposable
{
    private const int FlushThresholdBytes = 256 * 1024;
    private const int ReadBatch = 512;

    private readonly IPEndPoint _endpoint;
    private readonly OrderedLog _log;
    private readonly IProtocol _protocol;
    private readonly IApplierCallbacks _callbacks;
    private readonly int _maxInFlight;
    private readonly Queue<InFlight> _inFlight = new();
    private readonly List<InFlight> _pendingEnqueue = new(ReadBatch);
    private readonly Lock _inFlightLock = new();
    private readonly SemaphoreSlim _space = new(0);
    private readonly CancellationTokenSource _cts = new();
    private readonly IReplyFramer _framer;
    private readonly long _startSequence;
    private Socket? _socket;
    private SocketReadLoop.Registration? _registration;
    private Task _writer = Task.CompletedTask;
    private Task _reader = Task.CompletedTask;
    private string? _breakReason;
    private long _applied;
    private bool _waitingForSpace;
    private TaskCompletionSource? _barrier;
    private long _checkpointWritten;
    private long _limit = long.MaxValue;
    private long _skipThrough = -1;
    private bool _skipSettledReads;
    /// <summary>
    /// Up to this many entries in flight, an append wakes the writer on the appending thread (a request is sent at
    /// once); beyond, on the thread pool (requests gather into one send). See docs/benchmarks.md, "The fast path".
    /// </summary>
    private const int InlineWakeMaxInFlight = 2;

    private LogSubscription? _subscription;
    private (long Sequence, TaskCompletionSource Done)? _appliedWaiter;

    public ReplicaApplier(string replicaId, int replicaIndex, IPEndPoint endpoint, OrderedLog log, IProtocol protocol, long startSequence, IApplierCallbacks callbacks, int maxInFlight = 65536)
    {
        ReplicaId = replicaId;
        ReplicaIndex = replicaIndex;
        _endpoint = endpoint;
        _log = log;
        _protocol = protocol;
        _callbacks = callbacks;
        _maxInFlight = maxInFlight;
        _framer = protocol.CreateReplyFramer();
        _applied = startSequence - 1;
        _startSequence = startSequence;
    }

    public string ReplicaId { get; }

    /// <summary>The replica's position in its group.</summary>
    public int ReplicaIndex { get; }

    /// <summary>The last log position this replica has fully applied (answered).</summary>
    public long Applied => Volatile.Read(ref _applied);

    /// <summary>Entries written and not answered yet.</summary>
    public int InFlightCount
    {
        get
        {
            lock (_inFlightLock)
            {
                return _inFlight.Count;
            }
        }
    }

    /// <summary>Fault drill "slow": every reply is held back this long before it is reported.</summary>
    public TimeSpan ReplyDelay { get; set; }

    /// <summary>Stopwatch timestamp at which the last checkpoint entry was sent to the replica.</summary>
    public long CheckpointWrittenTimestamp => Volatile.Read(ref _checkpointWritten);

    /// <summary>Held at a checkpoint: nothing after it is sent until its files are captured.</summary>
    public bool AtCheckpointBarrier => Volatile.Read(ref _barrier) is not null;

    /// <summary>
    /// The first log position this applier may not send (exclusive); <see cref="long.MaxValue"/> (the default)
    /// follows the log's head. A passive replica is fed the log up to a limit and then frozen. Entries already
    /// written stay written: lowering the limit only stops what has not been sent yet.
    /// </summary>
    public long Limit
    {
        get => Volatile.Read(ref _limit);
        set
        {
            Volatile.Write(ref _limit, value);
            Volatile.Read(ref _subscription)?.Poke();
        }
    }

    /// <summary>
    /// Leaves out every entry up to <paramref name="sequence"/>: they count as applied, in order, without being sent. For a
    /// replica given the state at that position by other means (a state transfer), while nothing after its applied
    /// position was sent to it; set it before raising <see cref="Limit"/>.
    /// </summary>
    public void SkipThrough(long sequence)
    {
        Volatile.Write(ref _skipThrough, sequence);
        Volatile.Read(ref _subscription)?.Poke();
    }

    /// <summary>
    /// While set, read-only requests that are already decided are not sent (they could not change the replica's
    /// state, and nobody waits for its vote on them): a replica that is only being brought up to date replays
    /// the writes. Must be off while the replica votes.
    /// </summary>
    public bool SkipSettledReads
    {
        get => Volatile.Read(ref _skipSettledReads);
        set => Volatile.Write(ref _skipSettledReads, value);
    }

    /// <summary>
    /// Completes when the replica has applied (answered) everything up to <paramref name="sequence"/>, or throws
    /// when the applier breaks first. One waiter at a time.
    /// </summary>
    public Task WaitAppliedAsync(long sequence, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_inFlightLock)
        {
            if (Volatile.Read(ref _breakReason) is { } reason)
            {
                return Task.FromException(new IOException($"the applier broke: {reason}"));
            }

            if (_applied >= sequence)
            {
                return Task.CompletedTask;
            }

            _appliedWaiter = (sequence, done);
        }

        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Completes the applied-position waiter once it is reached. Call under the in-flight lock.</summary>
    private void SignalApplied(long applied)
    {
        if (_appliedWaiter is { } waiter && applied >= waiter.Sequence)
        {
            _appliedWaiter = null;
            waiter.Done.TrySetResult();
        }
    }

    /// <summary>Why the applier broke, or null while it works.</summary>
    public string? BreakReason => Volatile.Read(ref _breakReason);

    /// <summary>Connects and starts the writer and reader loops.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var socket = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await SocketReadLoop.ConnectAsync(socket, _endpoint, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        var stream = new NetworkStream(socket, ownsSocket: false);
        var output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
        // Read by the process's epoll loop, on the same thread as the clients (docs/architecture.md, "Reading sockets").
        _registration = SocketReadLoop.TryRegisterPeer(socket);
        var input = _registration?.Reader ?? PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024));
        _writer = Task.Run(() => WriteLoopAsync(output, _cts.Token), CancellationToken.None);
        _reader = Task.Run(() => ReadLoopAsync(input, _cts.Token), CancellationToken.None);
    }

    /// <summary>Stops the applier; records only the first cause. Idempotent.</summary>
    public void Break(string reason)
    {
        if (Interlocked.CompareExchange(ref _breakReason, reason, null) is not null)
        {
            return;
        }

        _cts.Cancel();
        lock (_inFlightLock)
        {
            if (_appliedWaiter is { } waiter)
            {
                _appliedWaiter = null;
                waiter.Done.TrySetException(new IOException($"the applier broke: {reason}"));
            }
        }

        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }

        _callbacks.OnBroken(this, reason);
    }

    public async ValueTask DisposeAsync()
    {
        Break("stopped");
        try
        {
            await Task.WhenAll(_writer, _reader).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or IOException or System.Net.Sockets.SocketException or InvalidDataException)
        {
            // The loops end with the cancellation or the socket; their faults were reported through Break.
        }

        _registration?.Dispose();
        _socket?.Dispose();
        _cts.Dispose();
        _space.Dispose();
    }

    private async Task WriteLoopAsync(PipeWriter output, CancellationToken ct)
    {
        var batch = new LogEntry[ReadBatch];
        var context = 0;
        var next = _startSequence;
        // Nearly idle, the next append runs this loop on the appending thread, which sends it at once; busy, it runs
        // on the thread pool and sends what gathered meanwhile in one batch. (A read of the count without the lock is
        // enough for that choice.)
        using var subscription = _log.Subscribe(() => _inFlight.Count <= InlineWakeMaxInFlight);
        Volatile.Write(ref _subscription, subscription);
        try
        {
            while (!ct.IsCancellationRequested)
            {
                if (Volatile.Read(ref _skipThrough) is var skipThrough && next <= skipThrough)
                {
                    // The replica holds the state at that position already: the entries up to it are applied without being sent.
                    _pendingEnqueue.Add(new InFlight(_log[skipThrough], 0, Silent: true));
                    next = skipThrough + 1;
                    EnqueueAll();
                    continue;
                }

                await subscription.WaitForAsync(next, ct);
                var limit = Limit;
                if (next >= limit)
                {
                    // Held at the limit: an append or a new limit wakes the loop to look again.
                    await subscription.WaitForSignalAsync(ct);
                    continue;
                }

                var window = (int)Math.Min(batch.Length, limit - next);
                var n = Math.Min(_log.Read(next, batch.AsSpan(0, window)), await WaitForSpaceAsync(ct));
                var unflushed = 0;
                for (var i = 0; i < n; i++)
                {
                    var entry = batch[i];
                    var skip = 0;
                    if (entry.Kind == LogEventKind.Checkpoint && _callbacks.SkipsCheckpoint(this, entry))
                    {
                        _pendingEnqueue.Add(new InFlight(entry, 0, Silent: true));
                        next = entry.Sequence + 1;
                        continue;
                    }

                    if (entry.Kind == LogEventKind.Checkpoint)
                    {
                        // A barrier: nothing after the checkpoint is sent until the replica answered it and the
                        // callback captured its files, so what is captured is exactly the state at this position.
                        var barrier = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        Volatile.Write(ref _barrier, barrier);
                        output.Write(entry.Payload.Span);
                        _pendingEnqueue.Add(new InFlight(entry, 0, Silent: false));
                        next = entry.Sequence + 1;
                        EnqueueAll();
                        Volatile.Write(ref _checkpointWritten, System.Diagnostics.Stopwatch.GetTimestamp());
                        await FlushAsync(output, ct);
                        await barrier.Task.WaitAsync(ct);
                        unflushed = 0;
                        break;
                    }

                    if (entry.Kind == LogEventKind.Request && entry.ReadOnly && Settled(entry))
                    {
                        _pendingEnqueue.Add(new InFlight(entry, 0, Silent: true));
                        next = entry.Sequence + 1;
                        continue;
                    }

                    if (entry.Kind == LogEventKind.Request)
                    {
                        if (entry.Context != context)
                        {
                            skip = _protocol.WriteContextSwitch(context, entry.Context, output);
                            context = entry.Context;
                        }

                        output.Write(entry.Payload.Span);
                        unflushed += entry.Payload.Length;
                    }

                    _pendingEnqueue.Add(new InFlight(entry, skip, entry.ReplyCount == 0));
                    next = entry.Sequence + 1;
                    if (unflushed >= FlushThresholdBytes)
                    {
                        EnqueueAll();
                        await FlushAsync(output, ct);
                        unflushed = 0;
                    }
                }

                // Registered before the bytes leave, so a reply can never arrive for an entry not in flight.
                EnqueueAll();
                await FlushAsync(output, ct);
                Array.Clear(batch, 0, n);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Break($"writing to the replica failed: {e.Message}");
        }
    }

    private async ValueTask FlushAsync(PipeWriter output, CancellationToken ct)
    {
        var result = await output.FlushAsync(ct);
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new IOException("the replica connection is closed");
        }
    }

    /// <summary>Waits until entries may be written; returns how many.</summary>
    private async ValueTask<int> WaitForSpaceAsync(CancellationToken ct)
    {
        while (true)
        {
            lock (_inFlightLock)
            {
                if (_inFlight.Count < _maxInFlight)
                {
                    _waitingForSpace = false;
                    return _maxInFlight - _inFlight.Count;
                }

                _waitingForSpace = true;
            }

            await _space.WaitAsync(ct);
        }
    }

    /// <summary>Moves the entries written since the last call into the in-flight queue, under one lock.</summary>
    private void EnqueueAll()
    {
        if (_pendingEnqueue.Count == 0)
        {
            return;
        }

        lock (_inFlightLock)
        {
            foreach (var item in _pendingEnqueue)
            {
                // An event that produces no reply is applied as soon as everything before it is.
                if (item.Silent && _inFlight.Count == 0)
                {
                    Volatile.Write(ref _applied, item.Entry.Sequence);
                    SignalApplied(item.Entry.Sequence);
                    continue;
                }

                _inFlight.Enqueue(item);
            }
        }

        _pendingEnqueue.Clear();
    }

    private async Task ReadLoopAsync(PipeReader input, CancellationToken ct)
    {
        var skipped = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var result = await input.ReadAsync(ct);
                var buffer = result.Buffer;

                // The replies of one read are decided in one wake batch: a client's replies among them leave in one
                // send at the batch's end (see WakeBatch). Not with a reply delay, whose await would span the batch.
                var delay = ReplyDelay;
                using var batch = delay > TimeSpan.Zero ? default : WakeBatch.Open();
                while (!buffer.IsEmpty)
                {
                    InFlight front;
                    lock (_inFlightLock)
                    {
                        if (!_inFlight.TryPeek(out front))
                        {
                            throw new InvalidDataException("the replica sent bytes nobody asked for");
                        }
                    }

                    if (skipped < front.Skip)
                    {
                        // Replies to the context switch (RESP: SELECT, HELLO): read and dropped; an error there is a fault.
                        var status = _framer.TryFrame(buffer, out var end);
                        if (status == FrameStatus.Incomplete)
                        {
                            break;
                        }

                        if (status == FrameStatus.Invalid)
                        {
                            throw new InvalidDataException("the replica broke the protocol");
                        }

                        if (buffer.FirstSpan[0] == (byte)'-')
                        {
                            throw new InvalidDataException($"the replica refused a session context switch before #{front.Entry.Sequence}");
                        }

                        buffer = buffer.Slice(end);
                        skipped++;
                        continue;
                    }

                    if (!TryFrameReplies(buffer, front.Entry.ReplyCount, out var replyEnd, out var lastOffset))
                    {
                        break;
                    }

                    var reply = buffer.Slice(0, replyEnd);
                    buffer = buffer.Slice(replyEnd);
                    skipped = 0;
                    Dequeue(front.Entry);
                    if (delay > TimeSpan.Zero)
                    {
                        await Task.Delay(delay, ct);
                    }

                    _callbacks.OnReply(this, front.Entry, reply, lastOffset);
                    if (front.Entry.Kind == LogEventKind.Checkpoint)
                    {
                        Interlocked.Exchange(ref _barrier, null)?.TrySetResult();
                    }
                }

                input.AdvanceTo(buffer.Start, result.Buffer.End);
                if (result.IsCompleted)
                {
                    Break("the replica closed its connection");
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Break($"reading from the replica failed: {e.Message}");
        }
    }

    private bool TryFrameReplies(ReadOnlySequence<byte> buffer, int count, out SequencePosition end, out int lastOffset)
    {
        var rest = buffer;
        lastOffset = 0;
        end = buffer.Start;
        for (var i = 0; i < count; i++)
        {
            var status = _framer.TryFrame(rest, out var frameEnd);
            if (status == FrameStatus.Incomplete)
            {
                return false;
            }

            if (status == FrameStatus.Invalid)
            {
                throw new InvalidDataException("the replica broke the protocol");
            }

            lastOffset = checked((int)(buffer.Length - rest.Length));
            rest = rest.Slice(frameEnd);
            end = frameEnd;
        }

        return true;
    }

    private void Dequeue(LogEntry answered)
    {
        bool wake;
        lock (_inFlightLock)
        {
            _inFlight.Dequeue();
            var applied = answered.Sequence;
            while (_inFlight.TryPeek(out var next) && next.Silent)
            {
                _inFlight.Dequeue();
                applied = next.Entry.Sequence;
            }

            Volatile.Write(ref _applied, applied);
            SignalApplied(applied);
            wake = _waitingForSpace;
            _waitingForSpace = false;
        }

        if (wake)
        {
            _space.Release();
        }
    }

    /// <summary>Whether a read-only entry may be left out: skipping is on and the entry is decided (read in that order).</summary>
    private bool Settled(LogEntry entry)
    {
        var decided = _callbacks.IsDecided(entry.Sequence);
        Interlocked.MemoryBarrier();
        return decided && SkipSettledReads;
    }

    /// <summary>An entry written (or, <paramref name="Silent"/>, left out or without a reply) and its context-switch replies to skip.</summary>
    private readonly record struct InFlight(LogEntry Entry, int Skip, bool Silent);
}
