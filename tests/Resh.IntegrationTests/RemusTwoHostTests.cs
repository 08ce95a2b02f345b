using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Resh.Clients;

namespace Resh.IntegrationTests;

/// <summary>
/// Mode remus across two hosts: network namespaces A (primary) and B (backup) on a bridge, the service on an
/// address of its own that moves to B on takeover. The test client runs outside both.
/// </summary>
public sealed class RemusTwoHostTests
{
    [Fact]
    public async Task Losing_the_primary_host_under_load_moves_the_service_to_the_backup_and_loses_no_acknowledged_write()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        await using var net = await TestHosts.CreateAsync(["A", "B"]);

        // The service address starts on host A.
        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var resh = Path.Combine(AppContext.BaseDirectory, "resh.dll");

        // Across hosts the link is mutual TLS with a certificate the pair shares.
        var certificate = Path.Combine(net.Directory, "pair.pem");
        var key = Path.Combine(net.Directory, "pair.key");
        PinnedTls.WriteNewPair(certificate, key, TimeSpan.FromDays(1));
        var config = $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: remus
            remus:
              backup: [{{net.Address("B")}}:6391, {{net.Address("A")}}:6391]
              epoch: 25ms
              failover-timeout: 300ms
              apply-interval: 200ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            replicas:
              - command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
        var configA = Path.Combine(net.Directory, "a.yaml");
        var configB = Path.Combine(net.Directory, "b.yaml");
        await File.WriteAllTextAsync(configA, config + $"state-dir: {net.Directory}/state-a\n");
        await File.WriteAllTextAsync(configB, config + $"state-dir: {net.Directory}/state-b\n");

        var backupLog = net.Start("B", "backup.log", "dotnet", resh, "backup", "--listen", $"{net.Address("B")}:6391", "--config", configB);
        await Tools.WaitUntilAsync(() => File.ReadAllText(backupLog).Contains("waiting for the primary", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "resh backup on host B");
        var primaryLog = net.Start("A", "primary.log", "dotnet", resh, "run", configA);
        await Tools.WaitUntilAsync(() => File.ReadAllText(primaryLog).Contains("resh: serving", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "resh run on host A");

        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        var acked = new ConcurrentDictionary<string, string>();
        var counts = new ConcurrentBag<long>();
        var errors = new ConcurrentBag<string>();
        var killed = 0;
        var afterKill = 0;
        using var stop = new CancellationTokenSource();
        var clients = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            RespClient? client = null;
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    client ??= await ConnectAsync(net, service, stop.Token);
                    var count = await client.CallAsync("INCR", "counter").WaitAsync(TimeSpan.FromSeconds(5));
                    counts.Add(count.Integer);
                    var key = $"k:{c}:{i}";
                    var value = $"v:{c}:{i}";
                    if ((await client.CallAsync("SET", key, value).WaitAsync(TimeSpan.FromSeconds(5))).AsString() == "OK")
                    {
                        acked[key] = value;
                    }

                    if (Volatile.Read(ref killed) == 1)
                    {
                        Interlocked.Increment(ref afterKill);
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or EndOfStreamException or InvalidDataException)
                {
                    // The primary host is gone: the reply, if any, was never acknowledged. Reconnect.
                    errors.Add($"{c}:{i}: {e.GetType().Name}");
                    if (client is not null)
                    {
                        await client.DisposeAsync();
                        client = null;
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            }

            if (client is not null)
            {
                await client.DisposeAsync();
            }
        })).ToList();

        await Tools.WaitUntilAsync(() => acked.Count >= 400, TimeSpan.FromSeconds(60), "400 acknowledged writes before the primary host is lost");
        var before = acked.Count;

        // Host A is lost: every process on it dies and its link goes down.
        net.KillAll("A");
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "down");
        Volatile.Write(ref killed, 1);
        try
        {
            await Tools.WaitUntilAsync(() => Volatile.Read(ref afterKill) >= 200 || clients.Any(t => t.IsFaulted), TimeSpan.FromSeconds(90), "200 acknowledged operations served by host B");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; client errors: {string.Join(", ", errors.Take(10))}; host B's log:\n{await File.ReadAllTextAsync(backupLog)}", e);
        }
        await stop.CancelAsync();
        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(acked.Count > before);
        Assert.Contains("took over", await File.ReadAllTextAsync(backupLog), StringComparison.Ordinal);

        // Every acknowledged write is there, and no two clients ever saw the same count: no reply a client
        // received was lost with the primary.
        await Tools.AssertAllReadableAsync(service, acked);
        Assert.Equal(counts.Count, counts.Distinct().Count());
        await using var check = await ConnectAsync(net, service, CancellationToken.None);
        var final = long.Parse((await check.CallAsync("GET", "counter")).AsString()!, CultureInfo.InvariantCulture);
        Assert.True(final >= counts.Max(), $"the counter is {final}, but a client saw {counts.Max()}");
    }

    [Fact]
    public async Task After_a_takeover_a_new_backup_from_the_configured_list_attaches_and_the_next_failover_loses_nothing()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        await using var net = await TestHosts.CreateAsync(["A", "B"]);
        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var resh = Path.Combine(AppContext.BaseDirectory, "resh.dll");
        var certificate = Path.Combine(net.Directory, "pair.pem");
        var key = Path.Combine(net.Directory, "pair.key");
        PinnedTls.WriteNewPair(certificate, key, TimeSpan.FromDays(1));

        // Both hosts are candidates: a primary ships to the first backup address that is not its own.
        var config = $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: remus
            remus:
              backup: [{{net.Address("B")}}:6391, {{net.Address("A")}}:6391]
              epoch: 25ms
              failover-timeout: 300ms
              apply-interval: 200ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            replicas:
              - command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
        async Task<string> ConfigAsync(string name)
        {
            var path = Path.Combine(net.Directory, name + ".yaml");
            await File.WriteAllTextAsync(path, config + $"state-dir: {net.Directory}/state-{name}\n");
            return path;
        }

        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        var acked = new Dictionary<string, string>();
        async Task WriteAsync(string prefix)
        {
            await using var client = await ConnectAsync(net, service, CancellationToken.None);
            for (var i = 0; i < 100; i++)
            {
                Assert.Equal("OK", (await client.CallAsync("SET", $"{prefix}:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
                acked[$"{prefix}:{i}"] = $"v{i}";
            }
        }

        async Task LoseAsync(string host)
        {
            net.KillAll(host);
            await net.IpAsync("-n", net.Namespace(host), "link", "set", "eth0", "down");
        }

        // A serves, B is its backup.
        var backupB = net.Start("B", "backup-b.log", "dotnet", resh, "backup", "--listen", $"{net.Address("B")}:6391", "--config", await ConfigAsync("b"));
        await Tools.WaitForLogAsync(backupB, "waiting for the primary", TimeSpan.FromSeconds(60), "resh backup on host B");
        var primaryA = net.Start("A", "primary-a.log", "dotnet", resh, "run", await ConfigAsync("a"));
        await Tools.WaitForLogAsync(primaryA, "resh: serving", TimeSpan.FromSeconds(60), "resh run on host A");
        await Tools.WaitForLogAsync(backupB, "ready", TimeSpan.FromSeconds(60), "host B's backup ready");
        await WriteAsync("first");

        // A is lost: B takes over and serves unprotected.
        await LoseAsync("A");
        await Tools.WaitForLogAsync(backupB, "took over", TimeSpan.FromSeconds(60), "host B taking over");
        await WriteAsync("unprotected");

        // A comes back empty (a replaced machine) as a backup at its configured address: B attaches it without being told.
        await net.IpAsync("-n", net.Namespace("A"), "addr", "del", net.Service + "/32", "dev", "eth0");
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "up");
        var backupA = net.Start("A", "backup-a.log", "dotnet", resh, "backup", "--listen", $"{net.Address("A")}:6391", "--config", await ConfigAsync("a2"));
        await Tools.WaitForLogAsync(backupB, $"Backup {net.Address("A")}:6391 attached", TimeSpan.FromSeconds(60), "host B attaching host A as its new backup");
        await Tools.WaitForLogAsync(backupA, "ready", TimeSpan.FromSeconds(60), "host A's backup ready");
        await WriteAsync("protected");

        // B is lost in turn: A takes over with everything, the writes B served unprotected included.
        await LoseAsync("B");
        await Tools.WaitForLogAsync(backupA, "took over", TimeSpan.FromSeconds(60), "host A taking over");
        await using (var moved = await ConnectAsync(net, service, CancellationToken.None))
        {
            Assert.Equal("v99", (await moved.CallAsync("GET", "protected:99").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        }

        await Tools.AssertAllReadableAsync(service, acked);
        Assert.Equal(300, acked.Count);
    }

    /// <summary>Connects to the service address, retrying while it moves (the neighbour cache is refreshed as a gratuitous ARP would).</summary>
    private static async Task<RespClient> ConnectAsync(TestHosts net, IPEndPoint service, CancellationToken ct)
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
                await net.IpAsync("neigh", "flush", "dev", net.Bridge);
                await Task.Delay(50, ct);
            }
        }
    }
}
