using System.Diagnostics;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Net.Client;
using HdrHistogram;
using Resh.Memory;

namespace Resh.Examples.TdmBank;

/// <summary>
/// The benchmark's workload (benchmarks/tdm.sh): transfers between random accounts for a fixed time, by
/// <c>--workers</c> concurrent workers on each of <c>--nodes</c> nodes, either in the transactional memory
/// (<c>--mode memory</c>: in-process nodes, each with its own etcd connection, and a pageserver taking a snapshot every
/// second) or directly as etcd transactions (<c>--mode etcd</c>: read both balances with their mod revisions, then a txn
/// that writes both only if neither changed, else again: etcd's own STM style). Prints one line of results.
/// </summary>
internal static class Benchmark
{
    public static async Task<int> RunAsync(Options o)
    {
        var mode = o.Get("mode", "memory");
        var nodes = o.Int("nodes", 1);
        var workers = o.Int("workers", 4);
        var accounts = o.Int("accounts", 1000);
        var seconds = o.Double("seconds", 10);
        var cluster = o.Get("cluster", "bench-" + Guid.NewGuid().ToString("N")[..6]);
        if (mode == "replay")
        {
            return await ReplayAsync(o.With("cluster", cluster), workers, accounts, seconds);
        }

        var run = mode switch
        {
            "memory" => await MemoryAsync(o.With("cluster", cluster), nodes, workers, accounts, seconds),
            "etcd" => await EtcdAsync(o.Get("etcd", ""), cluster, nodes, workers, accounts, seconds),
            _ => throw new ArgumentException($"--mode must be memory or etcd (got {mode})"),
        };
        var attempts = run.Commits + run.Aborts;
        Console.WriteLine(FormattableString.Invariant(
            $"mode={mode} nodes={nodes} workers={workers} accounts={accounts} seconds={seconds:F0} commits={run.Commits} tx_per_s={run.Commits / seconds:F0} abort_rate={(attempts == 0 ? 0 : (double)run.Aborts / attempts):F3} p50_ms={run.Latency.GetValueAtPercentile(50) / 1000.0:F2} p99_ms={run.Latency.GetValueAtPercentile(99) / 1000.0:F2} max_restarts={run.MaxRestarts} total_ok={run.TotalOk} snapshots={run.Snapshots} pause_max_ms={run.PauseMax:F3} pause_avg_ms={run.PauseAvg:F3}"));
        return run.TotalOk ? 0 : 1;
    }

    /// <summary>
    /// How fast a node that took no part applies what others committed (every node is updated by every commit): one node
    /// commits transfers for the given time with no pageserver, then a second node starts and applies the whole log.
    /// </summary>
    private static async Task<int> ReplayAsync(Options o, int workers, int accounts, double seconds)
    {
        var etcd = Program.Etcd(o);
        await using var log = new EtcdCommitLog(etcd);
        await using var writer = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, Cluster = etcd.Cluster });
        await Bank.EnsureAccountsAsync(writer, accounts);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            while (!stop.IsCancellationRequested)
            {
                await Bank.TransferAsync(writer, random.Next(accounts), random.Next(accounts), 1, ledger: null);
            }
        })));
        await using var reader = new EtcdCommitLog(etcd);
        var clock = Stopwatch.StartNew();
        await using var late = await MemoryNode.StartAsync(reader, new MemoryNodeOptions { Node = 2, Cluster = etcd.Cluster });
        var elapsed = clock.Elapsed;
        var records = late.RecordsApplied;
        var total = (await Bank.BalancesAsync(late)).Sum();
        Console.WriteLine(FormattableString.Invariant(
            $"mode=replay accounts={accounts} commits={writer.Stats.Commits} log_records={records} catch_up_s={elapsed.TotalSeconds:F2} records_per_s={records / elapsed.TotalSeconds:F0} total_ok={total == accounts * Bank.InitialBalance}"));
        return total == accounts * Bank.InitialBalance ? 0 : 1;
    }

    private sealed record Result(long Commits, long Aborts, LongHistogram Latency, int MaxRestarts, bool TotalOk, int Snapshots, double PauseMax, double PauseAvg);

    private static async Task<Result> MemoryAsync(Options o, int nodeCount, int workers, int accounts, double seconds)
    {
        var etcd = Program.Etcd(o);
        var store = Path.Combine(Path.GetTempPath(), "tdm-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var logs = new List<EtcdCommitLog>();
        var nodes = new List<MemoryNode>();
        try
        {
            for (var i = 1; i <= nodeCount; i++)
            {
                var log = new EtcdCommitLog(etcd);
                logs.Add(log);
                nodes.Add(await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = i, Cluster = etcd.Cluster }));
            }

            var psLog = new EtcdCommitLog(etcd);
            logs.Add(psLog);
            await using var pageserver = await PageServer.StartAsync(psLog, new PageServerOptions { Cluster = etcd.Cluster, StorePath = store, Interval = TimeSpan.Zero, LogRetention = TimeSpan.FromSeconds(5) });
            await Bank.EnsureAccountsAsync(nodes[0], accounts);
            foreach (var node in nodes)
            {
                await node.SyncAsync();
            }

            var before = nodes.Select(n => n.Stats).ToArray();
            var latency = new LongHistogram(TimeSpan.TicksPerSecond * 60, 3);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
            var tasks = nodes.SelectMany(node => Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
            {
                var random = new Random(node.Node * 1000 + w);
                while (!stop.IsCancellationRequested)
                {
                    var started = Stopwatch.GetTimestamp();
                    await Bank.TransferAsync(node, random.Next(accounts), random.Next(accounts), 1, ledger: null);
                    lock (latency)
                    {
                        latency.RecordValue((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                    }
                }
            }))).ToList();

            // Snapshots under load, one a second: the pause is the pin of the state.
            var pauses = new List<double>();
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(1000, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                pauses.Add((await pageserver.SnapshotAsync()).Pause.TotalMilliseconds);
            }

            await Task.WhenAll(tasks);
            var after = nodes.Select(n => n.Stats).ToArray();
            await nodes[0].SyncAsync();
            var total = (await Bank.BalancesAsync(nodes[0])).Sum();
            return new Result(
                after.Zip(before).Sum(p => p.First.Commits - p.Second.Commits),
                after.Zip(before).Sum(p => p.First.Restarts - p.Second.Restarts),
                latency,
                after.Max(s => s.MaxRestarts),
                total == accounts * Bank.InitialBalance,
                pauses.Count,
                pauses.DefaultIfEmpty(0).Max(),
                pauses.DefaultIfEmpty(0).Average());
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }

            foreach (var log in logs)
            {
                await log.DisposeAsync();
            }

            if (Directory.Exists(store))
            {
                Directory.Delete(store, recursive: true);
            }
        }
    }

    private static async Task<Result> EtcdAsync(string url, string cluster, int nodeCount, int workers, int accounts, double seconds)
    {
        var channels = Enumerable.Range(0, nodeCount).Select(_ => GrpcChannel.ForAddress(url.Split(',')[0])).ToList();
        try
        {
            var kvs = channels.Select(c => new KV.KVClient(c)).ToList();
            ByteString Key(int i) => ByteString.CopyFrom(Encoding.UTF8.GetBytes($"/tdm-bench/{cluster}/acc/{i:D6}"));
            var init = new TxnRequest();
            for (var i = 0; i < accounts; i++)
            {
                init.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = Key(i), Value = ByteString.CopyFrom(Bank.Encode(Bank.InitialBalance)) } });
                if (init.Success.Count == 100 || i == accounts - 1)
                {
                    await kvs[0].TxnAsync(init);
                    init = new TxnRequest();
                }
            }

            var latency = new LongHistogram(TimeSpan.TicksPerSecond * 60, 3);
            long commits = 0, aborts = 0;
            var maxRestarts = 0;
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
            var tasks = kvs.SelectMany((kv, n) => Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
            {
                var random = new Random(n * 1000 + w);
                while (!stop.IsCancellationRequested)
                {
                    var from = random.Next(accounts);
                    var to = random.Next(accounts);
                    var started = Stopwatch.GetTimestamp();
                    for (var attempt = 0; ; attempt++)
                    {
                        var a = (await kv.RangeAsync(new RangeRequest { Key = Key(from) })).Kvs[0];
                        var b = (await kv.RangeAsync(new RangeRequest { Key = Key(to) })).Kvs[0];
                        var balanceA = BitConverter.ToInt64(a.Value.Span);
                        if (from == to || balanceA < 1)
                        {
                            break;
                        }

                        var txn = new TxnRequest
                        {
                            Compare =
                            {
                                new Compare { Key = Key(from), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = a.ModRevision },
                                new Compare { Key = Key(to), Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = b.ModRevision },
                            },
                            Success =
                            {
                                new RequestOp { RequestPut = new PutRequest { Key = Key(from), Value = ByteString.CopyFrom(Bank.Encode(balanceA - 1)) } },
                                new RequestOp { RequestPut = new PutRequest { Key = Key(to), Value = ByteString.CopyFrom(Bank.Encode(BitConverter.ToInt64(b.Value.Span) + 1)) } },
                            },
                        };
                        if ((await kv.TxnAsync(txn)).Succeeded)
                        {
                            Interlocked.Increment(ref commits);
                            lock (latency)
                            {
                                latency.RecordValue((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                                maxRestarts = Math.Max(maxRestarts, attempt);
                            }

                            break;
                        }

                        Interlocked.Increment(ref aborts);
                    }
                }
            }))).ToList();
            await Task.WhenAll(tasks);
            var all = await kvs[0].RangeAsync(new RangeRequest { Key = Key(0), RangeEnd = Key(accounts) });
            var total = all.Kvs.Sum(kv => BitConverter.ToInt64(kv.Value.Span));
            await kvs[0].DeleteRangeAsync(new DeleteRangeRequest { Key = Key(0), RangeEnd = Key(accounts) });
            return new Result(commits, aborts, latency, maxRestarts, total == accounts * Bank.InitialBalance, 0, 0, 0);
        }
        finally
        {
            foreach (var channel in channels)
            {
                channel.Dispose();
            }
        }
    }
}
