using System.Net;

namespace Resh.IntegrationTests;

/// <summary>
/// `resh migrate` across two hosts: network namespaces A (the running service, mode resh with three redis-server
/// replicas) and B (`resh receive`), the service on an address of its own that the hook commands move from A to B.
/// The test clients run outside both and reconnect when the address moves. A mode remus primary moves the same way,
/// with its backup on a third host C, which follows the service to B.
/// </summary>
public sealed class MigrationTwoHostTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string Resh => Path.Combine(AppContext.BaseDirectory, "resh.dll");

    [Fact]
    public async Task Resh_migrate_under_load_moves_the_service_and_its_address_to_the_other_host_and_loses_nothing()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        await using var net = await TestHosts.CreateAsync(["A", "B"]);
        var certificate = Path.Combine(net.Directory, "pair.pem");
        var key = Path.Combine(net.Directory, "pair.key");
        PinnedTls.WriteNewPair(certificate, key, TimeSpan.FromDays(1));
        var config = $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: resh
            faults: 1
            migration:
              delta-threshold: 200
              apply-interval: 100ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
              release-command: ip addr del {{net.Service}}/32 dev eth0
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            replicas:
              count: 3
              command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
        var configA = Path.Combine(net.Directory, "a.yaml");
        var configB = Path.Combine(net.Directory, "b.yaml");
        await File.WriteAllTextAsync(configA, config + $"state-dir: {net.Directory}/state-a\n");
        await File.WriteAllTextAsync(configB, config + $"state-dir: {net.Directory}/state-b\n");

        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var targetLog = net.Start("B", "receive.log", "dotnet", Resh, "receive", "--listen", $"{net.Address("B")}:6395", "--config", configB);
        await Tools.WaitForLogAsync(targetLog, "for the service to migrate here", TimeSpan.FromSeconds(60), "resh receive on host B");
        var sourceLog = net.Start("A", "run.log", "dotnet", Resh, "run", configA);
        await Tools.WaitForLogAsync(sourceLog, "resh: serving", TimeSpan.FromSeconds(60), "resh run on host A");

        var (migrate, moved, _) = await MigrateUnderLoadAsync(net, configA, sourceLog, targetLog);
        var rounds = (await File.ReadAllLinesAsync(migrate)).Where(l => l.TrimStart().StartsWith("round ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(rounds);
        output.WriteLine($"resh migrate under load, 8 clients, {moved}");
        foreach (var round in rounds)
        {
            output.WriteLine(round.Trim());
        }

        output.WriteLine((await File.ReadAllLinesAsync(sourceLog)).LastOrDefault(l => l.Contains("last delta", StringComparison.Ordinal)) ?? "");
        output.WriteLine((await File.ReadAllLinesAsync(targetLog)).LastOrDefault(l => l.Contains("Took the migrated service over", StringComparison.Ordinal)) ?? "");
    }

    [Fact]
    public async Task A_remus_primary_migrates_under_load_to_a_third_host_its_backup_follows_and_takes_over_when_the_new_primary_is_lost()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        await using var net = await TestHosts.CreateAsync(["A", "B", "C"]);
        var certificate = Path.Combine(net.Directory, "pair.pem");
        var key = Path.Combine(net.Directory, "pair.key");
        PinnedTls.WriteNewPair(certificate, key, TimeSpan.FromDays(1));
        var config = $$"""
            service: { protocol: resp, listen: {{net.Service}}:6380 }
            admin: 127.0.0.1:6390
            mode: remus
            remus:
              backup: {{net.Address("C")}}:6391
              epoch: 0
              failover-timeout: 1s
              apply-interval: 200ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            migration:
              delta-threshold: 200
              apply-interval: 100ms
              takeover-command: ip addr add {{net.Service}}/32 dev eth0
              release-command: ip addr del {{net.Service}}/32 dev eth0
              tls-certificate: {{certificate}}
              tls-key: {{key}}
            replicas:
              count: 1
              command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no

            """;
        string Config(string host)
        {
            var path = Path.Combine(net.Directory, $"{host}.yaml");
            File.WriteAllText(path, config + $"state-dir: {net.Directory}/state-{host}\n");
            return path;
        }

        var (configA, configB, configC) = (Config("a"), Config("b"), Config("c"));
        var backupC = $"{net.Address("C")}:6391";
        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var backupLog = net.Start("C", "backup.log", "dotnet", Resh, "backup", "--listen", backupC, "--config", configC);
        await Tools.WaitForLogAsync(backupLog, "waiting for the primary", TimeSpan.FromSeconds(60), "resh backup on host C");
        var targetLog = net.Start("B", "receive.log", "dotnet", Resh, "receive", "--listen", $"{net.Address("B")}:6395", "--config", configB);
        await Tools.WaitForLogAsync(targetLog, "for the service to migrate here", TimeSpan.FromSeconds(60), "resh receive on host B");
        var sourceLog = net.Start("A", "run.log", "dotnet", Resh, "run", configA);
        await Tools.WaitForLogAsync(sourceLog, "resh: serving", TimeSpan.FromSeconds(60), "resh run on host A");

        // The backup on C is told the service moves; it keeps its log, and B, now the primary, attaches it again in term 2
        // and is protected once C acknowledged what B logged meanwhile.
        var (_, moved, acked) = await MigrateUnderLoadAsync(net, configA, sourceLog, targetLog, async () =>
        {
            await Tools.WaitForLogAsync(backupLog, "migrates the service to another host", TimeSpan.FromSeconds(60), "the backup on host C told that the service moves");
            await Tools.WaitForLogAsync(targetLog, $"Backup {backupC} caught up", TimeSpan.FromSeconds(60), "host B attaching host C as its backup again");
        });
        var backupText = await File.ReadAllTextAsync(backupLog);
        Assert.DoesNotContain("took over", backupText, StringComparison.Ordinal);
        Assert.DoesNotContain("stopped in a controlled way", backupText, StringComparison.Ordinal);
        Assert.Contains("attached (term 2)", backupText, StringComparison.Ordinal);
        Assert.Contains("this host retires", await File.ReadAllTextAsync(sourceLog), StringComparison.Ordinal);
        output.WriteLine($"remus: resh migrate under load, 8 clients, {moved}");
        output.WriteLine((await File.ReadAllLinesAsync(sourceLog)).LastOrDefault(l => l.Contains("last delta", StringComparison.Ordinal)) ?? "");

        // Writes acknowledged by B with C protecting them; then B's host is lost: C takes over with all of it.
        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        await using (var client = await ServiceLoad.ConnectAsync(net, service, CancellationToken.None))
        {
            for (var i = 0; i < 100; i++)
            {
                Assert.Equal("OK", (await client.CallAsync("SET", $"after:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
                acked[$"after:{i}"] = $"v{i}";
            }
        }

        net.KillAll("B");
        await net.IpAsync("-n", net.Namespace("B"), "link", "set", "eth0", "down");
        await Tools.WaitForLogAsync(backupLog, "took over", TimeSpan.FromSeconds(60), "host C taking over from the lost host B");
        await using (var onC = await ServiceLoad.ConnectAsync(net, service, CancellationToken.None))
        {
            Assert.Equal("v99", (await onC.CallAsync("GET", "after:99").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        }

        await Tools.AssertAllReadableAsync(service, acked);
    }

    /// <summary>
    /// 8 writers on the service address; `resh migrate` from host A to host B once 1,000 writes were acknowledged; waits
    /// for the handover (and <paramref name="afterHandover"/>) and 2,000 more operations served by B, then checks that
    /// every acknowledged write is there. Returns the migrate command's log and what the clients saw.
    /// </summary>
    private static async Task<(string MigrateLog, string Seen, Dictionary<string, string> Acked)> MigrateUnderLoadAsync(TestHosts net, string configA, string sourceLog, string targetLog, Func<Task>? afterHandover = null)
    {
        var service = new IPEndPoint(IPAddress.Parse(net.Service), 6380);
        await using var load = ServiceLoad.Start(net, service, 8);
        await Tools.WaitUntilAsync(() => load.Acked.Count >= 1000 || load.Faulted, TimeSpan.FromSeconds(60), "1,000 acknowledged writes before the migration");

        var migrate = net.Start("A", "migrate.log", "dotnet", Resh, "migrate", "--to", $"{net.Address("B")}:6395", "--config", configA);
        load.Mark();
        await Tools.WaitForLogAsync(migrate, "pre-copy done", TimeSpan.FromSeconds(120), "resh migrate's pre-copy rounds");
        await Tools.WaitForLogAsync(targetLog, "migrated here", TimeSpan.FromSeconds(60), "host B taking the service over");
        await Tools.WaitForLogAsync(sourceLog, "handed the service to", TimeSpan.FromSeconds(60), "host A handing over and exiting");
        if (afterHandover is not null)
        {
            await afterHandover();
        }

        await Tools.WaitUntilAsync(() => load.SinceMark >= 2000 || load.Faulted, TimeSpan.FromSeconds(60), "acknowledged operations served by host B");
        await load.StopAsync();
        await load.AssertNothingLostAsync();
        return (migrate, $"{load.Acked.Count} writes: longest gap between replies {load.LongestGap.TotalMilliseconds:0} ms, {load.Errors.Count} reconnects", new Dictionary<string, string>(load.Acked));
    }
}
