using System.Net;
using Xunit.Abstractions;

namespace Resh.IntegrationTests;

/// <summary>
/// D-RESH host migration on four network-namespace hosts: A, B and C run the cluster (an etcd member each); D joins as a
/// new host (catching up from a peer's checkpoint, since etcd compacted the history), then C leaves its part to D under
/// a write load: by `resh migrate --to D` on C, or, as one command, because D was started with `--replaces 3`. C's
/// clients reconnect to D; nothing acknowledged is lost.
/// </summary>
public sealed class DreshMigrationTests(ITestOutputHelper output)
{
    private static readonly string[] EtcdHosts = ["A", "B", "C"];

    private static string Resh => Path.Combine(AppContext.BaseDirectory, "resh.dll");

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_host_joins_and_an_old_one_leaves_under_load_with_only_reconnects(bool oneCommand)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        var etcd = Tools.Require("etcd", "apt-get install etcd-server");
        await using var net = await TestHosts.CreateAsync([.. EtcdHosts, "D"]);
        var endpoints = string.Join(", ", net.StartEtcd(etcd, EtcdHosts));

        string Config(string h, int member)
        {
            var ip = net.Address(h);
            var path = Path.Combine(net.Directory, $"{h}.yaml");
            File.WriteAllText(path, $$"""
                service: { protocol: resp, listen: {{ip}}:6380 }
                admin: 127.0.0.1:6390
                admin-token: it-token
                mode: resh
                faults: 1
                reply-timeout: 2s
                state-dir: {{net.Directory}}/state-{{h}}
                ordering: { etcd: [{{endpoints}}], cluster: it, member: {{member}}, lease: 15s, peer-listen: "{{ip}}:6391" }
                checkpoint: { flush: SAVE, files: [dump.rdb], digest: DEBUG DIGEST, interval: 500, min-interval: 1s }
                replicas:
                  count: 3
                  command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no --enable-debug-command local

                """);
            return path;
        }

        var logs = new Dictionary<string, string>();
        for (var i = 0; i < EtcdHosts.Length; i++)
        {
            logs[EtcdHosts[i]] = net.Start(EtcdHosts[i], $"resh-{EtcdHosts[i]}.log", "dotnet", Resh, "run", Config(EtcdHosts[i], i + 1));
        }

        foreach (var h in EtcdHosts)
        {
            await Tools.WaitForLogAsync(logs[h], "resh: serving", TimeSpan.FromSeconds(90), $"resh run on host {h}");
        }

        IPEndPoint Service(string h) => new(IPAddress.Parse(net.Address(h)), 6380);

        // Load on C (it moves to D when C leaves) and on A, before D exists: checkpoints, and etcd compacted behind them.
        await using var onC = ServiceLoad.Start(net, Service("C"), 4, fallback: Service("D"));
        await using var onA = ServiceLoad.Start(net, Service("A"), 2);
        await Tools.WaitUntilAsync(() => onC.Acked.Count + onA.Acked.Count >= 1500 || onC.Faulted || onA.Faulted, TimeSpan.FromSeconds(120), "1,500 acknowledged writes before the new host");
        await Tools.WaitUntilAsync(() => EtcdHosts.Any(h => File.ReadAllText(logs[h]).Contains("trimmed the log in etcd", StringComparison.Ordinal)), TimeSpan.FromSeconds(120), "etcd trimmed behind a checkpoint of every host");

        // D joins: it has no state, and etcd no longer holds the start of the log, so it starts from a peer's checkpoint.
        // With --replaces 3, C (member 3) leaves its part to D once D serves; otherwise resh migrate on C makes it leave.
        logs["D"] = oneCommand
            ? net.Start("D", "resh-D.log", "dotnet", Resh, "run", Config("D", 4), "--replaces", "3")
            : net.Start("D", "resh-D.log", "dotnet", Resh, "run", Config("D", 4));
        await Tools.WaitForLogAsync(logs["D"], "resh: serving", TimeSpan.FromSeconds(120), "resh run on the new host D");
        if (!oneCommand)
        {
            var migrate = net.Start("C", "migrate.log", "dotnet", Resh, "migrate", "--to", $"{net.Address("D")}:6380", "--config", Path.Combine(net.Directory, "C.yaml"));
            await Tools.WaitForLogAsync(migrate, "leaves the cluster to", TimeSpan.FromSeconds(60), "resh migrate on host C");
        }

        await Tools.WaitForLogAsync(logs["C"], "resh: stopped", TimeSpan.FromSeconds(60), "host C leaving");
        if (oneCommand)
        {
            await Tools.WaitForLogAsync(logs["C"], "asked this host to leave its part to it", TimeSpan.FromSeconds(10), "C's log of the request");
            await Tools.WaitForLogAsync(logs["D"], "Replacing member 3: it left", TimeSpan.FromSeconds(60), "D seeing member 3 leave");
        }

        onC.Mark();
        await Tools.WaitUntilAsync(() => onC.SinceMark >= 500 || onC.Faulted, TimeSpan.FromSeconds(120), "C's clients served by D");
        await onC.StopAsync();
        await onA.StopAsync();

        Assert.False(onC.Faulted || onA.Faulted, "a client failed");
        Assert.All(onC.Errors, e => Assert.Matches("IOException|EndOfStreamException|SocketException", e));
        await onC.AssertNothingLostAsync();
        await Tools.AssertAllReadableAsync(Service("D"), onA.Acked);
        await Tools.AssertAllReadableAsync(Service("A"), onC.Acked);
        var d = await File.ReadAllTextAsync(logs["D"]);
        Assert.Contains("took the checkpoint", d, StringComparison.Ordinal);
        output.WriteLine((await File.ReadAllLinesAsync(logs["D"])).FirstOrDefault(l => l.Contains("took the checkpoint", StringComparison.Ordinal)) ?? "");
        output.WriteLine($"C left to D under load ({(oneCommand ? "resh run --replaces 3 on D" : "resh migrate on C")}): {onC.Acked.Count} writes by C's clients, {onC.Errors.Count} reconnects, longest gap between replies {onC.LongestGap.TotalMilliseconds:0} ms");
    }
}
