using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Domains;
using Resh.Hosting;
using Resh.Modes;
using Resh.Ordering;

namespace Resh.IntegrationTests;

/// <summary>D-RESH ordering through a real etcd on loopback: three gateways, each with its own replicas, share one order.</summary>
public sealed class EtcdOrderingTests
{
    [Fact]
    public async Task Clients_of_three_gateways_write_concurrently_and_every_gateway_s_replicas_end_identical()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var etcd = await Etcd.StartAsync();
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var hosts = new List<ReshHost>();
        try
        {
            for (var member = 1; member <= 3; member++)
            {
                var options = new ReshOptions
                {
                    Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
                    Group = new GroupOptions
                    {
                        Faults = 1,
                        Replicas = [.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))],
                        StateDirectory = Path.Combine(state, $"host{member}"),
                        ReplyTimeout = TimeSpan.FromSeconds(2),
                        StartupTimeout = TimeSpan.FromSeconds(60),
                    },
                    Ordering = new EtcdOrderingOptions { Endpoints = [etcd.Url], Cluster = "it", Member = member },
                };
                var host = new ReshHost(options, LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning)));
                hosts.Add(host);
                await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            }

            // Two clients per gateway: a shared counter, a shared list, and keys of their own.
            var incrs = 0;
            await Task.WhenAll(hosts.SelectMany((h, m) => Enumerable.Range(0, 2).Select(c => Task.Run(async () =>
            {
                await using var client = await RespClient.ConnectAsync(h.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                for (var i = 0; i < 100; i++)
                {
                    var replies = await client.PipelineAsync([["INCR", "counter"], ["RPUSH", "list", $"{m}:{c}:{i}"], ["SET", $"k:{m}:{c}:{i}", $"v{i}"]]).WaitAsync(TimeSpan.FromSeconds(30));
                    Assert.False(replies[0].IsError, replies[0].ToString());
                    Assert.Equal("OK", replies[2].AsString());
                    Interlocked.Increment(ref incrs);
                }
            })))).WaitAsync(TimeSpan.FromMinutes(3));

            // Every gateway applied the same log: same head, and replicas equal across hosts, list order included.
            await Tools.WaitUntilAsync(() => hosts.All(h => h.Status().Replicas.All(r => r.State == "up" && r.Applied == hosts[0].Log.Head) && h.Log.Head == hosts[0].Log.Head), TimeSpan.FromSeconds(60), "every gateway and replica at the same head");
            var lists = new List<List<string?>>();
            var counters = new List<string?>();
            foreach (var host in hosts)
            {
                foreach (var replica in host.Status().Replicas)
                {
                    await using var direct = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, replica.Port)).WaitAsync(TimeSpan.FromSeconds(10));
                    lists.Add([.. (await direct.CallAsync("LRANGE", "list", "0", "-1")).Items!.Select(v => v.AsString())]);
                    counters.Add((await direct.CallAsync("GET", "counter")).AsString());
                    Assert.Equal(602L, (await direct.CallAsync("DBSIZE")).Integer); // counter, list and 600 keys
                }
            }

            Assert.Equal(600, lists[0].Count);
            Assert.All(lists, l => Assert.Equal(lists[0], l));
            Assert.All(counters, c => Assert.Equal(incrs.ToString(System.Globalization.CultureInfo.InvariantCulture), c));
            var status = Assert.IsType<EtcdStatus>(hosts[0].Status().Etcd);
            Assert.True(status.AppliedRevision > 0);
            Assert.True(status.Batches > 0);
        }
        finally
        {
            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }

            if (Directory.Exists(state))
            {
                Directory.Delete(state, recursive: true);
            }
        }
    }

    /// <summary>A single-member etcd on loopback ports of its own, with a data directory it removes.</summary>
    private sealed class Etcd : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _dir;

        private Etcd(Process process, string dir, Uri url)
        {
            _process = process;
            _dir = dir;
            Url = url;
        }

        public Uri Url { get; }

        public static async Task<Etcd> StartAsync()
        {
            var etcd = Tools.Require("etcd", "apt-get install etcd-server");
            var dir = Path.Combine(Path.GetTempPath(), "resh-etcd-data-" + Guid.NewGuid().ToString("N")[..8]);
            var client = $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}";
            var peer = $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}";
            var process = Process.Start(new ProcessStartInfo(etcd, ["--name", "it", "--data-dir", dir, "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", $"it={peer}", "--log-level", "error"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var running = new Etcd(process, dir, new Uri(client));
            using var http = new HttpClient();
            var clock = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri(running.Url, "/health"));
                    if (response.IsSuccessStatusCode)
                    {
                        return running;
                    }
                }
                catch (HttpRequestException) when (clock.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
                {
                }

                if (clock.Elapsed > TimeSpan.FromSeconds(30) || process.HasExited)
                {
                    await running.DisposeAsync();
                    throw new InvalidOperationException($"etcd did not become healthy on {client}");
                }

                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (InvalidOperationException)
            {
            }

            _process.Dispose();
            if (Directory.Exists(_dir))
            {
                Directory.Delete(_dir, recursive: true);
            }
        }
    }
}
