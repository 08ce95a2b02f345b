using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Resh.Domains;
using Resh.SampleKv;

namespace Resh.Tests.Group;

/// <summary>
/// Creates <see cref="FakeDomain"/>s for a replica group under test: the command template is "fake {port}".
/// Disposing it kills every domain it created.
/// </summary>
internal sealed class FakeDomainFactory : IAsyncDisposable
{
    private readonly ConcurrentQueue<FakeDomain> _created = new();

    /// <summary>Every domain created so far, in order.</summary>
    public IReadOnlyList<FakeDomain> Created => [.. _created];

    /// <summary>Replica ids ("r1") whose next domains hang right after answering the readiness probe: the replica's own connection gets no answer until resumed.</summary>
    public ConcurrentDictionary<string, bool> HangAfterProbe { get; } = new();

    public IDomain Create(DomainSpec spec)
    {
        var replica = spec.Id[..spec.Id.LastIndexOf(".g", StringComparison.Ordinal)];
        var domain = new FakeDomain(spec, HangAfterProbe.ContainsKey(replica));
        _created.Enqueue(domain);
        return domain;
    }

    /// <summary>The newest domain of one replica ("r1"), or null.</summary>
    public FakeDomain? Newest(string replica) => Created.LastOrDefault(d => d.Id.StartsWith(replica + ".g", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        foreach (var domain in _created)
        {
            await domain.DisposeAsync();
        }
    }
}

/// <summary>
/// An in-process domain: a sample key-value server behind a relay on the port the group chose. Pausing holds
/// every byte in the relay (a frozen process: connections stay open, nothing is answered); killing closes the
/// relay and every connection and completes <see cref="Exited"/> with 137, as SIGKILL would.
/// </summary>
internal sealed class FakeDomain : IDomain
{
    private readonly int _port;
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _killed = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource _running = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private KvServer? _server;
    private Socket? _listener;
    private readonly bool _hangAfterProbe;
    private readonly string _dataDirectory;
    private Task _accepting = Task.CompletedTask;

    public FakeDomain(DomainSpec spec, bool hangAfterProbe)
    {
        Id = spec.Id;
        _dataDirectory = spec.DataDirectory;
        _port = int.Parse(spec.Arguments[^1], CultureInfo.InvariantCulture);
        _hangAfterProbe = hangAfterProbe;
        _running.TrySetResult();
    }

    public string Id { get; }

    public DomainState State { get; private set; } = DomainState.Created;

    public int? Pid => null;

    public Task<int> Exited => _exited.Task;

    public TimeSpan CpuTime => TimeSpan.Zero;

    public string Isolation => "fake";

    /// <summary>Where the key-value server itself listens (behind the relay): a test reaches the state directly here.</summary>
    public IPEndPoint? ServerEndPoint => _server?.EndPoint;

    public void Start()
    {
        lock (_lock)
        {
            if (State != DomainState.Created)
            {
                throw new InvalidOperationException($"{Id} was started already");
            }

            // A state file like a service's (the same on every healthy replica), for checkpoints to capture.
            File.WriteAllText(Path.Combine(_dataDirectory, "state.txt"), "fake state\n");
            _server = KvServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), Variant.A).GetAwaiter().GetResult();
            _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, _port));
            _listener.Listen(64);
            State = DomainState.Running;
            _accepting = AcceptAsync(_listener, _server.EndPoint);
        }
    }

    public void Pause()
    {
        lock (_lock)
        {
            if (State == DomainState.Running)
            {
                _running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                State = DomainState.Paused;
            }
        }
    }

    public void Resume()
    {
        lock (_lock)
        {
            if (State == DomainState.Paused)
            {
                State = DomainState.Running;
                _running.TrySetResult();
            }
        }
    }

    public void Kill()
    {
        lock (_lock)
        {
            if (State == DomainState.Exited)
            {
                return;
            }

            State = DomainState.Exited;
            _running.TrySetResult();
        }

        _killed.Cancel();
        _listener?.Dispose();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        _exited.TrySetResult(137);
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            await _accepting.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or TimeoutException)
        {
        }

        if (_server is { } server)
        {
            await server.DisposeAsync();
        }
    }

    private async Task AcceptAsync(Socket listener, IPEndPoint server)
    {
        var ct = _killed.Token;
        var accepted = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var client = await listener.AcceptAsync(ct);
                if (++accepted == 2 && _hangAfterProbe)
                {
                    Pause();
                }

                _sockets.Add(client);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                _sockets.Add(upstream);
                await upstream.ConnectAsync(server, ct);
                _ = RelayAsync(client, upstream, ct);
                _ = RelayAsync(upstream, client, ct);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Copies bytes one way; while the domain is paused, what arrives waits here.</summary>
    private async Task RelayAsync(Socket from, Socket to, CancellationToken ct)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                Task running;
                lock (_lock)
                {
                    running = _running.Task;
                }

                await running.WaitAsync(ct);
                ct.ThrowIfCancellationRequested();
                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, ct);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
