using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Native;

namespace Resh.Ordering;

/// <summary>
/// The one thread that reads the gateway's sockets, its clients' and its replicas', the way redis-server reads its
/// clients: a level-triggered epoll set, one non-blocking recv per ready socket per turn (no second recv to learn that
/// nothing more is there), the bytes pushed into that connection's pipe, whose reader (a client's session, a replica's
/// reply reader) runs on this thread at once. The whole turn is one <see cref="WakeBatch"/> whose wakes run on this
/// thread: each replica's log writer sends once per turn everything the turn's clients asked, and each client's writer
/// sends once per turn the replies the turn decided (docs/architecture.md, "Reading sockets: one epoll loop").
/// </summary>
internal sealed partial class SocketReadLoop : IDisposable
{
    private const int MaxEvents = 256;

    private readonly ILogger _logger;
    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentDictionary<ulong, Registration> _registrations = new();
    private readonly Lock _gate = new();
    private long _nextId;
    private volatile bool _stopping;
    private bool _closed;

    private SocketReadLoop(ILogger logger)
    {
        _logger = logger;
        _epoll = Libc.EpollCreate();
        try
        {
            _wake = Libc.EventFd();
            if (Libc.EpollAdd(_epoll, _wake, Libc.EpollIn, 0) is not 0 and var error)
            {
                throw new IOException($"epoll_ctl failed for the loop's eventfd (errno {error})");
            }
        }
        catch
        {
            _ = Libc.Close(_epoll);
            throw;
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "resh-io" };
        _thread.Start();
    }

    private static readonly Lock s_sharedGate = new();
    private static SocketReadLoop? s_shared;
    private static bool s_sharedTried;

    /// <summary>
    /// The process's loop, started by the first caller (whose logger it keeps), or null (logged) where epoll is not
    /// available: connections then read through .NET's sockets. It lives as long as the process.
    /// </summary>
    public static SocketReadLoop? Shared(ILogger logger)
    {
        lock (s_sharedGate)
        {
            if (!s_sharedTried)
            {
                s_sharedTried = true;
                s_shared = TryCreate(logger);
            }

            return s_shared;
        }
    }

    /// <summary>A loop of its own (tests), or null (logged) where epoll is not available.</summary>
    public static SocketReadLoop? TryCreate(ILogger logger)
    {
        try
        {
            return new SocketReadLoop(logger);
        }
        catch (Exception e) when (e is IOException or DllNotFoundException or EntryPointNotFoundException)
        {
            NotAvailable(logger, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Starts reading a peer that sends only what it was asked for (a replica, a Remus backup's acknowledgements) on the
    /// process's loop: without the client bound, 64 KiB per turn. Null where the loop is not available (the caller then
    /// reads through .NET's sockets). Connect the socket with <see cref="ConnectAsync"/>.
    /// </summary>
    public static Registration? TryRegisterPeer(Socket socket) =>
        Shared(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)?.Register(socket, bounded: false, readSize: 64 * 1024);

    /// <summary>
    /// Connects a socket this loop is to read, with a blocking connect on a pool thread. An asynchronous connect that
    /// has to wait registers the socket with .NET's own epoll engine, for good and edge-triggered for reads, and that
    /// engine's thread then wakes for every arrival the loop reads itself: about a context switch per two requests at
    /// 50 clients through the replica connections (docs/benchmarks.md, "The fast path, fourth step"). A cancellation
    /// closes the socket, which ends the connect.
    /// </summary>
    public static async Task ConnectAsync(Socket socket, EndPoint endpoint, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using (cancellationToken.Register(static s => ((Socket)s!).Dispose(), socket))
        {
            try
            {
                await Task.Run(() => socket.Connect(endpoint), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("the connect was cancelled", e, cancellationToken);
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Starts reading <paramref name="socket"/>; its bytes come out of the registration's <see cref="Registration.Reader"/>,
    /// up to <paramref name="readSize"/> bytes per turn. <paramref name="bounded"/>: the loop stops reading the socket
    /// while 64 KiB its reader has not examined wait (a client: it is slowed by TCP); unbounded, it reads on (a replica,
    /// which sends only the replies it was asked for).
    /// </summary>
    public Registration Register(Socket socket, bool bounded = true, int readSize = 16 * 1024)
    {
        var registration = new Registration(this, (ulong)Interlocked.Increment(ref _nextId), socket, bounded, readSize);
        _registrations[registration.Id] = registration;
        registration.Arm();
        return registration;
    }

    private void Run()
    {
        var events = new byte[MaxEvents * Libc.EpollEventSize];
        while (!_stopping)
        {
            var n = Libc.EpollWait(_epoll, events, -1);
            if (n < 0)
            {
                if (-n == Libc.ErrorInterrupted)
                {
                    continue;
                }

                // Never seen; if it happens, the connections are closed rather than left unread.
                LoopFailed(_logger, -n);
                foreach (var registration in _registrations.Values)
                {
                    registration.Fail(new IOException($"the gateway's read loop stopped (epoll_wait errno {-n})"));
                }

                return;
            }

            var batch = WakeBatch.Open(inline: true);
            try
            {
                for (var i = 0; i < n; i++)
                {
                    var (_, data) = Libc.EpollEvent(events, i);
                    if (data == 0)
                    {
                        Libc.EventFdClear(_wake);
                    }
                    else if (_registrations.TryGetValue(data, out var registration))
                    {
                        try
                        {
                            registration.OnReadable();
                        }
                        catch (Exception e)
                        {
                            // A fault of one connection's reader ends that connection, never the loop (nor the process).
                            ReaderFailed(_logger, e);
                            registration.Fail(new IOException($"reading the connection failed: {e.Message}", e));
                        }
                    }
                }
            }
            finally
            {
                // The turn's wake-ups: each replica writer once for every request the turn appended, each client writer
                // once for every reply the turn decided.
                batch.Dispose();
            }
        }
    }

    /// <summary>Adds or removes a socket, unless the loop is closed (its epoll descriptor's number may be reused by then).</summary>
    private int Control(bool add, Socket socket, ulong id)
    {
        var handle = socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            lock (_gate)
            {
                return _closed ? 0
                    : add ? Libc.EpollAdd(_epoll, handle.DangerousGetHandle(), Libc.EpollIn | Libc.EpollRdHup, id)
                    : Libc.EpollDelete(_epoll, handle.DangerousGetHandle());
            }
        }
        catch (ObjectDisposedException)
        {
            // The socket is closed: the kernel dropped it from the set.
            return 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        Libc.EventFdSignal(_wake);
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(5));
        }

        lock (_gate)
        {
            _closed = true;
            _ = Libc.Close(_epoll);
            _ = Libc.Close(_wake);
        }
    }

    /// <summary>One socket in the loop: a pipe its bytes go into, read by the connection's reader.</summary>
    internal sealed class Registration : IDisposable
    {
        private const int Armed = 0;
        private const int Paused = 1;
        private const int Closed = 2;

        private readonly SocketReadLoop _loop;
        private readonly Socket _socket;
        private readonly Lock _lock = new();

        private readonly Pipe _pipe;
        private readonly int _readSize;

        private int _state = Paused;

        // The reader runs on the thread that pushed the bytes (the loop's); a writer held back by a full pipe (a session
        // that does not read now: a blocking command, a full reply queue) resumes on the thread that read it down.
        internal Registration(SocketReadLoop loop, ulong id, Socket socket, bool bounded, int readSize)
        {
            _loop = loop;
            Id = id;
            _socket = socket;
            _readSize = readSize;
            _pipe = new(new PipeOptions(
                readerScheduler: PipeScheduler.Inline,
                writerScheduler: PipeScheduler.Inline,
                pauseWriterThreshold: bounded ? 64 * 1024 : 0,
                resumeWriterThreshold: bounded ? 32 * 1024 : 0,
                minimumSegmentSize: readSize,
                useSynchronizationContext: false));
        }

        internal ulong Id { get; }

        /// <summary>The socket's bytes, as they arrive; completed at the peer's end of stream (with an error on a reset).</summary>
        public PipeReader Reader => _pipe.Reader;

        internal void Arm()
        {
            int error;
            lock (_lock)
            {
                if (_state != Paused)
                {
                    return;
                }

                error = _loop.Control(add: true, _socket, Id);
                if (error == 0)
                {
                    _state = Armed;
                    return;
                }
            }

            End(new IOException($"cannot watch the socket (epoll_ctl errno {error})"));
        }

        /// <summary>On the loop's thread: one recv, and the session runs on what came.</summary>
        internal void OnReadable()
        {
            if (Volatile.Read(ref _state) != Armed)
            {
                return;
            }

            var writer = _pipe.Writer;
            var memory = writer.GetMemory(_readSize);
            int n;
            var handle = _socket.SafeHandle;
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                n = Libc.ReceiveNow(handle.DangerousGetHandle(), memory.Span);
            }
            catch (ObjectDisposedException)
            {
                n = 0;
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }

            if (n == -Libc.ErrorWouldBlock)
            {
                return;
            }

            if (n <= 0)
            {
                End(n == 0 ? null : new IOException($"connection failed (errno {-n})"));
                return;
            }

            writer.Advance(n);
            ValueTask<FlushResult> flush;
            try
            {
                flush = writer.FlushAsync();
            }
            catch (Exception e) when (e is InvalidOperationException)
            {
                End(null);
                return;
            }

            if (flush.IsCompleted)
            {
                if (flush.GetAwaiter().GetResult().IsCompleted)
                {
                    // The session stopped reading for good.
                    End(null);
                }

                return;
            }

            // The session does not take more now: the socket leaves the set until it read the pipe down.
            Pause();
            _ = ResumeAfterAsync(flush);
        }

        private void Pause()
        {
            lock (_lock)
            {
                if (_state == Armed)
                {
                    _state = Paused;
                    _ = _loop.Control(add: false, _socket, Id);
                }
            }
        }

        private async Task ResumeAfterAsync(ValueTask<FlushResult> flush)
        {
            FlushResult result;
            try
            {
                result = await flush;
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                return;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                End(null);
                return;
            }

            Arm();
        }

        /// <summary>The loop cannot read this socket any more: its reader sees an error.</summary>
        internal void Fail(Exception error) => End(error);

        /// <summary>The peer's stream ended (or failed): out of the loop, and the reader sees the end.</summary>
        private void End(Exception? error)
        {
            if (Leave())
            {
                _pipe.Writer.Complete(error);
            }
        }

        /// <summary>The connection is done: out of the loop. Call before the socket is closed.</summary>
        public void Dispose()
        {
            if (Leave())
            {
                _pipe.Writer.CancelPendingFlush();
                _pipe.Reader.Complete();
            }
        }

        /// <summary>Out of the set and of the loop's table, once: false when it had left already.</summary>
        private bool Leave()
        {
            lock (_lock)
            {
                if (_state == Closed)
                {
                    return false;
                }

                if (_state == Armed)
                {
                    _ = _loop.Control(add: false, _socket, Id);
                }

                _state = Closed;
            }

            _loop._registrations.TryRemove(Id, out _);
            return true;
        }
    }

    [LoggerMessage(EventId = 1112, Level = LogLevel.Warning, Message = "Sockets are read through .NET's socket engine: the epoll read loop is not available ({Reason})")]
    private static partial void NotAvailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 1114, Level = LogLevel.Error, Message = "A connection's reader failed on the read loop; that connection is closed")]
    private static partial void ReaderFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1113, Level = LogLevel.Critical, Message = "The read loop stopped: epoll_wait failed (errno {Errno}); its connections are closed")]
    private static partial void LoopFailed(ILogger logger, int errno);
}
