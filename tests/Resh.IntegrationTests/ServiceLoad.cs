using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Resh.Clients;

namespace Resh.IntegrationTests;

/// <summary>
/// Clients that INCR a shared counter and SET keys of their own through the service address until stopped, reconnecting
/// when it moves: what they saw acknowledged, every count, the errors, and when each reply came.
/// </summary>
internal sealed class ServiceLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<long> _replies = [];
    private TestHosts _net = null!;
    private IPEndPoint _service = null!;
    private IPEndPoint? _fallback;
    private List<Task> _clients = [];
    private int _marked;
    private int _sinceMark;

    public ConcurrentDictionary<string, string> Acked { get; } = new();

    public ConcurrentBag<long> Counts { get; } = [];

    public ConcurrentBag<string> Errors { get; } = [];

    public int SinceMark => Volatile.Read(ref _sinceMark);

    public bool Faulted => _clients.Any(t => t.IsFaulted);

    /// <summary>The longest time between two replies seen by any client, from the first to the last reply.</summary>
    public TimeSpan LongestGap
    {
        get
        {
            var times = _replies.Order().ToList();
            var gap = times.Zip(times.Skip(1), (a, b) => b - a).DefaultIfEmpty(0).Max();
            return Stopwatch.GetElapsedTime(0, gap);
        }
    }

    /// <summary>
    /// Starts <paramref name="clients"/> clients on <paramref name="service"/>; with <paramref name="fallback"/>, a client
    /// whose connection breaks goes on there (another host of the same service).
    /// </summary>
    public static ServiceLoad Start(TestHosts net, IPEndPoint service, int clients, IPEndPoint? fallback = null)
    {
        var load = new ServiceLoad { _net = net, _service = service, _fallback = fallback };
        load._clients = [.. Enumerable.Range(0, clients).Select(c => Task.Run(() => load.RunAsync(c)))];
        return load;
    }

    /// <summary>From now on, acknowledged operations count towards <see cref="SinceMark"/>.</summary>
    public void Mark() => Volatile.Write(ref _marked, 1);

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_clients).WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>
    /// Every acknowledged write is there (at the fallback, when there is one: the service moved there), and no two clients
    /// ever saw the same count: no reply a client received was lost.
    /// </summary>
    public async Task AssertNothingLostAsync()
    {
        var service = _fallback ?? _service;
        await using (var check = await ConnectAsync(_net, service, CancellationToken.None))
        {
            var final = long.Parse((await check.CallAsync("GET", "counter").WaitAsync(TimeSpan.FromSeconds(10))).AsString()!, CultureInfo.InvariantCulture);
            Assert.True(final >= Counts.Max(), $"the counter is {final}, but a client saw {Counts.Max()}");
        }

        await Tools.AssertAllReadableAsync(service, Acked);
        Assert.Equal(Counts.Count, Counts.Distinct().Count());
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _stop.Dispose();
    }

    private async Task RunAsync(int c)
    {
        RespClient? client = null;
        var target = _service;
        for (var i = 0; !_stop.IsCancellationRequested; i++)
        {
            try
            {
                client ??= await ConnectAsync(_net, target, _stop.Token);
                var count = await client.CallAsync("INCR", "counter").WaitAsync(TimeSpan.FromSeconds(5));
                Counts.Add(count.Integer);
                var key = $"k:{c}:{i}";
                var value = $"v:{c}:{i}";
                if ((await client.CallAsync("SET", key, value).WaitAsync(TimeSpan.FromSeconds(5))).AsString() == "OK")
                {
                    Acked[key] = value;
                    _replies.Add(Stopwatch.GetTimestamp());
                }

                if (Volatile.Read(ref _marked) == 1)
                {
                    Interlocked.Increment(ref _sinceMark);
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or EndOfStreamException or InvalidDataException)
            {
                // The service moved: the reply, if any, was never acknowledged. Reconnect.
                Errors.Add($"{c}:{i}: {e.GetType().Name}");
                target = _fallback ?? target;
                if (client is not null)
                {
                    await client.DisposeAsync();
                    client = null;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
        }

        if (client is not null)
        {
            await client.DisposeAsync();
        }
    }

    /// <summary>Connects to the service address, retrying while it moves (the neighbour cache is refreshed as a gratuitous ARP would).</summary>
    public static async Task<RespClient> ConnectAsync(TestHosts net, IPEndPoint service, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
                attempt.CancelAfter(TimeSpan.FromSeconds(1));
                return await RespClient.ConnectAsync(service, attempt.Token);
            }
            catch (Exception e) when ((e is IOException or System.Net.Sockets.SocketException or OperationCanceledException) && !ct.IsCancellationRequested && clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                try
                {
                    await net.IpAsync("neigh", "flush", "dev", net.Bridge);
                }
                catch (InvalidOperationException)
                {
                    // Best effort: clients reconnecting at once flush the same table, and one may find an entry gone (ENOENT).
                }

                await Task.Delay(50, ct);
            }
        }
    }
}
