using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Diagnostics;
using Resh.Ordering;
using Resh.Protocols;

namespace Resh.Gateway;

/// <summary>The client-facing listener. Client connections end here, so a replica's crash never breaks one.</summary>
public sealed class GatewayServer : IAsyncDisposable
{
    private readonly GatewayOptions _options;
    private readonly IProtocol _protocol;
    private readonly ISequencer _sequencer;
    private readonly ReshMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<long, (ClientConnection Connection, Task Run)> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _closing = new();
    private Socket? _listener;
    private IPEndPoint? _bound;
    private IAsyncDisposable? _background;
    private Task _accept = Task.CompletedTask;
    private Task _watch = Task.CompletedTask;
    private long _nextSession;
    private SocketReadLoop? _readLoop;

    public GatewayServer(GatewayOptions options, IProtocol protocol, ISequencer sequencer, ReshMetrics metrics, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        _options = options;
        _protocol = protocol;
        _sequencer = sequencer;
        _metrics = metrics;
        _logger = logger ?? NullLogger.Instance;
        Memory = new MemoryGuard(options.MemoryLimit, _logger);
    }

    /// <summary>service.limits.memory: whether new requests are refused, and the event asking for relief.</summary>
    public MemoryGuard Memory { get; }

    /// <summary>The address actually bound (useful with port 0).</summary>
    public IPEndPoint EndPoint => (IPEndPoint)(_listener?.LocalEndPoint ?? throw new InvalidOperationException("not started"));

    /// <summary>The newest verified checkpoint's time (set by the host that takes checkpoints), for LASTSAVE.</summary>
    public Func<DateTimeOffset?>? LastCheckpoint { get; set; }

    /// <summary>Session ids handed out are above this one (set above the ids found in a restored log).</summary>
    public long LastSessionId
    {
        get => Interlocked.Read(ref _nextSession);
        set => Interlocked.Exchange(ref _nextSession, value);
    }

    /// <summary>Binds the listen address and starts accepting clients.</summary>
    public void Start()
    {
        var listener = new Socket(_options.Listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_options.Listen);
            listener.Listen(512);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new InvalidOperationException($"cannot listen on {_options.Listen}: {e.Message} (service.listen)", e);
        }

        _listener = listener;
        _bound = (IPEndPoint)listener.LocalEndPoint!;
        _background = _protocol.Attach(new Link(this));
        _readLoop = SocketReadLoop.Shared(_logger);
        GatewayLog.Listening(_logger, listener.LocalEndPoint!, _protocol.Name);
        _accept = Task.Run(AcceptLoopAsync);
        _watch = Task.Run(WatchAsync);
    }

    /// <summary>
    /// The limits changed (a reload): the memory guard takes the new service.limits.memory at once, the watcher its
    /// period at its next tick; connections read the others where they use them.
    /// </summary>
    public void LimitsChanged() => Memory.Limit = _options.MemoryLimit;

    private TimeSpan WatchPeriod => TimeSpan.FromMilliseconds(_options.WriteTimeout > TimeSpan.Zero ? Math.Clamp(_options.WriteTimeout.TotalMilliseconds / 4, 10, 250) : 250);

    /// <summary>
    /// Every quarter second (or more often for a short write-timeout): closes clients whose sockets took nothing for
    /// write-timeout, and checks the heap against service.limits.memory. It runs with both off too, since a reload may
    /// turn either on.
    /// </summary>
    private async Task WatchAsync()
    {
        using var timer = new PeriodicTimer(WatchPeriod);
        try
        {
            while (await timer.WaitForNextTickAsync(_closing.Token))
            {
                timer.Period = WatchPeriod;
                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                if (_options.WriteTimeout > TimeSpan.Zero)
                {
                    foreach (var (connection, _) in _connections.Values)
                    {
                        connection.CheckWriteTimeout(now);
                    }
                }

                Memory.Check();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops accepting new clients; connected ones keep being served.</summary>
    public void StopAccepting()
    {
        _stopping.Cancel();
        _listener?.Dispose();
    }

    /// <summary>
    /// Stops accepting, stops reading requests, and waits up to <paramref name="timeout"/> for every pending
    /// reply to be delivered; connections still busy then are closed.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        StopAccepting();
        foreach (var (connection, _) in _connections.Values)
        {
            connection.Drain();
        }

        var runs = _connections.Values.Select(c => c.Run).ToArray();
        try
        {
            await Task.WhenAll(runs).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            foreach (var (connection, _) in _connections.Values)
            {
                connection.Break("gateway shutting down");
            }

            await Task.WhenAll(_connections.Values.Select(c => c.Run)).WaitAsync(TimeSpan.FromSeconds(5));
        }
    }

    public async ValueTask DisposeAsync()
    {
        StopAccepting();
        _closing.Cancel();
        foreach (var (connection, _) in _connections.Values)
        {
            connection.Break("gateway stopped");
        }

        try
        {
            await Task.WhenAll([_accept, _watch, .. _connections.Values.Select(c => c.Run)]).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }

        if (_background is not null)
        {
            await _background.DisposeAsync();
        }

        _stopping.Dispose();
        _closing.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        var listener = _listener!;
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                GatewayLog.AcceptFailed(_logger, e);
                continue;
            }

            client.NoDelay = true;
            if (_connections.Count >= _options.MaxClients)
            {
                GatewayLog.TooManyClients(_logger, _connections.Count);
                _ = RefuseAsync(client);
                continue;
            }

            var id = Interlocked.Increment(ref _nextSession);
            var connection = new ClientConnection(id, client, _protocol, _sequencer, _options, _metrics, _logger, Memory, _closing.Token, _readLoop);
            _metrics.SessionOpened();
            var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var run = RunConnectionAsync(connection, registered.Task);
            _connections[id] = (connection, run);
            registered.SetResult();
        }
    }

    /// <summary>Ends the connections of these sessions (those still open here), each with the reason.</summary>
    public void CloseSessions(IEnumerable<long> sessions, string reason)
    {
        foreach (var session in sessions)
        {
            if (_connections.TryGetValue(session, out var connection))
            {
                connection.Connection.Break(reason);
            }
        }
    }

    private async Task RunConnectionAsync(ClientConnection connection, Task registered)
    {
        await registered;
        try
        {
            await connection.RunAsync();
        }
        catch (Exception e)
        {
            GatewayLog.SessionFailed(_logger, connection.SessionId, e);
        }
        finally
        {
            _metrics.SessionClosed();
            _connections.TryRemove(connection.SessionId, out _);
        }
    }

    private async Task RefuseAsync(Socket client)
    {
        try
        {
            await client.SendAsync(_protocol.ErrorReply("max number of clients reached"));
            client.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>The protocol's way into the log: requests of no client session, released to a waiting task.</summary>
    private sealed class Link(GatewayServer server) : IGatewayLink
    {
        public int ConnectedClients => server._connections.Count;

        // Kept from the start: the listener is disposed when the gateway stops accepting, its sessions go on.
        public IPEndPoint? Listen => server._bound;

        public DateTimeOffset? LastCheckpoint => server.LastCheckpoint?.Invoke();

        public async ValueTask<ReadOnlyMemory<byte>> RequestAsync(ReadOnlyMemory<byte> payload, int context, int replyHint, CancellationToken cancellationToken)
        {
            var sink = new Sink();
            var entry = new LogEntry(LogEventKind.Request, 0, context, payload.ToArray(), 1, origin: sink, replyHint: replyHint);
            await server._sequencer.SubmitAsync(entry, cancellationToken);
            return await sink.Reply.WaitAsync(cancellationToken);
        }

        private sealed class Sink : IReplySink
        {
            private readonly TaskCompletionSource<ReadOnlyMemory<byte>> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public Task<ReadOnlyMemory<byte>> Reply => _reply.Task;

            public void Complete(ReadOnlyMemory<byte> reply) => _reply.TrySetResult(reply);
        }
    }
}
