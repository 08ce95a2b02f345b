using System.Net;

namespace Resh.IntegrationTests;

/// <summary>
/// `resh migrate` across two hosts: network namespaces A (the running service, mode resh with three redis-server
/// replicas) and B (`resh receive`), the service on an address of its own that the hook commands move from A to B.
/// The test clients run outside both and reconnect when the address moves. A mode remus primary moves the same way,
/// with its backup on a third host C.
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

        var (migrate, moved) = await MigrateUnderLoadAsync(net, configA, sourceLog, targetLog);
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
    public async Task A_remus_primary_migrates_under_load_to_a_third_host_its_backup_stops_and_nothing_is_lost()
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
        await net.IpAsync("-n", net.Namespace("A"), "addr", "add", net.Service + "/32", "dev", "eth0");
        var backupLog = net.Start("C", "backup.log", "dotnet", Resh, "backup", "--listen", $"{net.Address("C")}:6391", "--config", configC);
        await Tools.WaitForLogAsync(backupLog, "waiting for the primary", TimeSpan.FromSeconds(60), "resh backup on host C");
        var targetLog = net.Start("B", "receive.log", "dotnet", Resh, "receive", "--listen", $"{net.Address("B")}:6395", "--config", configB);
        await Tools.WaitForLogAsync(targetLog, "for the service to migrate here", TimeSpan.FromSeconds(60), "resh receive on host B");
        var sourceLog = net.Start("A", "run.log", "dotnet", Resh, "run", configA);
        await Tools.WaitForLogAsync(sourceLog, "resh: serving", TimeSpan.FromSeconds(60), "resh run on host A");

        var (_, moved) = await MigrateUnderLoadAsync(net, configA, sourceLog, targetLog, () => Tools.WaitForLogAsync(backupLog, "backup stopped", TimeSpan.FromSeconds(60), "the backup on host C stopping without a takeover"));
        Assert.DoesNotContain("took over", await File.ReadAllTextAsync(backupLog), StringComparison.Ordinal);
        output.WriteLine($"remus: resh migrate under load, 8 clients, {moved}");
        output.WriteLine((await File.ReadAllLinesAsync(sourceLog)).LastOrDefault(l => l.Contains("last delta", StringComparison.Ordinal)) ?? "");
    }

    /// <summary>
    /// 8 writers on the service address; `resh migrate` from host A to host B once 1,000 writes were acknowledged; waits
    /// for the handover (and <paramref name="afterHandover"/>) and 2,000 more operations served by B, then checks that
    /// every acknowledged write is there. Returns the migrate command's log and what the clients saw.
    /// </summary>
    private static async Task<(string MigrateLog, string Seen)> MigrateUnderLoadAsync(TestHosts net, string configA, string sourceLog, string targetLog, Func<Task>? afterHandover = null)
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
        return (migrate, $"{load.Acked.Count} writes: longest gap between replies {load.LongestGap.TotalMilliseconds:0} ms, {load.Errors.Count} reconnects");
    }
}
