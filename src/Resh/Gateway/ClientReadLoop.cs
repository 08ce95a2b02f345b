using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Native;
using Resh.Ordering;

namespace Resh.Gateway;

/// <summary>
/// One thread that reads every client socket of a gateway, the way redis-server reads its clients: a level-triggered
/// epoll set, one non-blocking recv per ready socket per turn (no second recv to learn that nothing more is there), the
/// bytes pushed into that connection's pipe, whose reader (the client's session) runs on this thread at once. The whole
/// turn is one <see cref="WakeBatch"/>: each replica's log writer is woken once per turn, for everything the turn's
/// clients asked, instead of once per client read (docs/architecture.md, "Reading clients").
/// </summary>
internal sealed partial class ClientReadLoop : IDisposable
{
    private const int MaxEvents = 256;

    /// <summary>Bytes asked of one socket per turn (more waits for the next turn: every ready client gets its turn).</summary>
    private const int ReadSize = 16 * 1024;

    private readonly ILogger _logger;
    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly ConcurrentDictionary<ulong, Registration> _registrations = new();
    private readonly Lock _gate = new();
    private long _nextId;
    private volatile bool _stopping;
    private bool _closed;

    private ClientReadLoop(ILogger logger)
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

        _thread = new Thread(Run) { IsBackground = true, Name = "resh-clients" };
        _thread.Start();
    }

    /// <summary>A loop, or null (logged) where epoll is not available: connections then read through .NET's sockets.</summary>
    public static ClientReadLoop? TryCreate(ILogger logger)
    {
        try
        {
            return new ClientReadLoop(logger);
        }
        catch (Exception e) when (e is IOException or DllNotFoundException or EntryPointNotFoundException)
        {
            NotAvailable(logger, e.Message);
            return null;
        }
    }

    /// <summary>Starts reading <paramref name="socket"/>; its bytes come out of the registration's <see cref="Registration.Reader"/>.</summary>
    public Registration Register(Socket socket)
    {
        var registration = new Registration(this, (ulong)Interlocked.Increment(ref _nextId), socket);
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

                LoopFailed(_logger, -n);
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
                        registration.OnReadable();
                    }
                }
            }
            finally
            {
                // The turn's wake-ups: each replica writer once, for every request the turn appended.
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

    /// <summary>One client socket in the loop: a pipe its bytes go into, read by the connection's session.</summary>
    internal sealed class Registration : IDisposable
    {
        private const int Armed = 0;
        private const int Paused = 1;
        private const int Closed = 2;

        private readonly ClientReadLoop _loop;
        private readonly Socket _socket;
        private readonly Lock _lock = new();

        // The session reads on the thread that pushed the bytes (the loop's); a writer held back by a full pipe (a session
        // that does not read now: a blocking command, a full reply queue) resumes on the thread that read it down.
        private readonly Pipe _pipe = new(new PipeOptions(
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 64 * 1024,
            resumeWriterThreshold: 32 * 1024,
            minimumSegmentSize: ReadSize,
            useSynchronizationContext: false));

        private int _state = Paused;

        internal Registration(ClientReadLoop loop, ulong id, Socket socket)
        {
            _loop = loop;
            Id = id;
            _socket = socket;
        }

        internal ulong Id { get; }

        /// <summary>The client's bytes, as they arrive; completed at the client's end of stream (with an error on a reset).</summary>
        public PipeReader Reader => _pipe.Reader;

        internal void Arm()
        {
            lock (_lock)
            {
                if (_state != Paused)
                {
                    return;
                }

                if (_loop.Control(add: true, _socket, Id) is not 0 and var error)
                {
                    _state = Closed;
                    _loop._registrations.TryRemove(Id, out _);
                    _pipe.Writer.Complete(new IOException($"cannot watch the client socket (epoll_ctl errno {error})"));
                    return;
                }

                _state = Armed;
            }
        }

        /// <summary>On the loop's thread: one recv, and the session runs on what came.</summary>
        internal void OnReadable()
        {
            if (Volatile.Read(ref _state) != Armed)
            {
                return;
            }

            var writer = _pipe.Writer;
            var memory = writer.GetMemory(ReadSize);
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

            if (n == -Libc.ErrorAgain)
            {
                return;
            }

            if (n <= 0)
            {
                End(n == 0 ? null : new IOException($"client connection failed (errno {-n})"));
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

        /// <summary>The client's stream ended (or failed): out of the loop, and the session sees the end.</summary>
        private void End(Exception? error)
        {
            lock (_lock)
            {
                if (_state == Closed)
                {
                    return;
                }

                if (_state == Armed)
                {
                    _ = _loop.Control(add: false, _socket, Id);
                }

                _state = Closed;
            }

            _loop._registrations.TryRemove(Id, out _);
            _pipe.Writer.Complete(error);
        }

        /// <summary>The connection is done: out of the loop. Call before the socket is closed.</summary>
        public void Dispose()
        {
            lock (_lock)
            {
                if (_state == Closed)
                {
                    return;
                }

                if (_state == Armed)
                {
                    _ = _loop.Control(add: false, _socket, Id);
                }

                _state = Closed;
            }

            _loop._registrations.TryRemove(Id, out _);
            _pipe.Writer.CancelPendingFlush();
            _pipe.Reader.Complete();
        }
    }

    [LoggerMessage(EventId = 1112, Level = LogLevel.Warning, Message = "Clients are read through .NET's sockets: the epoll read loop is not available ({Reason})")]
    private static partial void NotAvailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 1113, Level = LogLevel.Critical, Message = "The client read loop stopped: epoll_wait failed (errno {Errno}); clients are no longer read")]
    private static partial void LoopFailed(ILogger logger, int errno);
}
