using System.Diagnostics;
using Resh.Dresh;
using Resh.Memory;
using Resh.Tests.Memory;

namespace Resh.IntegrationTests;

/// <summary>The memory's ordered log in a real etcd: the same contract as the in-process log.</summary>
public sealed class EtcdCommitLogTests : CommitLogContract, IAsyncLifetime
{
    private Etcd? _etcd;

    public async Task InitializeAsync() => _etcd = await Etcd.StartAsync();

    public async Task DisposeAsync()
    {
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    protected override Task<ICommitLog> CreateAsync() =>
        Task.FromResult<ICommitLog>(new EtcdCommitLog(new EtcdOrderingOptions { Endpoints = [_etcd!.Url], Cluster = "c" + Guid.NewGuid().ToString("N")[..8] }));

    [Fact]
    public void A_cluster_name_with_a_slash_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new EtcdCommitLog(new EtcdOrderingOptions { Endpoints = [new Uri("http://127.0.0.1:1")], Cluster = "a/b" }));
        Assert.Contains("cluster name", e.Message, StringComparison.Ordinal);
    }
}

/// <summary>The bank demo and the memory's nodes as real processes, on loopback and on three network-namespace hosts.</summary>
public sealed class MemoryClusterTests
{
    private static string Bank => Path.Combine(AppContext.BaseDirectory, "tdm-bank.dll");

    /// <param name="launcher">Started as `dotnet tdm-bank.dll`, or through its own launcher as `dotnet run` starts it (the nodes are started the same way).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_bank_demo_keeps_the_total_and_each_ledger_line_once_across_a_killed_node(bool launcher)
    {
        Tools.Require("etcd", "apt-get install etcd-server");
        var dir = Path.Combine(Path.GetTempPath(), "resh-tdm-demo-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string[] args = ["demo", "--seconds", "12", "--dir", dir];
            var start = launcher
                ? new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "tdm-bank"), args) { RedirectStandardOutput = true, RedirectStandardError = true }
                : new ProcessStartInfo("dotnet", [Bank, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var demo = Process.Start(start)!;
            var output = demo.StandardOutput.ReadToEndAsync();
            var errors = demo.StandardError.ReadToEndAsync();
            try
            {
                await demo.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(4));
            }
            finally
            {
                if (!demo.HasExited)
                {
                    demo.Kill(entireProcessTree: true);
                }
            }

            var text = await output + await errors;
            Assert.True(demo.ExitCode == 0, text);
            Assert.Contains("killed node 2 (SIGKILL)", text, StringComparison.Ordinal);
            Assert.Contains("total balance: 50000 (expected 50000) over 50 accounts: invariant holds", text, StringComparison.Ordinal);
            Assert.Equal(3, text.Split('\n').Count(l => l.Contains("ledger lines: each once", StringComparison.Ordinal)));
            Assert.Contains("result: PASS", text, StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static readonly string[] Hosts = ["A", "B", "C"];

    [Fact]
    public async Task Three_hosts_with_an_etcd_member_each_keep_the_total_when_a_node_is_killed_and_when_a_host_is_cut_off()
    {
        Tools.Require("ip", "apt-get install iproute2");
        Tools.Require("nsenter", "apt-get install util-linux");
        var etcd = Tools.Require("etcd", "apt-get install etcd-server");
        await using var net = await TestHosts.CreateAsync(Hosts);
        var cluster = "bank" + Guid.NewGuid().ToString("N")[..6];
        var store = Path.Combine(net.Directory, "store");
        net.StartEtcd(etcd, Hosts);

        string Endpoints(string first) => string.Join(',', Hosts.OrderBy(h => h != first).Select(h => $"http://{net.Address(h)}:2379"));
        string StartNode(string h, int id, double seconds, string log) => net.Start(h, log, "dotnet", Bank, "node", "--etcd", Endpoints(h), "--cluster", cluster,
            "--node", $"{id}", "--store", store, "--dir", net.Directory, "--seconds", $"{seconds}", "--accounts", "20");

        // The pageserver runs here, outside the namespaces, on the bridge.
        var options = new EtcdOrderingOptions { Endpoints = [.. Hosts.Select(h => new Uri($"http://{net.Address(h)}:2379"))], Cluster = cluster };
        await using var log = new EtcdCommitLog(options);
        await WaitForEtcdAsync(log);
        await using var pageserver = await PageServer.StartAsync(log, new PageServerOptions { Cluster = cluster, StorePath = store, Interval = TimeSpan.Zero, LogRetention = TimeSpan.FromSeconds(2) }).WaitAsync(TimeSpan.FromSeconds(30));

        var logs = Hosts.Select((h, i) => StartNode(h, i + 1, 25, $"node-{h}.log")).ToList();
        foreach (var nodeLog in logs)
        {
            await Tools.WaitForLogAsync(nodeLog, "transfers in", TimeSpan.FromSeconds(60), "a node transferring money");
        }

        // Snapshots go on while the nodes work; node 3 is killed (SIGKILL) and started again, from a snapshot and the log.
        await pageserver.SnapshotAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await KillAsync($"--cluster {cluster} --node 3 ");
        await pageserver.SnapshotAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var again = StartNode("C", 3, 12, "node-C-again.log");
        await Tools.WaitForLogAsync(again, "transfers in", TimeSpan.FromSeconds(60), "node 3 after its restart");

        // Host A is cut off for a while: its etcd member loses the quorum, node 1 waits; the others go on.
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "down");
        await pageserver.SnapshotAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await net.IpAsync("-n", net.Namespace("A"), "link", "set", "eth0", "up");

        foreach (var (nodeLog, what) in new[] { (logs[0], "node 1"), (logs[1], "node 2"), (again, "node 3") })
        {
            await Tools.WaitForLogAsync(nodeLog, "done,", TimeSpan.FromSeconds(120), $"{what} to finish");
        }

        await using var checker = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 99, Cluster = cluster, StorePath = store }).WaitAsync(TimeSpan.FromSeconds(60));
        await checker.SyncAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var balances = await checker.RunAsync(tx => tx.Read(tx.GetRoot("accounts")).Refs.Select(r => BitConverter.ToInt64(tx.Read(r).Data.Span)).ToArray()).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(20, balances.Length);
        Assert.Equal(20_000, balances.Sum());
        for (var id = 1; id <= 3; id++)
        {
            var name = $"transfers-{id}";
            var counted = await checker.RunAsync(tx => BitConverter.ToInt64(tx.Read(tx.GetRoot(name)).Data.Span)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(counted > 0, $"node {id} committed no transfer");
            Assert.Equal(counted, FileAppendDevice.ReadAll(Path.Combine(net.Directory, $"ledger-{id}.log")).Count);
        }

        Assert.True(checker.SnapshotsLoaded >= 1, "the log was truncated after the snapshots: the checker starts from one");
    }

    private static async Task WaitForEtcdAsync(ICommitLog log)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await log.HeadAsync(attempt.Token);
                return;
            }
            catch (Exception) when (clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200);
            }
        }
    }

    private static async Task KillAsync(string pattern)
    {
        using var kill = Process.Start(new ProcessStartInfo("pkill", ["-KILL", "-f", "--", pattern]) { RedirectStandardError = true })!;
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(kill.ExitCode == 0, $"no process matched '{pattern}'");
    }
}

/// <summary>`resh memory`: the pageserver as a process of its own, its snapshots listed, the cluster fallen back.</summary>
public sealed class MemoryCliTests
{
    [Fact]
    public async Task The_pageserver_command_snapshots_a_running_cluster_lists_it_falls_it_back_and_stops_with_a_final_snapshot()
    {
        await using var etcd = await Etcd.StartAsync();
        var dir = Path.Combine(Path.GetTempPath(), "resh-memory-cli-" + Guid.NewGuid().ToString("N")[..8]);
        var store = Path.Combine(dir, "store");
        var cluster = "cli" + Guid.NewGuid().ToString("N")[..6];
        var url = etcd.Url.GetLeftPart(UriPartial.Authority);
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "resh.dll"), "memory", "pageserver", "--etcd", url, "--cluster", cluster, "--store", store, "--interval", "1s"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var pageserver = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        pageserver.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        pageserver.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        pageserver.BeginOutputReadLine();
        pageserver.BeginErrorReadLine();
        string Output()
        {
            lock (output)
            {
                return output.ToString();
            }
        }

        try
        {
            await Tools.WaitUntilAsync(() => Output().Contains("resh: pageserver of memory cluster", StringComparison.Ordinal) || pageserver.HasExited, TimeSpan.FromSeconds(60), "the pageserver to start");
            await using var log = new EtcdCommitLog(new EtcdOrderingOptions { Endpoints = [etcd.Url], Cluster = cluster });
            await using var node = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, Cluster = cluster, StorePath = store }).WaitAsync(TimeSpan.FromSeconds(30));
            await node.RunAsync(tx => tx.SetRoot("n", tx.Allocate(BitConverter.GetBytes(1L)))).WaitAsync(TimeSpan.FromSeconds(30));
            var set = node.Position;

            // A snapshot holds n = 1; then n becomes 2.
            string? snapshot = null;
            await Tools.WaitUntilAsync(async () =>
            {
                var listed = await CliAsync("memory", "snapshots", "--store", store, "--cluster", cluster);
                snapshot = listed.Split('\n').Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    .Where(f => f.Length == 6 && long.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture) >= set).Select(f => f[0]).LastOrDefault();
                return snapshot is not null;
            }, TimeSpan.FromSeconds(60), "a memory snapshot listed");
            await node.RunAsync(tx => tx.Write(tx.GetRoot("n"), BitConverter.GetBytes(2L))).WaitAsync(TimeSpan.FromSeconds(30));

            var fallback = await CliAsync("memory", "fallback", "--etcd", url, "--cluster", cluster, "--store", store, "--snapshot", snapshot!);
            Assert.Contains($"falls back to snapshot {snapshot}", fallback, StringComparison.Ordinal);
            await node.SyncAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(1L, await node.RunAsync(tx => BitConverter.ToInt64(tx.Read(tx.GetRoot("n")).Data.Span)).WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("is not a memory snapshot of cluster", await CliAsync("memory", "fallback", "--etcd", url, "--cluster", "other", "--store", store, "--snapshot", snapshot!), StringComparison.Ordinal);

            using (var term = Process.Start("kill", ["-TERM", pageserver.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }

            await pageserver.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(pageserver.ExitCode == 0, Output());
            Assert.Contains("resh: final snapshot", Output(), StringComparison.Ordinal);
        }
        finally
        {
            if (!pageserver.HasExited)
            {
                pageserver.Kill();
            }

            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static async Task<string> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        await Resh.Cli.ReshCli.RunAsync(args, output, errors).WaitAsync(TimeSpan.FromSeconds(60));
        return output.ToString() + errors;
    }
}
