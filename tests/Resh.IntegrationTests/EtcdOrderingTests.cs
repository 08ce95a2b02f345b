// Over 600 lines: every test here starts gateways on one etcd through the same helpers (StartHostsAsync, OrderThroughTwoGatewaysAsync, DisposeHostsAsync); split, they would be shared across files for one feature.
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Dresh;
using Resh.Group;
using Resh.Hosting;

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
            await StartHostsAsync(etcd, state, "it", 3, hosts);

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
            await DisposeHostsAsync(hosts, state);
        }
    }

    /// <summary>Starts <paramref name="count"/> gateways of one etcd-ordered cluster into <paramref name="hosts"/> (the caller disposes them).</summary>
    private static async Task StartHostsAsync(Etcd etcd, string state, string cluster, int count, List<ReshHost> hosts, Action<EtcdOrderingOptions>? ordering = null)
    {
        for (var member = 1; member <= count; member++)
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
                Ordering = new EtcdOrderingOptions { Endpoints = [etcd.Url], Cluster = cluster, Member = member },
            };
            ordering?.Invoke(options.Ordering);
            var host = new ReshHost(options, LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning)));
            hosts.Add(host);
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
        }
    }

    /// <summary>Stops every gateway a test started and removes its state directory.</summary>
    private static async Task DisposeHostsAsync(List<ReshHost> hosts, string state)
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

    /// <summary>Starts two gateways with <paramref name="ordering"/>; a write on the first is read on the second.</summary>
    private static async Task OrderThroughTwoGatewaysAsync(Etcd etcd, string state, string cluster, List<ReshHost> hosts, Action<EtcdOrderingOptions> ordering)
    {
        await StartHostsAsync(etcd, state, cluster, 2, hosts, ordering);
        await using (var client = await RespClient.ConnectAsync(hosts[0].ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal("OK", (await client.CallAsync("SET", "k", "v").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        }

        await using var other = await RespClient.ConnectAsync(hosts[1].ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
        await Tools.WaitUntilAsync(async () => (await other.CallAsync("GET", "k").WaitAsync(TimeSpan.FromSeconds(30))).AsString() == "v", TimeSpan.FromSeconds(30), "the write ordered through etcd on the other gateway");
    }

    [Fact]
    public async Task Over_TLS_with_client_certificates_gateways_order_through_etcd_and_one_without_a_certificate_cannot_start()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var certificates = EtcdCertificates.Create(Path.Combine(state, "tls"));
        await using var etcd = await Etcd.StartAsync(tls: certificates);
        Assert.Equal("https", etcd.Url.Scheme);
        var hosts = new List<ReshHost>();
        try
        {
            await OrderThroughTwoGatewaysAsync(etcd, state, "tls", hosts, o => (o.CaCertificate, o.ClientCertificate, o.ClientKey) = (certificates.Authority, certificates.ClientCertificate, certificates.ClientKey));

            // Without a client certificate the handshake fails and the start stops, naming the settings.
            var without = await Assert.ThrowsAsync<InvalidOperationException>(() => StartHostsAsync(etcd, Path.Combine(state, "none"), "tls", 1, hosts, o => o.CaCertificate = certificates.Authority));
            Assert.Contains("TLS handshake failed", without.Message, StringComparison.Ordinal);
            Assert.Contains("ordering.client-certificate", without.Message, StringComparison.Ordinal);
        }
        finally
        {
            await DisposeHostsAsync(hosts, state);
        }
    }

    [Fact]
    public async Task On_a_three_member_etcd_cluster_with_TLS_and_authentication_gateways_fail_over_when_their_member_dies_and_lose_nothing()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var certificates = EtcdCertificates.Create(Path.Combine(state, "tls"));
        // https with client certificates required, and a password on top (etcd's gRPC API takes both at once).
        var members = await Etcd.StartClusterAsync(3, certificates);
        var hosts = new List<ReshHost>();
        try
        {
            await members[0].EnableAuthAsync("root", "s3cret-pw");
            var password = Path.Combine(state, "etcd.pw");
            await File.WriteAllTextAsync(password, "s3cret-pw\n");

            // Both gateways know the three members and use the first.
            await StartHostsAsync(members[0], state, "trio", 2, hosts, o =>
            {
                o.Endpoints = [.. members.Select(m => m.Url)];
                (o.CaCertificate, o.ClientCertificate, o.ClientKey) = (certificates.Authority, certificates.ClientCertificate, certificates.ClientKey);
                (o.User, o.PasswordFile) = ("root", password);
            });
            var acked = new Dictionary<string, string>();
            async Task WriteAsync(ReshHost host, string prefix, int count)
            {
                await using var client = await RespClient.ConnectAsync(host.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                for (var i = 0; i < count; i++)
                {
                    var reply = await client.CallAsync("SET", $"{prefix}:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(60));
                    if (reply.AsString() == "OK")
                    {
                        acked[$"{prefix}:{i}"] = $"v{i}";
                    }
                }
            }

            await WriteAsync(hosts[0], "before", 100);
            Assert.Equal(100, acked.Count);

            // The member both gateways talk to dies; the cluster keeps its quorum, and the gateways move to another member.
            await members[0].DisposeAsync();
            await WriteAsync(hosts[0], "after0", 100);
            await WriteAsync(hosts[1], "after1", 100);
            Assert.True(acked.Count >= 250, $"only {acked.Count} of 300 writes were acknowledged around the failover");
            Assert.All(hosts, h => Assert.NotEqual(members[0].Url, new Uri(h.Status().Etcd!.Endpoint)));

            // Every acknowledged write, through both gateways.
            foreach (var host in hosts)
            {
                await Tools.WaitUntilAsync(
                    async () =>
                    {
                        await using var client = await RespClient.ConnectAsync(host.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                        var key = acked.Keys.Last();
                        return (await client.CallAsync("GET", key).WaitAsync(TimeSpan.FromSeconds(30))).AsString() == acked[key];
                    },
                    TimeSpan.FromSeconds(30),
                    "the last write on every gateway");
                await Tools.AssertAllReadableAsync(host.ListenEndPoint, acked);
            }
        }
        finally
        {
            await DisposeHostsAsync(hosts, state);
            foreach (var member in members.Skip(1))
            {
                await member.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task With_etcd_authentication_gateways_order_through_it_and_a_wrong_password_stops_the_start()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var etcd = await Etcd.StartAsync();
        await etcd.EnableAuthAsync("root", "s3cret-pw");
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(state);
        var good = Path.Combine(state, "good.pw");
        var bad = Path.Combine(state, "bad.pw");
        await File.WriteAllTextAsync(good, "s3cret-pw\n");
        await File.WriteAllTextAsync(bad, "guess\n");
        var hosts = new List<ReshHost>();
        try
        {
            await OrderThroughTwoGatewaysAsync(etcd, state, "auth", hosts, o => (o.User, o.PasswordFile) = ("root", good));

            var refused = await Assert.ThrowsAnyAsync<InvalidOperationException>(() => StartHostsAsync(etcd, Path.Combine(state, "bad"), "auth", 1, hosts, o => (o.User, o.PasswordFile) = ("root", bad)));
            Assert.Contains("refused user 'root' (ordering.user, ordering.password-file)", refused.Message, StringComparison.Ordinal);
            var anonymous = await Assert.ThrowsAsync<InvalidOperationException>(() => StartHostsAsync(etcd, Path.Combine(state, "none"), "auth", 1, hosts));
            Assert.Contains("set ordering.user and ordering.password-file", anonymous.Message, StringComparison.Ordinal);
        }
        finally
        {
            await DisposeHostsAsync(hosts, state);
        }
    }

    [Fact]
    public async Task Publish_and_watch_are_decided_by_the_shared_order_on_every_gateway()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var etcd = await Etcd.StartAsync();
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var hosts = new List<ReshHost>();
        var timeout = TimeSpan.FromSeconds(30);
        try
        {
            await StartHostsAsync(etcd, state, "pubsub", 2, hosts);

            // A subscriber on each gateway; publishers on both, concurrently: both subscribers see one sequence.
            var subscribers = new List<RespClient>();
            foreach (var host in hosts)
            {
                var subscriber = await RespClient.ConnectAsync(host.ListenEndPoint).WaitAsync(timeout);
                subscribers.Add(subscriber);
                Assert.Equal("subscribe", (await subscriber.CallAsync("SUBSCRIBE", "news").WaitAsync(timeout)).Items![0].AsString());
            }

            // A subscription starts at its place in the log: publish once and wait until both have it.
            await using (var first = await RespClient.ConnectAsync(hosts[0].ListenEndPoint).WaitAsync(timeout))
            {
                await first.CallAsync("PUBLISH", "news", "start").WaitAsync(timeout);
            }

            foreach (var subscriber in subscribers)
            {
                Assert.Equal("start", (await subscriber.ReadAsync().WaitAsync(timeout)).Items![2].AsString());
            }

            const int PerPublisher = 40;
            await Task.WhenAll(hosts.Select((h, m) => Task.Run(async () =>
            {
                await using var publisher = await RespClient.ConnectAsync(h.ListenEndPoint).WaitAsync(timeout);
                for (var i = 0; i < PerPublisher; i++)
                {
                    Assert.False((await publisher.CallAsync("PUBLISH", "news", $"{m}:{i}").WaitAsync(timeout)).IsError);
                }
            }))).WaitAsync(TimeSpan.FromMinutes(2));

            var sequences = new List<List<string>>();
            foreach (var subscriber in subscribers)
            {
                var got = new List<string>();
                while (got.Count < 2 * PerPublisher)
                {
                    got.Add((await subscriber.ReadAsync().WaitAsync(timeout)).Items![2].AsString()!);
                }

                sequences.Add(got);
                await subscriber.DisposeAsync();
            }

            Assert.Equal(2 * PerPublisher, sequences[0].Distinct().Count());
            Assert.Equal(sequences[0], sequences[1]);

            // WATCH on one gateway, a write to the key through the other: the EXEC is aborted, the same on both.
            await using var watcher = await RespClient.ConnectAsync(hosts[0].ListenEndPoint).WaitAsync(timeout);
            await using var writer = await RespClient.ConnectAsync(hosts[1].ListenEndPoint).WaitAsync(timeout);
            Assert.Equal("OK", (await watcher.CallAsync("SET", "balance", "10").WaitAsync(timeout)).AsString());
            Assert.Equal("OK", (await watcher.CallAsync("WATCH", "balance").WaitAsync(timeout)).AsString());
            Assert.Equal("OK", (await writer.CallAsync("SET", "balance", "0").WaitAsync(timeout)).AsString());
            await watcher.CallAsync("MULTI").WaitAsync(timeout);
            await watcher.CallAsync("INCRBY", "balance", "5").WaitAsync(timeout);
            Assert.True((await watcher.CallAsync("EXEC").WaitAsync(timeout)).IsNull);
            await Tools.WaitUntilAsync(() => hosts.All(h => h.Log.Head == hosts[0].Log.Head && h.Status().Replicas.All(r => r.Applied == h.Log.Head)), timeout, "both gateways at the same head");
            foreach (var host in hosts)
            {
                foreach (var replica in host.Status().Replicas)
                {
                    await using var direct = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, replica.Port)).WaitAsync(timeout);
                    Assert.Equal("0", (await direct.CallAsync("GET", "balance")).AsString());
                }
            }
        }
        finally
        {
            await DisposeHostsAsync(hosts, state);
        }
    }

    [Fact]
    public async Task A_request_too_large_for_one_etcd_batch_gets_an_error_and_the_gateway_goes_on()
    {
        await using var etcd = await Etcd.StartAsync();
        await using var gateway = await OneGatewayAsync(etcd, "big");
        await using var client = await RespClient.ConnectAsync(gateway.Host.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));

        // etcd takes at most 1.5 MiB per request by default: a 2 MiB value cannot be ordered, and says so.
        var refused = await client.CallAsync("SET", "big", new string('x', 2 * 1024 * 1024)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(refused.IsError, refused.ToString());
        Assert.Contains("ordering.max-batch-bytes", refused.ToString(), StringComparison.Ordinal);

        // Large requests that fit go in batches of their own; the session and the gateway go on.
        var fits = new string('y', 600 * 1024);
        var replies = await client.PipelineAsync([["SET", "a", fits], ["SET", "b", fits], ["SET", "c", "small"]]).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(replies, r => Assert.Equal("OK", r.AsString()));
        Assert.Equal(fits, (await client.CallAsync("GET", "b").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        Assert.True((await client.CallAsync("GET", "big").WaitAsync(TimeSpan.FromSeconds(30))).IsNull);
    }

    [Fact]
    public async Task When_etcd_runs_out_of_space_requests_get_an_error_at_once_and_after_it_is_freed_nothing_is_lost()
    {
        await using var etcd = await Etcd.StartAsync(quotaBytes: 8L * 1024 * 1024);
        await using var gateway = await OneGatewayAsync(etcd, "full");
        await using var client = await RespClient.ConnectAsync(gateway.Host.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));

        // Fill etcd's 8 MiB quota: the NOSPACE alarm fires, and the write that meets it gets etcd's reason.
        var value = new string('v', 300 * 1024);
        var acked = new Dictionary<string, string>();
        string? refusedKey = null;
        for (var i = 0; i < 200 && refusedKey is null; i++)
        {
            var reply = await client.CallAsync("SET", $"k{i}", value).WaitAsync(TimeSpan.FromSeconds(30));
            if (reply.IsError)
            {
                Assert.Contains("etcd refused to order the request", reply.ToString(), StringComparison.Ordinal);
                Assert.Contains("space", reply.ToString(), StringComparison.Ordinal);
                refusedKey = $"k{i}";
            }
            else
            {
                Assert.Equal("OK", reply.AsString());
                acked[$"k{i}"] = value;
            }
        }

        Assert.NotNull(refusedKey);
        Assert.True((await client.CallAsync("SET", "while-full", "x").WaitAsync(TimeSpan.FromSeconds(30))).IsError);

        // The operator raises the quota and clears the alarm: the same session goes on, every acknowledged
        // write is there and none of the refused ones.
        await etcd.RestartAsync(quotaBytes: 1L << 30);
        await etcd.DisarmAsync();
        await Tools.WaitUntilAsync(async () => !(await client.CallAsync("SET", "after", "y").WaitAsync(TimeSpan.FromSeconds(30))).IsError, TimeSpan.FromSeconds(60), "a write accepted after the alarm is cleared");
        acked["after"] = "y";
        foreach (var (key, expected) in acked)
        {
            Assert.Equal(expected, (await client.CallAsync("GET", key).WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        }

        Assert.True((await client.CallAsync("GET", "while-full").WaitAsync(TimeSpan.FromSeconds(30))).IsNull);
        Assert.True((await client.CallAsync("GET", refusedKey).WaitAsync(TimeSpan.FromSeconds(30))).IsNull, "the refused write was not applied");
    }

    /// <summary>One gateway with three local redis-server replicas, ordered by <paramref name="etcd"/>; disposing it removes its state.</summary>
    private static async Task<OneGateway> OneGatewayAsync(Etcd etcd, string cluster)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var gateway = new OneGateway(
            new ReshHost(
                new ReshOptions
                {
                    Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
                    Group = new GroupOptions
                    {
                        Faults = 1,
                        Replicas = [.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))],
                        StateDirectory = state,
                        ReplyTimeout = TimeSpan.FromSeconds(5),
                        StartupTimeout = TimeSpan.FromSeconds(60),
                    },
                    Ordering = new EtcdOrderingOptions { Endpoints = [etcd.Url], Cluster = cluster, Member = 1, Lease = TimeSpan.FromSeconds(30) },
                },
                LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning))),
            state);
        try
        {
            await gateway.Host.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            return gateway;
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    private sealed record OneGateway(ReshHost Host, string State) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            if (Directory.Exists(State))
            {
                Directory.Delete(State, recursive: true);
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_returning_gateway_goes_on_from_a_checkpoint_and_the_log_after_it(bool compacted)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var etcd = await Etcd.StartAsync();
        var state = Path.Combine(Path.GetTempPath(), "resh-etcd-" + Guid.NewGuid().ToString("N")[..12]);
        var hosts = new ReshHost?[3];

        // Compacted: a returning host takes a peer's checkpoint, here over mutual TLS with a certificate the hosts share.
        Directory.CreateDirectory(state);
        var (peerCertificate, peerKey) = (Path.Combine(state, "peers.pem"), Path.Combine(state, "peers.key"));
        PinnedTls.WriteNewPair(peerCertificate, peerKey, TimeSpan.FromDays(1));
        ReshOptions Options(int member) => new()
        {
            Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
            Group = new GroupOptions
            {
                Faults = 1,
                Replicas = [.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand + " --enable-debug-command local"))],
                StateDirectory = Path.Combine(state, $"host{member}"),
                ReplyTimeout = TimeSpan.FromSeconds(2),
                StartupTimeout = TimeSpan.FromSeconds(60),
                Checkpoint = new CheckpointOptions { Flush = "SAVE", Files = ["dump.rdb"], Digest = "DEBUG DIGEST", EveryEntries = 1_000_000 },
            },
            // Not compacted: Resh leaves etcd alone (ordering.trim off). Compacted: Resh trims and compacts etcd itself.
            Ordering = new EtcdOrderingOptions
            {
                Endpoints = [etcd.Url],
                Cluster = "it",
                Member = member,
                Lease = TimeSpan.FromSeconds(3),
                PeerListen = new IPEndPoint(IPAddress.Loopback, 0),
                Trim = compacted,
                PeerTlsCertificate = compacted ? peerCertificate : null,
                PeerTlsKey = compacted ? peerKey : null,
            },
        };
        async Task<ReshHost> StartAsync(int member)
        {
            var host = new ReshHost(Options(member), LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning)));
            hosts[member - 1] = host;
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            return host;
        }

        var acked = new Dictionary<string, string>();
        async Task WriteAsync(ReshHost host, string prefix, int count)
        {
            await using var client = await RespClient.ConnectAsync(host.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            for (var i = 0; i < count; i++)
            {
                Assert.Equal("OK", (await client.CallAsync("SET", $"{prefix}:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                acked[$"{prefix}:{i}"] = $"v{i}";
                Assert.False((await client.CallAsync("RPUSH", "list", $"{prefix}{i}").WaitAsync(TimeSpan.FromSeconds(30))).IsError);
            }
        }

        try
        {
            for (var member = 1; member <= 3; member++)
            {
                await StartAsync(member);
            }

            await Tools.WaitUntilAsync(() => hosts[0]!.Status().Etcd!.Peers.Count == 3, TimeSpan.FromSeconds(30), "three members in etcd");
            await WriteAsync(hosts[0]!, "before", 50);
            await WriteAsync(hosts[2]!, "before3", 50);

            // Pipelining writers on hosts 1 and 2 keep several batches in flight while the checkpoints are taken.
            using var stop = new CancellationTokenSource();
            var written = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
            var writers = new[] { 0, 1 }.Select(h => Task.Run(async () =>
            {
                await using var client = await RespClient.ConnectAsync(hosts[h]!.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var replies = await client.PipelineAsync([["SET", $"w{h}:{i}", "x"], ["RPUSH", "list", $"w{h}:{i}"], ["SET", $"w{h}:{i}:b", "y"]]).WaitAsync(TimeSpan.FromSeconds(30));
                    Assert.Equal("OK", replies[2].AsString());
                    written[$"w{h}:{i}"] = "x";
                    written[$"w{h}:{i}:b"] = "y";
                }
            })).ToList();
            await Tools.WaitUntilAsync(() => written.Count > 200, TimeSpan.FromSeconds(60), "writes under way");

            // One checkpoint entry in the shared log: every host stores its own checkpoint at the same position.
            VerifiedCheckpoint checkpoint;
            try
            {
                checkpoint = await hosts[1]!.CheckpointAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidOperationException(e.Message + "; events: " + string.Join(" | ", hosts[1]!.Events.Since().Select(x => $"{x.Name} {x.Replica} {x.Detail}")), e);
            }

            await Tools.WaitUntilAsync(() => hosts.All(h => h!.Status().Checkpoint?.Sequence >= checkpoint.Sequence), TimeSpan.FromSeconds(60), "the checkpoint stored on every host");

            // Host 3 stops under the others' load (its lease is revoked; its final checkpoint is the cluster's too).
            await hosts[2]!.DisposeAsync();
            hosts[2] = null;
            await Tools.WaitUntilAsync(() => hosts[0]!.Events.Since().Any(e => e.Name == "+member-left" && e.Detail.StartsWith("member 3 ", StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "member 3 left, in host 1's events");
            Assert.DoesNotContain(hosts[0]!.Status().Etcd!.Peers, p => p.Member == 3);
            Assert.Equal(2, hosts[0]!.Status().Etcd!.Peers.Count);

            // A newer checkpoint that host 3 does not hold, and more writes it has not seen.
            await Tools.WaitUntilAsync(() => written.Count > 600, TimeSpan.FromSeconds(60), "writes while host 3 is away");
            var newer = await hosts[0]!.CheckpointAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            await Tools.WaitUntilAsync(() => written.Count > 900, TimeSpan.FromSeconds(60), "writes after the newer checkpoint");
            await stop.CancelAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60));
            await WriteAsync(hosts[0]!, "after", 20);
            await WriteAsync(hosts[1]!, "after2", 20);

            if (compacted)
            {
                // Both live hosts publish the revision their newer checkpoint goes on from; at the next checkpoint host 1
                // (it schedules them) deletes the batches before it and compacts etcd there. Host 3's own checkpoint
                // is too old now: it takes a peer's.
                await using var store = await Resh.Checkpoints.CheckpointStore.OpenAsync(Path.Combine(state, "host1", "store"), new Resh.Checkpoints.StoreOptions { ReadOnly = true });
                var labels = (await store.ListAsync()).Single(c => c.Labels[ReplicaGroup.SequenceLabel] == newer.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)).Labels;
                var revision = EtcdCursor.Parse(labels[EtcdCursor.Label]).Revision;
                await Tools.WaitUntilAsync(() => hosts.Take(2).All(h => h!.Status().Checkpoint?.Sequence >= newer.Sequence), TimeSpan.FromSeconds(60), "the newer checkpoint stored on hosts 1 and 2");
                await Tools.WaitUntilAsync(async () => await etcd.RangeAsync("/resh/it/trim/") is { Count: 2 } published && published.Values.All(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture) >= revision), TimeSpan.FromSeconds(30), "hosts 1 and 2 published the newer checkpoint's revision");
                await hosts[0]!.CheckpointAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
                await Tools.WaitUntilAsync(() => hosts[0]!.Status().Etcd!.TrimmedRevision >= revision, TimeSpan.FromSeconds(30), "host 1 trimmed etcd up to the newer checkpoint");
                Assert.True(hosts[0]!.Status().Etcd!.TrimmedBatches > 0);
                Assert.Equal(0, await etcd.CountAsync("/resh/it/log/", maxModRevision: revision - 1));
                Assert.True(await etcd.CountAsync("/resh/it/log/") > 0, "the batches after the trim are kept");
                Assert.True(await etcd.IsCompactedAsync(revision - 1), "etcd's history before the trim is compacted");
            }

            if (compacted)
            {
                // Every host recorded its checkpoints' digests. Two forged records that outnumber the real ones at every
                // position make each peer's checkpoint unbacked: host 3 refuses them all and does not start.
                var records = await etcd.RangeAsync("/resh/it/digests/");
                Assert.Contains(records.Keys, k => k.EndsWith("/1", StringComparison.Ordinal));
                Assert.Contains(records.Keys, k => k.EndsWith("/2", StringComparison.Ordinal));
                var forged = records.Keys.Select(k => k[..k.LastIndexOf('/')]).Distinct().SelectMany(p => new[] { $"{p}/8", $"{p}/9" }).ToList();
                foreach (var key in forged)
                {
                    await etcd.PutAsync(key, "rdb:forged");
                }

                var refused = await Assert.ThrowsAnyAsync<Exception>(() => StartAsync(3));
                Assert.Contains("do not back it", refused.ToString(), StringComparison.Ordinal);
                await hosts[2]!.DisposeAsync();
                hosts[2] = null;
                foreach (var key in forged)
                {
                    await etcd.DeleteAsync(key);
                }
            }

            // Host 3 returns: it starts from its own newest checkpoint (or a peer's), and only the log after it comes from etcd.
            var returned = await StartAsync(3);
            var from = returned.Log.First - 1;
            if (compacted)
            {
                Assert.True(from >= newer.Sequence, $"the returning host went on from #{from}, older than the peers' checkpoint #{newer.Sequence}");
                Assert.Contains(returned.Events.Since(), e => e.Name == "+peer-checkpoint" && e.Detail.Contains("(https://", StringComparison.Ordinal) && e.Detail.Contains("its digest is the one members 1, 2 recorded", StringComparison.Ordinal));
            }
            else
            {
                Assert.True(from >= checkpoint.Sequence && from < newer.Sequence, $"the returning host went on from #{from}, not from its own checkpoint (the shared one is #{checkpoint.Sequence}, the newer one #{newer.Sequence})");
                Assert.DoesNotContain(returned.Events.Since(), e => e.Name == "+peer-checkpoint");
            }

            foreach (var (key, value) in written)
            {
                acked[key] = value;
            }

            await WriteAsync(returned, "returned", 20);
            await Tools.WaitUntilAsync(() => hosts.All(h => h!.Log.Head == hosts[0]!.Log.Head && h.Status().Replicas.All(r => r.State == "up" && r.Applied == h.Log.Head)), TimeSpan.FromSeconds(60), "every host and replica at the same head");
            foreach (var host in hosts)
            {
                await Tools.AssertAllReadableAsync(host!.ListenEndPoint, acked);
            }

            var lists = new List<List<string?>>();
            foreach (var host in hosts)
            {
                foreach (var replica in host!.Status().Replicas)
                {
                    await using var direct = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, replica.Port)).WaitAsync(TimeSpan.FromSeconds(10));
                    lists.Add([.. (await direct.CallAsync("LRANGE", "list", "0", "-1")).Items!.Select(v => v.AsString())]);
                }
            }

            Assert.Equal(160 + (written.Count / 2), lists[0].Count);
            Assert.All(lists, l => Assert.Equal(lists[0], l));
        }
        finally
        {
            foreach (var host in hosts)
            {
                if (host is not null)
                {
                    await host.DisposeAsync();
                }
            }

            if (Directory.Exists(state))
            {
                Directory.Delete(state, recursive: true);
            }
        }
    }
}
