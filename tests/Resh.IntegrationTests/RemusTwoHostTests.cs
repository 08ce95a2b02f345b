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
        await using var net = await TwoHosts.CreateAsync();
        var resh = Path.Combine(AppContext.BaseDirectory, "resh.dll");
        var config = $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: remus
            remus:
              backup: [{{net.B}}:6391, {{net.A}}:6391]
              epoch: 25ms
              failover-timeout: 300ms
              apply-interval: 200ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
            replicas:
              - command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
        var configA = Path.Combine(net.Directory, "a.yaml");
        var configB = Path.Combine(net.Directory, "b.yaml");
        await File.WriteAllTextAsync(configA, config + $"state-dir: {net.Directory}/state-a\n");
        await File.WriteAllTextAsync(configB, config + $"state-dir: {net.Directory}/state-b\n");

        var backupLog = net.Start("B", "backup.log", "dotnet", resh, "backup", "--listen", $"{net.B}:6391", "--config", configB);
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

    /// <summary>Connects to the service address, retrying while it moves (the neighbour cache is refreshed as a gratuitous ARP would).</summary>
    private static async Task<RespClient> ConnectAsync(TwoHosts net, IPEndPoint service, CancellationToken ct)
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

    /// <summary>Two network namespaces on a bridge of the test's own; everything is removed on dispose, processes first.</summary>
    private sealed class TwoHosts : IAsyncDisposable
    {
        private readonly string _suffix = Guid.NewGuid().ToString("N")[..6];
        private readonly int _subnet = Random.Shared.Next(1, 250);

        private TwoHosts()
        {
            Directory = Path.Combine(Path.GetTempPath(), "resh-2h-" + _suffix);
            System.IO.Directory.CreateDirectory(Directory);
        }

        public string Directory { get; }

        public string Bridge => "rbr" + _suffix;

        public string A => $"10.213.{_subnet}.1";

        public string B => $"10.213.{_subnet}.2";

        public string Service => $"10.213.{_subnet}.100";

        public string Namespace(string host) => $"resh{host}{_suffix}";

        public static async Task<TwoHosts> CreateAsync()
        {
            var net = new TwoHosts();
            try
            {
                await net.IpAsync("link", "add", net.Bridge, "type", "bridge");
                await net.IpAsync("addr", "add", $"10.213.{net._subnet}.254/24", "dev", net.Bridge);
                await net.IpAsync("link", "set", net.Bridge, "up");
                foreach (var (host, address) in new[] { ("A", net.A), ("B", net.B) })
                {
                    var ns = net.Namespace(host);
                    var veth = $"v{host.ToLowerInvariant()}{net._suffix}";
                    await net.IpAsync("netns", "add", ns);
                    await net.IpAsync("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
                    await net.IpAsync("link", "set", veth, "master", net.Bridge, "up");
                    await net.IpAsync("-n", ns, "addr", "add", address + "/24", "dev", "eth0");
                    await net.IpAsync("-n", ns, "link", "set", "eth0", "up");
                    await net.IpAsync("-n", ns, "link", "set", "lo", "up");
                }

                // The service address starts on host A.
                await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
                return net;
            }
            catch
            {
                await net.DisposeAsync();
                throw;
            }
        }

        /// <summary>
        /// Runs a program inside a host's network namespace in a session of its own; returns its log file. nsenter
        /// rather than `ip netns exec`, which mounts a sysfs of its own and so hides the cgroup hierarchies.
        /// </summary>
        public string Start(string host, string log, params string[] command)
        {
            var path = Path.Combine(Directory, log);
            File.WriteAllText(path, "");
            var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            foreach (var arg in (string[])["-c", "exec nsenter --net=\"/run/netns/$0\" setsid \"$@\" >>\"$RESH_TEST_LOG\" 2>&1 </dev/null", Namespace(host), .. command])
            {
                start.ArgumentList.Add(arg);
            }

            start.Environment["RESH_TEST_LOG"] = path;
            Process.Start(start)!.Dispose();
            return path;
        }

        /// <summary>SIGKILL to every process in a host's namespace.</summary>
        public void KillAll(string host)
        {
            using var pids = Process.Start(new ProcessStartInfo("ip", ["netns", "pids", Namespace(host)]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = pids.StandardOutput.ReadToEnd();
            pids.WaitForExit();
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (int.TryParse(line.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                {
                    try
                    {
                        Process.GetProcessById(pid).Kill();
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                    {
                    }
                }
            }
        }

        public async Task IpAsync(params string[] args)
        {
            using var process = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"ip {string.Join(' ', args)}: {error.Trim()} (this test needs root and network namespaces)");
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var host in new[] { "A", "B" })
            {
                KillAll(host);
            }

            foreach (var args in new[] { new[] { "netns", "del", Namespace("A") }, ["netns", "del", Namespace("B")], ["link", "del", Bridge] })
            {
                try
                {
                    await IpAsync(args);
                }
                catch (InvalidOperationException)
                {
                }
            }

            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
