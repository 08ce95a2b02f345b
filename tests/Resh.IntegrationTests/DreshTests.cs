using System.Collections.Concurrent;
using System.Net;
using Resh.Clients;

namespace Resh.IntegrationTests;

/// <summary>
/// D-RESH on three hosts (network namespaces A, B, C on a bridge): each runs an etcd member of one 3-member
/// cluster and a gateway with three local redis-server replicas and checkpoints. The test clients run outside all three.
/// </summary>
public sealed class DreshTests
{
    private static readonly string[] Hosts = ["A", "B", "C"];

    [Fact]
    public async Task Three_hosts_share_one_order_a_cut_off_host_stops_and_catches_up_a_lost_host_loses_no_write_and_returns_from_its_checkpoint()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        var etcd = Tools.Require("etcd", "apt-get install etcd-server");
        await using var net = await TestHosts.CreateAsync(Hosts);
        var resh = Path.Combine(AppContext.BaseDirectory, "resh.dll");
        var cluster = string.Join(',', Hosts.Select(h => $"{h}=http://{net.Address(h)}:2380"));
        var logs = new Dictionary<string, string>();
        void StartEtcd(string h, string ip) => net.Start(h, $"etcd-{h}.log", etcd, "--name", h, "--data-dir", Path.Combine(net.Directory, $"etcd-{h}"),
            "--listen-client-urls", $"http://{ip}:2379", "--advertise-client-urls", $"http://{ip}:2379",
            "--listen-peer-urls", $"http://{ip}:2380", "--initial-advertise-peer-urls", $"http://{ip}:2380",
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error");
        for (var i = 0; i < Hosts.Length; i++)
        {
            var h = Hosts[i];
            var ip = net.Address(h);
            StartEtcd(h, ip);
            var endpoints = string.Join(", ", Hosts.Skip(i).Concat(Hosts.Take(i)).Select(x => $"http://{net.Address(x)}:2379"));
            var config = Path.Combine(net.Directory, $"{h}.yaml");
            await File.WriteAllTextAsync(config, $$"""
                service: { protocol: resp, listen: {{ip}}:6380 }
                admin: 127.0.0.1:6390
                mode: resh
                faults: 1
                reply-timeout: 2s
                state-dir: {{net.Directory}}/state-{{h}}
                ordering: { etcd: [{{endpoints}}], cluster: it, member: {{i + 1}}, lease: 15s }
                checkpoint: { flush: SAVE, files: [dump.rdb], digest: DEBUG DIGEST, interval: 300 }
                replicas:
                  count: 3
                  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no --enable-debug-command local

                """);
            logs[h] = net.Start(h, $"resh-{h}.log", "dotnet", resh, "run", config);
        }

        foreach (var h in Hosts)
        {
            await Tools.WaitForLogAsync(logs[h], "resh: serving", TimeSpan.FromSeconds(90), $"resh run on host {h}");
        }

        IPEndPoint Service(string h) => new(IPAddress.Parse(net.Address(h)), 6380);

        // 1. Clients on all three hosts write concurrently; every host then holds the same list, in the same order.
        var acked = new ConcurrentDictionary<string, string>();
        await Task.WhenAll(Hosts.Select(h => Task.Run(async () =>
        {
            await using var client = await RespClient.ConnectAsync(Service(h)).WaitAsync(TimeSpan.FromSeconds(10));
            for (var i = 0; i < 100; i++)
            {
                var replies = await client.PipelineAsync([["RPUSH", "list", $"{h}{i}"], ["SET", $"k:{h}:{i}", $"v{i}"]]).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal("OK", replies[1].AsString());
                acked[$"k:{h}:{i}"] = $"v{i}";
            }
        }))).WaitAsync(TimeSpan.FromMinutes(2));
        var lists = new List<List<string?>>();
        foreach (var h in Hosts)
        {
            await using var client = await RespClient.ConnectAsync(Service(h)).WaitAsync(TimeSpan.FromSeconds(10));
            lists.Add([.. (await client.CallAsync("LRANGE", "list", "0", "-1").WaitAsync(TimeSpan.FromSeconds(30))).Items!.Select(v => v.AsString())]);
        }

        Assert.Equal(300, lists[0].Count);
        Assert.All(lists, l => Assert.Equal(lists[0], l));

        // 2. Host C is cut off: it answers nothing (no quorum for its etcd member) rather than diverge; A and B serve.
        await using (var onC = await RespClient.ConnectAsync(Service("C")).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            await net.IpAsync("-n", net.Namespace("C"), "link", "set", "eth0", "down");
            var cut = onC.CallAsync("RPUSH", "list", "while-cut-off");
            await using (var onA = await RespClient.ConnectAsync(Service("A")).WaitAsync(TimeSpan.FromSeconds(10)))
            {
                for (var i = 0; i < 20; i++)
                {
                    Assert.Equal("OK", (await onA.CallAsync("SET", $"during-cut:{i}", "x").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                    acked[$"during-cut:{i}"] = "x";
                }
            }

            Assert.False(cut.IsCompleted, "the cut-off host answered a write");

            // The link returns: C orders its write, catches up, and serves again.
            await net.IpAsync("-n", net.Namespace("C"), "link", "set", "eth0", "up");
            Assert.False((await cut.WaitAsync(TimeSpan.FromSeconds(60))).IsError);
            Assert.Equal("x", (await onC.CallAsync("GET", "during-cut:19").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        }

        Task<string> AdminAsync(string h, string path) => net.GetAsync(h, $"http://127.0.0.1:6390{path}");

        // 3. Host A is lost under load (its etcd member and its gateway): its clients go to B; nothing acknowledged is lost.
        var errors = new ConcurrentBag<string>();
        var killed = 0;
        var served = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(c => Task.Run(async () =>
        {
            var target = "A";
            RespClient? client = null;
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    client ??= await RespClient.ConnectAsync(Service(target)).WaitAsync(TimeSpan.FromSeconds(5));
                    var key = $"load:{c}:{i}";
                    if ((await client.CallAsync("SET", key, "y").WaitAsync(TimeSpan.FromSeconds(10))).AsString() == "OK")
                    {
                        acked[key] = "y";
                        if (Volatile.Read(ref killed) == 1 && target != "A")
                        {
                            Interlocked.Increment(ref served);
                        }
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or EndOfStreamException or InvalidDataException)
                {
                    // Not acknowledged: unknown whether it was applied. The client moves to another host.
                    errors.Add($"{c}:{i} on {target}: {e.GetType().Name}");
                    if (client is not null)
                    {
                        await client.DisposeAsync();
                        client = null;
                    }

                    target = target == "A" ? "B" : target;
                }
            }

            if (client is not null)
            {
                await client.DisposeAsync();
            }
        })).ToList();
        await Tools.WaitUntilAsync(() => acked.Keys.Count(k => k.StartsWith("load:", StringComparison.Ordinal)) >= 150, TimeSpan.FromSeconds(60), "writes on host A before it is lost");
        string runOfA;
        using (var statusOfA = System.Text.Json.JsonDocument.Parse(await AdminAsync("A", "/status")))
        {
            runOfA = statusOfA.RootElement.GetProperty("etcd").GetProperty("run").GetString()!;
        }

        net.KillAll("A");
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "down");
        Volatile.Write(ref killed, 1);
        await Tools.WaitUntilAsync(() => Volatile.Read(ref served) >= 150 || writers.Any(w => w.IsFaulted), TimeSpan.FromSeconds(90), "150 writes served by host B after A was lost");
        await stop.CancelAsync();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));

        // Both survivors hold every acknowledged write.
        foreach (var h in new[] { "B", "C" })
        {
            await Tools.AssertAllReadableAsync(Service(h), acked);
        }

        // 4. A's lease expires: B and C close A's open sessions in their logs, at the same position.
        foreach (var h in new[] { "B", "C" })
        {
            // The run A served the writers with (not any other run of member 1 whose lease ended).
            var leftOfA = $"member 1 (run {runOfA}): its lease ended; ";
            await Tools.WaitUntilAsync(async () => (await AdminAsync(h, "/events")).Contains(leftOfA, StringComparison.Ordinal), TimeSpan.FromSeconds(60), $"host {h} sees the lease of host A's run {runOfA} end");
            var left = System.Text.RegularExpressions.Regex.Match(await AdminAsync(h, "/events"), System.Text.RegularExpressions.Regex.Escape(leftOfA) + "(\\d+) open sessions closed");
            Assert.True(left.Success && int.Parse(left.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1, $"host {h}: A's writer sessions were closed in the log");
            using var status = System.Text.Json.JsonDocument.Parse(await AdminAsync(h, "/status"));
            var peers = status.RootElement.GetProperty("etcd").GetProperty("peers").EnumerateArray().Select(p => p.GetProperty("member").GetInt32()).ToList();
            Assert.DoesNotContain(1, peers);
            Assert.Contains(h == "B" ? 2 : 3, peers);
        }

        // 5. A returns (its etcd member and its gateway): it goes on from its newest checkpoint and the log after it.
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "up");
        StartEtcd("A", net.Address("A"));
        var again = net.Start("A", "resh-A-again.log", "dotnet", resh, "run", Path.Combine(net.Directory, "A.yaml"));
        await Tools.WaitForLogAsync(again, "resh: serving", TimeSpan.FromSeconds(120), "resh run on host A again");
        Assert.Matches("Going on from the checkpoint at #[1-9][0-9]*: the log after it comes from etcd revision [1-9]", File.ReadAllText(again));
        await Tools.AssertAllReadableAsync(Service("A"), acked);
        var final = new List<List<string?>>();
        foreach (var h in Hosts)
        {
            await using var client = await RespClient.ConnectAsync(Service(h)).WaitAsync(TimeSpan.FromSeconds(10));
            await Tools.WaitUntilAsync(() => client.CallAsync("LLEN", "list").Result.Integer == 301, TimeSpan.FromSeconds(30), $"host {h} at the same list");
            final.Add([.. (await client.CallAsync("LRANGE", "list", "0", "-1").WaitAsync(TimeSpan.FromSeconds(30))).Items!.Select(v => v.AsString())]);
        }

        Assert.All(final, l => Assert.Equal(final[0], l));

        // 6. C is cut off for longer than its lease: A and B close its sessions. When its link returns, its write
        // from the cut fails unapplied (the txn finds its member key gone), it drops that client, joins as a new
        // run and serves again.
        await using (var onC = await RespClient.ConnectAsync(Service("C")).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal("OK", (await onC.CallAsync("SET", "before-long-cut", "z").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            acked["before-long-cut"] = "z";
            await net.IpAsync("-n", net.Namespace("C"), "link", "set", "eth0", "down");
            var cut = onC.CallAsync("SET", "during-long-cut", "z");
            await Tools.WaitUntilAsync(() => System.Text.RegularExpressions.Regex.IsMatch(AdminAsync("B", "/events").Result, "member 3 \\(run [^)]*\\): its lease ended; [1-9]"), TimeSpan.FromSeconds(90), "host B sees host C's lease end");
            await net.IpAsync("-n", net.Namespace("C"), "link", "set", "eth0", "up");
            string? outcome;
            try
            {
                var reply = await cut.WaitAsync(TimeSpan.FromSeconds(60));
                outcome = reply.IsError ? "error" : reply.AsString();
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or System.Net.Sockets.SocketException)
            {
                outcome = "closed";
            }

            Assert.True(outcome is "error" or "closed", $"the write of a session the cluster closed was answered: {outcome}");
        }

        await using (var again3 = await RespClient.ConnectAsync(Service("C")).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal("OK", (await again3.CallAsync("SET", "after-rejoin", "w").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
            acked["after-rejoin"] = "w";
        }

        using (var status = System.Text.Json.JsonDocument.Parse(await AdminAsync("C", "/status")))
        {
            Assert.True(status.RootElement.GetProperty("etcd").GetProperty("leasesLost").GetInt64() >= 1, "host C counts its lost lease");
        }

        foreach (var h in Hosts)
        {
            await Tools.AssertAllReadableAsync(Service(h), acked);
            await using var client = await RespClient.ConnectAsync(Service(h)).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Null((await client.CallAsync("GET", "during-long-cut").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        }
    }
}
