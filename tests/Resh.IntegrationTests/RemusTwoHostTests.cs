using System.Net;
using Resh.Clients;

namespace Resh.IntegrationTests;

/// <summary>
/// Mode remus across two hosts: network namespaces A (primary) and B (backup) on a bridge, the service on an
/// address of its own that moves to B on takeover. The test client runs outside both.
/// </summary>
public sealed class RemusTwoHostTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task Losing_the_primary_host_under_load_moves_the_service_to_the_backup_and_loses_no_acknowledged_write()
    {
        await using var net = await TestHosts.CreateAsync(["A", "B"]);
        var (_, backupLog, _) = await StartPairAsync(net, Pair(net, "300ms"));

        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        await using var load = ServiceLoad.Start(net, service, 4);
        await Tools.WaitUntilAsync(() => load.Acked.Count >= 400, TimeSpan.FromSeconds(60), "400 acknowledged writes before the primary host is lost");
        var before = load.Acked.Count;

        // Host A is lost: every process on it dies and its link goes down.
        net.KillAll("A");
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "down");
        load.Mark();
        try
        {
            await Tools.WaitUntilAsync(() => load.SinceMark >= 200 || load.Faulted, TimeSpan.FromSeconds(90), "200 acknowledged operations served by host B");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; client errors: {string.Join(", ", load.Errors.Take(10))}; host B's log:\n{await File.ReadAllTextAsync(backupLog)}", e);
        }

        await load.StopAsync();
        Assert.True(load.Acked.Count > before);
        Assert.Contains("took over", await File.ReadAllTextAsync(backupLog), StringComparison.Ordinal);
        await load.AssertNothingLostAsync();
    }

    [Fact]
    public async Task A_planned_switchover_under_load_moves_the_service_and_its_address_to_the_backup_host_and_loses_nothing()
    {
        await using var net = await TestHosts.CreateAsync(["A", "B"]);

        // A failover timeout far longer than the test waits: only the handover can move the service in time.
        var (configA, backupLog, primaryLog) = await StartPairAsync(net, Pair(net, "60s", $"ip addr del {net.Service}/32 dev eth0"));

        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        await using var load = ServiceLoad.Start(net, service, 8);
        await Tools.WaitUntilAsync(() => load.Acked.Count >= 400, TimeSpan.FromSeconds(60), "400 acknowledged writes before the switchover");

        // The operator asks host A's gateway (its admin endpoint is on A's loopback) to hand over.
        var switchover = net.Start("A", "switchover.log", "dotnet", Resh, "switchover", "--config", configA);
        load.Mark();
        await Tools.WaitForLogAsync(switchover, "switchover requested", TimeSpan.FromSeconds(30), "resh switchover on host A");
        await Tools.WaitForLogAsync(backupLog, "took over", TimeSpan.FromSeconds(30), "host B taking over at once");

        // The old primary stands by as the new primary's backup at its own address, and is attached.
        await Tools.WaitForLogAsync(primaryLog, $"standing by as its backup on {net.Address("A")}:6391", TimeSpan.FromSeconds(30), "host A becoming the backup");
        await Tools.WaitForLogAsync(backupLog, $"Backup {net.Address("A")}:6391 attached", TimeSpan.FromSeconds(60), "host B attaching host A");
        await Tools.WaitUntilAsync(() => load.SinceMark >= 400 || load.Faulted, TimeSpan.FromSeconds(60), "400 acknowledged operations served by host B");
        var first = load.LongestGap;

        // And back: B hands the service to A, and stands by in turn.
        await Tools.WaitForLogAsync(primaryLog, "ready", TimeSpan.FromSeconds(60), "host A's backup ready");
        var back = net.Start("B", "switchover-back.log", "dotnet", Resh, "switchover", "--config", Path.Combine(net.Directory, "b.yaml"));
        await Tools.WaitForLogAsync(back, "switchover requested", TimeSpan.FromSeconds(30), "resh switchover on host B");
        await Tools.WaitForLogAsync(primaryLog, "took over", TimeSpan.FromSeconds(30), "host A taking over again");
        await Tools.WaitForLogAsync(backupLog, $"standing by as its backup on {net.Address("B")}:6391", TimeSpan.FromSeconds(30), "host B becoming the backup");
        var served = load.SinceMark;
        await Tools.WaitUntilAsync(() => load.SinceMark >= served + 400 || load.Faulted, TimeSpan.FromSeconds(60), "400 more acknowledged operations served by host A");
        await load.StopAsync();

        Assert.Contains("handed the service over", await File.ReadAllTextAsync(backupLog), StringComparison.Ordinal);
        await load.AssertNothingLostAsync();
        output.WriteLine($"switchover under load, 8 clients: longest gap between replies {first.TotalMilliseconds:0} ms after the first, {load.LongestGap.TotalMilliseconds:0} ms over both, {load.Errors.Count} reconnects");
    }

    [Theory]
    [InlineData("rebuild")]
    [InlineData("failover")]
    public async Task When_the_primary_replica_dies_under_load_it_is_rebuilt_or_the_backup_takes_over_as_configured_and_nothing_is_lost(string onReplicaFailure)
    {
        await using var net = await TestHosts.CreateAsync(["A", "B"]);

        // A failover timeout far longer than the test waits: with failover, only the handover moves the service in time.
        var (configA, backupLog, primaryLog) = await StartPairAsync(net, Pair(net, "60s", $"ip addr del {net.Service}/32 dev eth0", onReplicaFailure));
        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        await using var load = ServiceLoad.Start(net, service, 8);
        await Tools.WaitUntilAsync(() => load.Acked.Count >= 2000, TimeSpan.FromSeconds(90), "2,000 acknowledged writes before the primary's replica dies");

        // The primary's redis-server dies; its gateway and host stay.
        var crash = net.Start("A", "inject.log", "dotnet", Resh, "inject", "r1", "crash", "--config", configA);
        await Tools.WaitForLogAsync(crash, "r1: crash", TimeSpan.FromSeconds(30), "resh inject r1 crash on host A");
        load.Mark();
        if (onReplicaFailure == "failover")
        {
            await Tools.WaitForLogAsync(primaryLog, "handing the service to the backup", TimeSpan.FromSeconds(30), "host A handing over");
            await Tools.WaitForLogAsync(backupLog, "took over", TimeSpan.FromSeconds(30), "host B taking over at once");
        }
        else
        {
            await Tools.WaitForLogAsync(primaryLog, "voting again", TimeSpan.FromSeconds(60), "host A's replica rebuilt");
        }

        await Tools.WaitUntilAsync(() => load.SinceMark >= 400 || load.Faulted, TimeSpan.FromSeconds(60), "400 acknowledged operations after the replica died");
        await load.StopAsync();
        await load.AssertNothingLostAsync();
        Assert.Equal(onReplicaFailure == "failover", (await File.ReadAllTextAsync(backupLog)).Contains("handed the service over", StringComparison.Ordinal));
        output.WriteLine($"on-replica-failure: {onReplicaFailure}, 8 clients, {load.Acked.Count} writes: longest gap between replies {load.LongestGap.TotalMilliseconds:0} ms, {load.Errors.Count} reconnects");
    }

    [Fact]
    public async Task After_a_takeover_a_new_backup_from_the_configured_list_attaches_and_the_next_failover_loses_nothing()
    {
        await using var net = await TestHosts.CreateAsync(["A", "B"]);

        // Both hosts are candidates: a primary ships to the first backup address that is not its own.
        var config = Pair(net, "300ms");
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
            await using var client = await ServiceLoad.ConnectAsync(net, service, CancellationToken.None);
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
        var (_, backupB, _) = await StartPairAsync(net, config);
        await WriteAsync("first");

        // A is lost: B takes over and serves unprotected.
        await LoseAsync("A");
        await Tools.WaitForLogAsync(backupB, "took over", TimeSpan.FromSeconds(60), "host B taking over");
        await WriteAsync("unprotected");

        // A comes back empty (a replaced machine) as a backup at its configured address: B attaches it without being told.
        await net.IpAsync("-n", net.Namespace("A"), "addr", "del", net.Service + "/32", "dev", "eth0");
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "up");
        var backupA = net.Start("A", "backup-a.log", "dotnet", Resh, "backup", "--listen", $"{net.Address("A")}:6391", "--config", await ConfigAsync("a2"));
        await Tools.WaitForLogAsync(backupB, $"Backup {net.Address("A")}:6391 attached", TimeSpan.FromSeconds(60), "host B attaching host A as its new backup");
        await Tools.WaitForLogAsync(backupA, "ready", TimeSpan.FromSeconds(60), "host A's backup ready");
        await WriteAsync("protected");

        // B is lost in turn: A takes over with everything, the writes B served unprotected included.
        await LoseAsync("B");
        await Tools.WaitForLogAsync(backupA, "took over", TimeSpan.FromSeconds(60), "host A taking over");
        await using (var moved = await ServiceLoad.ConnectAsync(net, service, CancellationToken.None))
        {
            Assert.Equal("v99", (await moved.CallAsync("GET", "protected:99").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        }

        await Tools.AssertAllReadableAsync(service, acked);
        Assert.Equal(300, acked.Count);
    }

    private static string Resh => Path.Combine(AppContext.BaseDirectory, "resh.dll");

    /// <summary>
    /// The configuration both hosts share (without state-dir): both are backup candidates, the link is mutual TLS with a
    /// certificate the pair shares, and the service address moves by the takeover (and release) command.
    /// </summary>
    private static string Pair(TestHosts net, string failoverTimeout, string? releaseCommand = null, string onReplicaFailure = "rebuild")
    {
        var certificate = Path.Combine(net.Directory, "pair.pem");
        var key = Path.Combine(net.Directory, "pair.key");
        PinnedTls.WriteNewPair(certificate, key, TimeSpan.FromDays(1));
        var release = releaseCommand is null ? "" : $"\n  release-command: {releaseCommand}";
        return $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: remus
            remus:
              backup: [{{net.Address("B")}}:6391, {{net.Address("A")}}:6391]
              epoch: 25ms
              failover-timeout: {{failoverTimeout}}
              apply-interval: 200ms
              on-replica-failure: {{onReplicaFailure}}
              takeover-command: ip addr add {{net.Service}}/32 dev eth0{{release}}
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            replicas:
              - command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
    }

    /// <summary>The service address on host A, `resh backup` on B and `resh run` on A, each waited for; returns A's configuration and both logs.</summary>
    private static async Task<(string ConfigA, string BackupLog, string PrimaryLog)> StartPairAsync(TestHosts net, string config)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var configA = Path.Combine(net.Directory, "a.yaml");
        var configB = Path.Combine(net.Directory, "b.yaml");
        await File.WriteAllTextAsync(configA, config + $"state-dir: {net.Directory}/state-a\n");
        await File.WriteAllTextAsync(configB, config + $"state-dir: {net.Directory}/state-b\n");
        var backupLog = net.Start("B", "backup.log", "dotnet", Resh, "backup", "--listen", $"{net.Address("B")}:6391", "--config", configB);
        await Tools.WaitForLogAsync(backupLog, "waiting for the primary", TimeSpan.FromSeconds(60), "resh backup on host B");
        var primaryLog = net.Start("A", "primary.log", "dotnet", Resh, "run", configA);
        await Tools.WaitForLogAsync(primaryLog, "resh: serving", TimeSpan.FromSeconds(60), "resh run on host A");
        await Tools.WaitForLogAsync(backupLog, "ready", TimeSpan.FromSeconds(60), "host B's backup ready");
        return (configA, backupLog, primaryLog);
    }
}
