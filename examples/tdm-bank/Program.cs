using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Dresh;
using Resh.Memory;

namespace Resh.Examples.TdmBank;

/// <summary>
/// The bank on Resh's transactional memory. <c>tdm-bank</c> (or <c>tdm-bank demo</c>) runs the whole demo: etcd, a
/// pageserver, three node processes doing concurrent transfers, one of them killed with SIGKILL and started again, and a
/// check at the end that the total balance never changed and every node's ledger holds each of its transfers once.
/// <c>tdm-bank node</c> is one node (the demo starts three); <c>tdm-bank bench</c> is the benchmark's workload.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "demo";
        var options = Options.Parse(args.SkipWhile(a => !a.StartsWith("--", StringComparison.Ordinal)));
        try
        {
            return command switch
            {
                "demo" => await DemoAsync(options),
                "node" => await NodeAsync(options),
                "bench" => await Benchmark.RunAsync(options),
                _ => Usage($"unknown command '{command}'"),
            };
        }
        catch (ArgumentException e)
        {
            return Usage(e.Message);
        }
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine($"tdm-bank: {problem}");
        Console.Error.WriteLine("usage: tdm-bank [demo] [--seconds 20] [--nodes 3] [--accounts 50] [--etcd URL] [--dir DIR]");
        Console.Error.WriteLine("       tdm-bank node --etcd URL --node N --store DIR --dir DIR [--seconds 20] [--accounts 50] [--cluster bank]");
        Console.Error.WriteLine("       tdm-bank bench --etcd URL [--seconds 10] [--nodes 1] [--accounts 1000] [--workers 4] [--mode memory|etcd]");
        return 2;
    }

    internal static ILoggerFactory Logging(string prefix) => LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Information)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = $"HH:mm:ss.fff '{prefix}' ";
        }));

    internal static EtcdOrderingOptions Etcd(Options o) => new() { Endpoints = [.. o.Get("etcd", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(u => new Uri(u))], Cluster = o.Get("cluster", "bank") };

    /// <summary>One node: starts from the newest snapshot and the log, transfers money until its time is up, leaves in order.</summary>
    private static async Task<int> NodeAsync(Options o)
    {
        var id = o.Int("node", 1);
        var dir = o.Get("dir", ".");
        var seconds = o.Double("seconds", 20);
        var accounts = o.Int("accounts", 50);
        using var logging = Logging($"node{id}");
        var logger = logging.CreateLogger("tdm-bank");
        await using var log = new EtcdCommitLog(Etcd(o));
        var ledger = new FileAppendDevice("ledger", Path.Combine(dir, $"ledger-{id}.log"));
        await using var node = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = id, Cluster = o.Get("cluster", "bank"), StorePath = o.Get("store", ""), Devices = [ledger] }, logger);
        if (await Bank.EnsureAccountsAsync(node, accounts))
        {
            Console.WriteLine($"node {id}: created {accounts} accounts of {Bank.InitialBalance}");
        }

        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var transfers = 0L;
        var workers = Enumerable.Range(0, o.Int("workers", 2)).Select(w => Task.Run(async () =>
        {
            var random = new Random(id * 100 + w + Environment.ProcessId);
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    if (await Bank.TransferAsync(node, random.Next(accounts), random.Next(accounts), random.Next(1, 200), "ledger"))
                    {
                        Interlocked.Increment(ref transfers);
                    }
                }
                catch (Exception e) when (e is TransactionFailedException or IOException)
                {
                    // The log was out of reach for longer than the node tries (a cut-off host): the transfer may or may
                    // not have happened; the counter and the ledger stay consistent either way. Try the next one.
                    Console.WriteLine($"node {id}: a transfer failed: {e.Message}");
                    await Task.Delay(500);
                }
            }
        })).ToArray();
        var clock = Stopwatch.StartNew();
        while (!stop.IsCancellationRequested)
        {
            await Task.WhenAny(Task.WhenAll(workers), Task.Delay(1000));
            Console.WriteLine($"node {id}: {Interlocked.Read(ref transfers)} transfers in {clock.Elapsed.TotalSeconds:F0} s");
        }

        await Task.WhenAll(workers);
        await node.ShutdownAsync();
        var stats = node.Stats;
        Console.WriteLine($"node {id}: done, {transfers} transfers, {stats.Restarts} restarts, {stats.Reservations} reservations, at most {stats.MaxRestarts} restarts for one transfer");
        return 0;
    }

    /// <summary>The whole demo, on this machine.</summary>
    private static async Task<int> DemoAsync(Options o)
    {
        var seconds = o.Double("seconds", 20);
        var nodes = o.Int("nodes", 3);
        var accounts = o.Int("accounts", 50);
        var dir = o.Get("dir", Path.Combine(Path.GetTempPath(), "tdm-bank-" + Guid.NewGuid().ToString("N")[..8]));
        Directory.CreateDirectory(dir);
        var store = Path.Combine(dir, "store");
        using var logging = Logging("demo ");
        var logger = logging.CreateLogger("tdm-bank");
        await using var etcd = o.Has("etcd") ? null : await LocalEtcd.StartAsync(Path.Combine(dir, "etcd"));
        var etcdUrl = o.Get("etcd", etcd?.Url.GetLeftPart(UriPartial.Authority) ?? "");
        Console.WriteLine($"demo: {nodes} nodes, {accounts} accounts of {Bank.InitialBalance}, {seconds:F0} s, etcd {etcdUrl}, files in {dir}");
        var etcdOptions = Etcd(o.With("etcd", etcdUrl));
        await using var log = new EtcdCommitLog(etcdOptions);
        await using var pageserver = await PageServer.StartAsync(log, new PageServerOptions { Cluster = etcdOptions.Cluster, StorePath = store, Interval = TimeSpan.FromSeconds(2), LogRetention = TimeSpan.FromSeconds(4) }, logger);
        using var stopSnapshots = new CancellationTokenSource();
        var snapshots = pageserver.RunAsync(stopSnapshots.Token);

        var started = Stopwatch.StartNew();
        Process Start(int id, double runFor) => NodeProcess.Start(etcdUrl, etcdOptions.Cluster, id, store, dir, runFor, accounts);
        var processes = Enumerable.Range(1, nodes).ToDictionary(id => id, id => Start(id, seconds));
        var victim = Math.Min(2, nodes);
        await Task.Delay(TimeSpan.FromSeconds(seconds / 3));
        processes[victim].Kill(entireProcessTree: true);
        await processes[victim].WaitForExitAsync();
        Console.WriteLine($"demo: killed node {victim} (SIGKILL) at {started.Elapsed.TotalSeconds:F1} s");
        await Task.Delay(TimeSpan.FromSeconds(1));
        processes[victim] = Start(victim, Math.Max(3, seconds - started.Elapsed.TotalSeconds));
        Console.WriteLine($"demo: started node {victim} again at {started.Elapsed.TotalSeconds:F1} s");

        var failed = false;
        foreach (var (id, process) in processes)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 120));
            await process.WaitForExitAsync(deadline.Token);
            if (process.ExitCode != 0)
            {
                Console.WriteLine($"demo: node {id} exited with {process.ExitCode}");
                failed = true;
            }
        }

        await stopSnapshots.CancelAsync();
        try
        {
            await snapshots;
        }
        catch (OperationCanceledException)
        {
        }

        // The check: a node of its own reads everything once the log is applied.
        await using var checker = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 999, Cluster = etcdOptions.Cluster, StorePath = store }, logger);
        await checker.SyncAsync();
        var balances = await Bank.BalancesAsync(checker);
        var total = balances.Sum();
        var expected = accounts * Bank.InitialBalance;
        Console.WriteLine($"total balance: {total} (expected {expected}) over {balances.Length} accounts: {(total == expected && balances.Length == accounts ? "invariant holds" : "INVARIANT BROKEN")}");
        failed |= total != expected || balances.Length != accounts;
        for (var id = 1; id <= nodes; id++)
        {
            var counted = await Bank.TransfersAsync(checker, id);
            var lines = FileAppendDevice.ReadAll(Path.Combine(dir, $"ledger-{id}.log")).Count;
            Console.WriteLine($"node {id}: {counted} transfers committed, {lines} ledger lines: {(counted == lines ? "each once" : "MISMATCH")}");
            failed |= counted != lines;
        }

        await checker.ShutdownAsync();
        var final = await pageserver.FinalSnapshotAsync();
        Console.WriteLine($"pageserver: final snapshot {final.Id} at position {final.Position}: {final.Objects} objects, pinned for {final.Pause.TotalMilliseconds:F3} ms; {pageserver.Freed} objects freed as garbage over the run");
        Console.WriteLine($"result: {(failed ? "FAIL" : "PASS")}");
        return failed ? 1 : 0;
    }
}

/// <summary>Starts a node as a process of its own (this same program with the <c>node</c> command).</summary>
internal static class NodeProcess
{
    public static Process Start(string etcd, string cluster, int id, string store, string dir, double seconds, int accounts)
    {
        // Under the dotnet host (`dotnet tdm-bank.dll`) the node is the same dll again; from its own launcher (as `dotnet run`
        // starts it) the launcher takes no dll.
        var host = Environment.ProcessPath ?? "dotnet";
        var start = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(Program).Assembly.Location);
        }

        foreach (var arg in (string[])["node", "--etcd", etcd, "--cluster", cluster, "--node", id.ToString(CultureInfo.InvariantCulture), "--store", store, "--dir", dir, "--seconds", seconds.ToString("F1", CultureInfo.InvariantCulture), "--accounts", accounts.ToString(CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Print(e.Data);
        process.ErrorDataReceived += (_, e) => Print(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Print(string? line)
    {
        if (line is not null)
        {
            lock (Console.Out)
            {
                Console.WriteLine(line);
            }
        }
    }
}

/// <summary>A single etcd member on free loopback ports, its data in a directory of the demo's; killed on dispose.</summary>
internal sealed class LocalEtcd : IAsyncDisposable
{
    private readonly Process _process;

    private LocalEtcd(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<LocalEtcd> StartAsync(string dataDir)
    {
        var client = new Uri($"http://127.0.0.1:{FreePort()}");
        var peer = $"http://127.0.0.1:{FreePort()}";
        var start = new ProcessStartInfo("etcd") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var clientUrl = client.GetLeftPart(UriPartial.Authority);
        foreach (var arg in (string[])["--data-dir", dataDir, "--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", $"default={peer}"])
        {
            start.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ArgumentException($"cannot start etcd ({e.Message}); install it (apt-get install etcd-server) or pass --etcd URL");
        }

        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var etcd = new LocalEtcd(process, client);
        await using var log = new EtcdCommitLog(new EtcdOrderingOptions { Endpoints = [client], Cluster = "probe" });
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await log.HeadAsync(attempt.Token);
                return etcd;
            }
            catch (Exception) when (clock.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
            {
                await Task.Delay(100);
            }
            catch
            {
                await etcd.DisposeAsync();
                throw;
            }
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>--key value options.</summary>
internal sealed class Options(Dictionary<string, string> values)
{
    public static Options Parse(IEnumerable<string> args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (!list[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= list.Count)
            {
                throw new ArgumentException($"expected --option value, got '{list[i]}'");
            }

            values[list[i][2..]] = list[++i];
        }

        return new Options(values);
    }

    public bool Has(string key) => values.ContainsKey(key);

    public string Get(string key, string fallback) => values.GetValueOrDefault(key, fallback);

    public Options With(string key, string value) => new(new Dictionary<string, string>(values) { [key] = value });

    public int Int(string key, int fallback) => values.TryGetValue(key, out var v) ? int.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"--{key}: not a number: {v}") : fallback;

    public double Double(string key, double fallback) => values.TryGetValue(key, out var v) ? double.TryParse(v, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"--{key}: not a number: {v}") : fallback;
}
