// Over 600 lines: one client connection: its read loop, its write loop, the reply slots between them, the limits on what it may leave unread (bytes, write timeout) and one Break; they share the connection's state and its teardown.
using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Diagnostics;
using Resh.Ordering;
using Resh.Protocols;

namespace Resh.Gateway;

/// <summary>
/// One client TCP connection: frames client bytes into requests with the protocol's session, submits them
/// to the sequencer, and writes the voted replies back strictly in request order. A client's crash, garbage
/// or slowness affects only this connection.
/// </summary>
internal sealed class ClientConnection : IClientLink, IDeferredWake
{
    /// <summary>Replies written since the last flush beyond which the writer flushes before taking the next one.</summary>
    private const int FlushThreshold = 256 * 1024;

    private readonly Socket _socket;
    private readonly IProtocol _protocol;
    private readonly IClientSession _session;
    private readonly ISequencer _sequencer;
    private readonly GatewayOptions _options;
    private readonly ReshMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ReplyQueue<Pending> _pending;

    /// <summary>Voted replies this session waits for (see <see cref="Pending.Complete"/>).</summary>
    private int _unanswered;

    /// <summary>Bytes of replies and messages decided but not yet taken by the writer (bounded by max-pending-bytes).</summary>
    private long _unsentBytes;

    /// <summary>Stopwatch timestamp of the socket write in progress; 0 when none waits (see <see cref="CheckWriteTimeout"/>).</summary>
    private long _flushStarted;

    /// <summary>Set when a reply the writer may wait for is decided (see <see cref="Pending.Complete"/>).</summary>
    private readonly WakeSignal _replyReady = new();

    /// <summary>1 while a wake of the writer is deferred to a wake batch (one per batch, however many replies).</summary>
    private int _wakeDeferred;
    private readonly CancellationTokenSource _cts;

    // Cancelled only by Break: a drained connection still waits for its pending replies, a broken one does not.
    private readonly CancellationTokenSource _broken = new();
    private string? _closeReason;

    private readonly MemoryGuard _memory;
    private readonly SocketReadLoop? _readLoop;

    /// <param name="readLoop">The epoll loop that reads this client (null: .NET's socket reads, through a stream).</param>
    public ClientConnection(long sessionId, Socket socket, IProtocol protocol, ISequencer sequencer, GatewayOptions options, ReshMetrics metrics, ILogger logger, MemoryGuard memory, CancellationToken stopping, SocketReadLoop? readLoop = null)
    {
        _memory = memory;
        _readLoop = readLoop;
        SessionId = sessionId;
        _socket = socket;
        _protocol = protocol;
        Remote = socket.RemoteEndPoint;
        _session = protocol.CreateSession(sessionId);
        _session.Attach(this);
        _sequencer = sequencer;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        // The writer loop goes on on the read loop's thread when it queues a reply slot, and on the deciding thread
        // when the last awaited reply is decided (see Pending.Complete): no hand-off on the way of one request.
        _pending = new ReplyQueue<Pending>(options.MaxPendingPerSession);
        _cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    }

    public long SessionId { get; }

    /// <summary>Why the connection ended (first cause), or null while it runs.</summary>
    public string? CloseReason => Volatile.Read(ref _closeReason);

    public async Task RunAsync()
    {
        var stream = new NetworkStream(_socket, ownsSocket: false);
        var registration = _readLoop?.Register(_socket);
        var input = registration?.Reader ?? PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024));
        var output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
        GatewayLog.SessionOpened(_logger, SessionId, _socket.RemoteEndPoint);
        var writer = Task.Run(() => WriteLoopAsync(output));
        try
        {
            // The Open takes its place in the order at the call and the session's requests follow it; its completion
            // is not awaited, which with etcd ordering would cost every new connection a round trip.
            var opened = _sequencer.SubmitAsync(new LogEntry(LogEventKind.Open, SessionId, 0, ReadOnlyMemory<byte>.Empty, 0), CancellationToken.None);
            if (!opened.IsCompletedSuccessfully)
            {
                _ = ObserveOpenAsync(opened);
            }

            await ReadLoopAsync(input);
        }
        catch (OperationCanceledException)
        {
            // Drained or broken: pending replies are still written below.
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // The Open could not be ordered (a full disk, a stopped sequencer): nothing of this session was applied.
            Break($"session not opened, the ordered log cannot be written ({e.Message})");
        }
        catch (Exception e)
        {
            GatewayLog.SessionFailed(_logger, SessionId, e);
            Break($"internal error: {e.Message}");
        }
        finally
        {
            _pending.Complete();
            _session.Closed();
        }

        await writer;
        Break("client disconnected");
        try
        {
            // Bounded: an order that cannot be written now (etcd out of space or unreachable) keeps the Close queued,
            // but must not keep the connection, and so a shutdown, waiting.
            await _sequencer.SubmitAsync(new LogEntry(LogEventKind.Close, SessionId, 0, ReadOnlyMemory<byte>.Empty, 0)).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException or TimeoutException)
        {
            // The log cannot take the Close (full disk, stopped sequencer); the replicas keep no session state.
            GatewayLog.SessionCloseNotOrdered(_logger, SessionId, e.Message);
        }

        GatewayLog.SessionClosed(_logger, SessionId, CloseReason ?? "closed");
        registration?.Dispose();
        _socket.Dispose();
        _cts.Dispose();
        _broken.Dispose();
    }

    public EndPoint? Remote { get; }

    /// <summary>Ends the connection from another thread (CLIENT KILL); the reason is kept if it is the first.</summary>
    public void Close(string reason) => _ = Task.Run(() => Break(reason));

    /// <summary>A message nobody asked for (pub/sub), queued behind the replies before it; a client too slow to read it is closed.</summary>
    public bool TryPush(ReadOnlyMemory<byte> message)
    {
        // Counted before it is queued: the writer may take it, and take its count off, at once.
        AddUnsent(message.Length);
        if (_pending.TryEnqueue(new Pending(message, close: false) { Counted = message.Length }))
        {
            return true;
        }

        Interlocked.Add(ref _unsentBytes, -message.Length);

        // Not on the caller's thread: it delivers under the log's lock.
        _ = Task.Run(() => Break($"client reads too slowly: more than max-pending ({_pending.Capacity}) replies and messages unread"));
        return false;
    }

    /// <summary>
    /// Closes a client whose socket has taken nothing for write-timeout while a reply waits to be sent: it stopped
    /// reading (or its network is gone), and what it was sent would otherwise stay in memory. Called periodically.
    /// </summary>
    public void CheckWriteTimeout(long now)
    {
        var started = Volatile.Read(ref _flushStarted);
        if (started != 0 && _options.WriteTimeout > TimeSpan.Zero && Stopwatch.GetElapsedTime(started, now) > _options.WriteTimeout)
        {
            GatewayLog.ClientCutOff(_logger, SessionId, Remote, "write-timeout");
            Break($"client stopped reading: its socket took no reply bytes for {_options.WriteTimeout.TotalSeconds:0.###}s (service.write-timeout)");
        }
    }

    /// <summary>Counts reply bytes waiting for the writer; a client over max-pending-bytes is disconnected.</summary>
    private void AddUnsent(long bytes)
    {
        var unsent = Interlocked.Add(ref _unsentBytes, bytes);
        if (unsent > _options.MaxPendingBytes && CloseReason is null)
        {
            // Not on the caller's thread: replies are completed by the group, pushes delivered under the log's lock.
            ThreadPool.UnsafeQueueUserWorkItem(
                static state =>
                {
                    GatewayLog.ClientCutOff(state.Connection._logger, state.Connection.SessionId, state.Connection.Remote, "max-pending-bytes");
                    state.Connection.Break($"client reads too slowly: {state.Unsent} bytes of replies unread, more than service.max-pending-bytes ({state.Connection._options.MaxPendingBytes})");
                },
                (Connection: this, Unsent: unsent),
                preferLocal: false);
        }
    }

    /// <summary>Stops reading new requests; replies already pending are still delivered, then the connection closes.</summary>
    public void Drain()
    {
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Ends the connection; only the first reason is kept. Idempotent.</summary>
    public void Break(string reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null)
        {
            return;
        }

        try
        {
            _cts.Cancel();
            _broken.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ReadLoopAsync(PipeReader input)
    {
        var ct = _cts.Token;
        while (!ct.IsCancellationRequested)
        {
            ReadResult result;
            try
            {
                result = await ReadWithIdleTimeoutAsync(input, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (IOException)
            {
                Break("client connection reset");
                return;
            }

            var buffer = result.Buffer;
            var stop = false;
            Pending? barrier = null;

            // The requests of one read are appended in one wake batch: each replica's writer is woken once, at its end,
            // and sends them together (see WakeBatch). The batch is closed before every await that may go on elsewhere.
            var batch = WakeBatch.Open();
            try
            {
                while (!stop)
                {
                    var action = _session.Next(ref buffer);
                    // Read once: the batch must be closed exactly when the case taken below awaits.
                    var overMemory = action.Kind == SessionActionKind.Submit && _memory.Exceeded;
                    if (action.Kind is not (SessionActionKind.NeedMoreData or SessionActionKind.Submit) || overMemory)
                    {
                        batch.Dispose();
                        batch = default;
                    }
                    else if (!WakeBatch.IsOpen)
                    {
                        batch = WakeBatch.Open();
                    }

                    switch (action.Kind)
                    {
                        case SessionActionKind.NeedMoreData:
                            stop = true;
                            break;
                        case SessionActionKind.LocalReply:
                            _metrics.Request("local");
                            await EnqueueAsync(new Pending(action.Bytes.ToArray(), action.CloseAfterReply), ct);
                            if (action.CloseAfterReply)
                            {
                                input.AdvanceTo(buffer.Start);
                                return;
                            }

                            break;
                        case SessionActionKind.Wait:
                            // A paused client (RESP: CLIENT PAUSE): what was read stays in the buffer, to be framed again.
                            await action.Hold!.WaitAsync(ct);
                            break;
                        case SessionActionKind.Submit when overMemory:
                            // Over service.limits.memory: not applied, an error the client can act on (Redis says OOM, too).
                            _metrics.Request("rejected");
                            await EnqueueAsync(new Pending(_protocol.ErrorReply("OOM", $"resh: the gateway's memory is over service.limits.memory ({_memory.Limit >> 20} MiB); request not accepted"), action.CloseAfterReply), ct);
                            break;
                        case SessionActionKind.Submit:
                            var pending = new Pending(this, action.CloseAfterReply, action.Transform, action.Barrier);
                            var entry = new LogEntry(LogEventKind.Request, SessionId, action.Context, PayloadArena.Copy(action.Bytes.Span), action.ReplyCount, action.Selection == ReplySelection.Last, pending, action.ReplyHint) { ReadOnly = action.ReadOnly };
                            var queued = EnqueueAsync(pending, ct);
                            if (!queued.IsCompletedSuccessfully)
                            {
                                // The session's reply queue is full: what was appended so far goes now, then this waits.
                                batch.Dispose();
                                batch = default;
                                await queued;
                                batch = WakeBatch.Open();
                            }

                            // Not cancellable: once its reply slot is queued, the request must reach the log. A sequencer
                            // takes submissions in order at the call; one that orders elsewhere (etcd) completes later, and
                            // the session reads on meanwhile: its replies are released in request order all the same.
                            try
                            {
                                var submitted = _sequencer.SubmitAsync(entry, CancellationToken.None);
                                if (!submitted.IsCompletedSuccessfully)
                                {
                                    _ = ObserveSubmitAsync(submitted, pending);
                                }
                            }
                            catch (IOException e)
                            {
                                NotAccepted(pending, e);
                            }

                            if (action.Barrier)
                            {
                                barrier = pending;
                                stop = true;
                            }

                            break;
                        case SessionActionKind.Fatal:
                            _metrics.Request("rejected");
                            _metrics.ClientError();
                            GatewayLog.SessionRejected(_logger, SessionId, System.Text.Encoding.UTF8.GetString(action.Bytes.Span).TrimEnd());
                            await EnqueueAsync(new Pending(action.Bytes.ToArray(), close: true), ct);
                            input.AdvanceTo(buffer.Start);
                            return;
                    }
                }
            }
            finally
            {
                // Closed before every await, so still open only on the thread that opened it.
                batch.Dispose();
            }

            if (barrier is not null)
            {
                // A blocking command blocks its client: nothing more is framed until its reply is out. What was read
                // already stays in the pipe, to be framed then.
                input.AdvanceTo(buffer.Start);
                if (!await WaitReleasedAsync(input, barrier, ct))
                {
                    Break("client disconnected while blocked");
                    return;
                }

                continue;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Waits for a blocking reply to be sent while watching the socket: a client that goes away while blocked ends its
    /// wait (no retry of a pop is ordered for a client that is gone). False when the client went away.
    /// </summary>
    private static async Task<bool> WaitReleasedAsync(PipeReader input, Pending barrier, CancellationToken ct)
    {
        while (!barrier.Released.IsCompleted)
        {
            var read = input.ReadAsync(ct).AsTask();
            if (await Task.WhenAny(barrier.Released, read) != read)
            {
                input.CancelPendingRead();
            }

            ReadResult result;
            try
            {
                result = await read;
            }
            catch (IOException)
            {
                return barrier.Released.IsCompleted;
            }

            // Nothing consumed, nothing examined: whatever came stays for the session, which frames it after the reply.
            input.AdvanceTo(result.Buffer.Start);
            if (result.IsCanceled)
            {
                break;
            }

            if (!result.Buffer.IsEmpty)
            {
                // The client sent more: it is there. Its next request waits for this reply, as in Redis.
                await barrier.Released.WaitAsync(ct);
                break;
            }

            if (result.IsCompleted)
            {
                return barrier.Released.IsCompleted;
            }
        }

        return true;
    }

    private async Task ObserveOpenAsync(ValueTask<long> opened)
    {
        try
        {
            await opened;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
        {
            Break($"session not opened, the ordered log cannot be written ({e.Message})");
        }
    }

    private async Task ObserveSubmitAsync(ValueTask<long> submitted, Pending pending)
    {
        try
        {
            await submitted;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or OperationCanceledException)
        {
            NotAccepted(pending, e);
        }
    }

    /// <summary>The ordered log cannot take the request (e.g. a full disk): say so; nothing was applied.</summary>
    private void NotAccepted(Pending pending, Exception e) =>
        pending.Complete(_protocol.ErrorReply($"resh: request not accepted, the ordered log cannot be written ({e.Message})"));

    private async ValueTask<ReadResult> ReadWithIdleTimeoutAsync(PipeReader input, CancellationToken ct)
    {
        if (_options.IdleTimeout <= TimeSpan.Zero)
        {
            return await input.ReadAsync(ct);
        }

        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
            idle.CancelAfter(_options.IdleTimeout);
            try
            {
                return await input.ReadAsync(idle.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                if (_pending.Count == 0)
                {
                    Break($"idle for {_options.IdleTimeout.TotalSeconds:0.###}s");
                    throw new OperationCanceledException(ct);
                }
            }
        }
    }

    private ValueTask EnqueueAsync(Pending pending, CancellationToken ct) =>
        _pending.EnqueueAsync(pending, ct);

    private async Task WriteLoopAsync(PipeWriter output)
    {
        var reader = _pending;
        var broken = _broken.Token;
        try
        {
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var pending))
                {
                    while (!pending.IsCompleted)
                    {
                        // Send what is ready before waiting for the replicas. A reply that never comes (a fenced
                        // primary holds it for good) must not keep a broken connection open: the wait ends on Break.
                        await FlushAsync(output);
                        await _replyReady.WaitAsync(broken);
                    }

                    var reply = pending.Reply;
                    if (pending.Counted != 0)
                    {
                        Interlocked.Add(ref _unsentBytes, -pending.Counted);
                    }

                    if (pending.Transform is { } transform)
                    {
                        reply = await TransformAsync(transform, reply, broken);
                    }

                    output.Write(reply.Span);
                    if (output.UnflushedBytes >= FlushThreshold)
                    {
                        // Batches stay bounded: replies ready for a client that does not read wait in the queue (counted
                        // against max-pending-bytes), not in an ever-growing output buffer.
                        await FlushAsync(output);
                    }

                    if (pending.Barrier)
                    {
                        await FlushAsync(output);
                        pending.Release();
                    }

                    if (pending.Close)
                    {
                        await FlushAsync(output);
                        Break("closed after the last reply");
                        return;
                    }
                }

                await FlushAsync(output);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidOperationException)
        {
            Break("client connection lost while writing");
        }
    }

    /// <summary>A transform that fails answers an error to this request only: a client never crashes the gateway.</summary>
    private async ValueTask<ReadOnlyMemory<byte>> TransformAsync(IReplyTransform transform, ReadOnlyMemory<byte> reply, CancellationToken broken)
    {
        try
        {
            return await transform.ApplyAsync(reply, broken);
        }
        catch (OperationCanceledException) when (broken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            GatewayLog.SessionFailed(_logger, SessionId, e);
            return _protocol.ErrorReply($"resh: internal error while answering: {e.Message}");
        }
    }

    private async ValueTask FlushAsync(PipeWriter output)
    {
        if (output.UnflushedBytes == 0)
        {
            return;
        }

        var flush = output.FlushAsync();
        FlushResult result;
        if (flush.IsCompleted)
        {
            result = flush.Result;
        }
        else
        {
            // The socket's send buffer is full: watched by CheckWriteTimeout until it takes the bytes.
            Volatile.Write(ref _flushStarted, Stopwatch.GetTimestamp());
            try
            {
                result = await flush;
            }
            finally
            {
                Volatile.Write(ref _flushStarted, 0);
            }
        }

        if (result.IsCompleted)
        {
            throw new IOException("client stopped reading");
        }
    }

    /// <summary>
    /// A decided reply the writer may wait for: the last one the session waits for wakes the writer on this thread at
    /// once (it is outside every lock of the group, see ReplicaGroup.Release). Inside a wake batch (a replica's reader
    /// deciding the replies of one read) the wake waits for the batch's end, once per batch, so a pipelining client's
    /// replies leave in one send; otherwise, while more are due, the writer goes on on the thread pool.
    /// </summary>
    private void ReplyDecided(bool last)
    {
        if (WakeBatch.IsOpen)
        {
            if (Interlocked.Exchange(ref _wakeDeferred, 1) == 0)
            {
                WakeBatch.Defer(this);
            }

            return;
        }

        _replyReady.Set(inline: last);
    }

    void IDeferredWake.Wake()
    {
        Interlocked.Exchange(ref _wakeDeferred, 0);
        _replyReady.Set(inline: true);
    }

    /// <summary>A reply slot in the session's output order: answered locally at once, or later by the voter.</summary>
    private sealed class Pending : IReplySink
    {
        private readonly ClientConnection? _owner;
        private readonly TaskCompletionSource? _released;
        private ReadOnlyMemory<byte> _reply;
        private volatile bool _done;
        private int _completed;

        public Pending(ReadOnlyMemory<byte> ready, bool close)
        {
            _reply = ready;
            _done = true;
            Close = close;
        }

        public Pending(ClientConnection owner, bool close, IReplyTransform? transform, bool barrier)
        {
            _owner = owner;
            Interlocked.Increment(ref owner._unanswered);
            Close = close;
            Transform = transform;
            if (barrier)
            {
                _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        public bool Barrier => _released is not null;

        /// <summary>Bytes this slot added to the connection's unsent count (taken off when the writer takes the reply).</summary>
        public long Counted { get; set; }

        /// <summary>Completes when the reply was sent (barrier replies only).</summary>
        public Task Released => _released?.Task ?? Task.CompletedTask;

        public void Release() => _released?.TrySetResult();

        public bool Close { get; }

        /// <summary>Applied to the voted reply when it is released to the client.</summary>
        public IReplyTransform? Transform { get; }

        public bool IsCompleted => _done;

        /// <summary>The reply; read only once <see cref="IsCompleted"/>.</summary>
        public ReadOnlyMemory<byte> Reply => _reply;

        public void Complete(ReadOnlyMemory<byte> reply)
        {
            if (_owner is null || Interlocked.Exchange(ref _completed, 1) != 0)
            {
                return;
            }

            Counted = reply.Length;
            _owner.AddUnsent(reply.Length);
            _reply = reply;
            _done = true;
            _owner.ReplyDecided(Interlocked.Decrement(ref _owner._unanswered) == 0);
        }
    }
}
