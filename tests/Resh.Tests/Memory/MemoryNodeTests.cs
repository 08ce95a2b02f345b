using System.Buffers.Binary;
using Resh.Memory;

namespace Resh.Tests.Memory;

/// <summary>Transactions on several nodes sharing one in-process log: consistency, fairness, devices, shutdown.</summary>
public sealed class MemoryNodeTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-memory-test-" + Guid.NewGuid().ToString("N"));
    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    private async Task<MemoryNode> NodeAsync(ICommitLog log, int node, string? store = null, IReadOnlyList<IDevice>? devices = null)
    {
        var n = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = node, StorePath = store, Devices = devices ?? [] }).WaitAsync(Timeout);
        _owned.Add(n);
        return n;
    }

    private async Task<PageServer> PageServerAsync(ICommitLog log, TimeSpan? logRetention = null)
    {
        var options = new PageServerOptions { StorePath = Path.Combine(_dir, "store"), Interval = TimeSpan.Zero, Retention = new() { KeepLast = 100 }, LogRetention = logRetention ?? TimeSpan.FromMinutes(1) };
        var p = await PageServer.StartAsync(log, options).WaitAsync(Timeout);
        _owned.Add(p);
        return p;
    }

    private static byte[] Long(long value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        return b;
    }

    private static long Long(MemoryObject o) => BinaryPrimitives.ReadInt64LittleEndian(o.Data.Span);

    /// <summary>Creates <paramref name="count"/> accounts of 100 under root "accounts" (an object holding their refs).</summary>
    private static Task CreateAccountsAsync(MemoryNode node, int count) => node.RunAsync(tx =>
    {
        var accounts = Enumerable.Range(0, count).Select(_ => tx.Allocate(Long(100))).ToArray();
        tx.SetRoot("accounts", tx.Allocate([], accounts));
    });

    private static Task TransferAsync(MemoryNode node, int from, int to, long amount) => node.RunAsync(tx =>
    {
        var table = tx.Read(tx.GetRoot("accounts"));
        var a = table.GetRef(from);
        var b = table.GetRef(to);
        tx.Write(a, Long(Long(tx.Read(a)) - amount));
        tx.Write(b, Long(Long(tx.Read(b)) + amount));
    });

    private static Task<long[]> BalancesAsync(MemoryNode node) => node.RunAsync(tx =>
    {
        var table = tx.Read(tx.GetRoot("accounts"));
        return table.Refs.Select(r => Long(tx.Read(r))).ToArray();
    });

    [Fact]
    public async Task Concurrent_transfers_on_three_nodes_keep_the_total_and_every_node_agrees()
    {
        var log = new InMemoryCommitLog();
        var nodes = new[] { await NodeAsync(log, 1), await NodeAsync(log, 2), await NodeAsync(log, 3) };
        await CreateAccountsAsync(nodes[0], 10).WaitAsync(Timeout);
        var workers = nodes.SelectMany(node => Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            var random = new Random(node.Node * 10 + w);
            for (var i = 0; i < 100; i++)
            {
                await TransferAsync(node, random.Next(10), random.Next(10), random.Next(1, 20));
            }
        })));
        await Task.WhenAll(workers).WaitAsync(Timeout);

        var head = await log.HeadAsync(CancellationToken.None);
        await Tools.WaitUntilAsync(() => nodes.All(n => n.Position >= head), Timeout);
        var balances = await Task.WhenAll(nodes.Select(BalancesAsync)).WaitAsync(Timeout);
        Assert.All(balances, b => Assert.Equal(1000, b.Sum()));
        Assert.All(balances, b => Assert.Equal(balances[0], b));
        Assert.Equal(601, nodes.Sum(n => n.Stats.Commits));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_hot_object_hammered_by_eight_workers_lets_every_transaction_complete(int nodeCount)
    {
        // Appends take a millisecond, as over a network: the workers overlap and lose to each other all the time. On one
        // node, every worker may wait at once: a wake-up lost between a check and the wait would hang them all.
        var log = new SlowLog(new InMemoryCommitLog());
        var nodes = nodeCount == 1 ? new[] { await NodeAsync(log, 1) } : new[] { await NodeAsync(log, 1), await NodeAsync(log, 2) };
        await nodes[0].RunAsync(tx => tx.SetRoot("hot", tx.Allocate(Long(0)))).WaitAsync(Timeout);
        await nodes[^1].SyncAsync().WaitAsync(Timeout);
        const int PerWorker = 40;
        var workers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var node = nodes[w % nodes.Length];
            for (var i = 0; i < PerWorker; i++)
            {
                await node.RunAsync(tx =>
                {
                    var hot = tx.GetRoot("hot");
                    tx.Write(hot, Long(Long(tx.Read(hot)) + 1));
                });
            }
        }));
        await Task.WhenAll(workers).WaitAsync(Timeout);

        await nodes[^1].SyncAsync().WaitAsync(Timeout);
        var value = await nodes[^1].RunAsync(tx => Long(tx.Read(tx.GetRoot("hot")))).WaitAsync(Timeout);
        Assert.Equal(8 * PerWorker, value);
        var stats = nodes.Select(n => n.Stats).ToArray();
        var maxRestarts = stats.Max(s => s.MaxRestarts);
        Console.WriteLine($"hot object: {8 * PerWorker} increments, {stats.Sum(s => s.Restarts)} restarts, {stats.Sum(s => s.Reservations)} reservations, at most {maxRestarts} restarts for one transaction");
        Assert.True(stats.Sum(s => s.Reservations) > 0, "contention this high should have made some transaction reserve");
        Assert.True(maxRestarts <= 5, $"a transaction restarted {maxRestarts} times; with reservations after 3 it should complete by its fifth run");
    }

    [Fact]
    public async Task A_node_started_later_from_a_snapshot_and_the_log_sees_everything()
    {
        var log = new InMemoryCommitLog();
        var store = Path.Combine(_dir, "store");
        var pageserver = await PageServerAsync(log, logRetention: TimeSpan.Zero);
        var first = await NodeAsync(log, 1, store);
        await CreateAccountsAsync(first, 5).WaitAsync(Timeout);
        for (var i = 0; i < 20; i++)
        {
            await TransferAsync(first, i % 5, (i + 1) % 5, 7).WaitAsync(Timeout);
        }

        await pageserver.SnapshotAsync().WaitAsync(Timeout);
        await TransferAsync(first, 4, 0, 1).WaitAsync(Timeout);
        var snapshot = await pageserver.SnapshotAsync().WaitAsync(Timeout);
        for (var i = 0; i < 10; i++)
        {
            await TransferAsync(first, (i + 2) % 5, i % 5, 3).WaitAsync(Timeout);
        }

        // The log up to the first snapshot is gone (the second one truncated it): the new node starts from a snapshot.
        await Assert.ThrowsAsync<LogTruncatedException>(async () =>
        {
            await foreach (var _ in log.ReadAsync(0, CancellationToken.None))
            {
            }
        }).WaitAsync(Timeout);
        var second = await NodeAsync(log, 2, store);
        Assert.Equal(1, second.SnapshotsLoaded);
        await first.SyncAsync().WaitAsync(Timeout);
        Assert.Equal(await BalancesAsync(first), await BalancesAsync(second));
        Assert.True(snapshot.Pause < TimeSpan.FromSeconds(1));
        await TransferAsync(second, 0, 1, 1).WaitAsync(Timeout);
        Assert.Equal(500, (await BalancesAsync(second)).Sum());
    }

    [Fact]
    public async Task A_snapshot_taken_under_load_holds_the_state_at_its_position()
    {
        var log = new InMemoryCommitLog();
        var pageserver = await PageServerAsync(log);
        var node = await NodeAsync(log, 1);
        await CreateAccountsAsync(node, 20).WaitAsync(Timeout);
        using var stop = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            var random = new Random(5);
            while (!stop.IsCancellationRequested)
            {
                await TransferAsync(node, random.Next(20), random.Next(20), random.Next(1, 50));
            }
        });
        var snapshots = new List<MemorySnapshotResult>();
        for (var i = 0; i < 5; i++)
        {
            await Tools.WaitUntilAsync(() => node.Stats.Commits > (i + 1) * 50, Timeout);
            snapshots.Add(await pageserver.SnapshotAsync().WaitAsync(Timeout));
        }

        await stop.CancelAsync();
        await load.WaitAsync(Timeout);
        foreach (var s in snapshots)
        {
            var state = await MemoryReplica.LoadAsync(Path.Combine(_dir, "store"), s.Id, CancellationToken.None);
            Assert.Equal(s.Position, state.Position);
            var table = state.Read(MemoryState.AnchorId("accounts")).Object!.Refs[0];
            var total = state.Read(table).Object!.Refs.Sum(id => BinaryPrimitives.ReadInt64LittleEndian(state.Read(id).Object!.Data));
            Assert.Equal(2000, total);
        }
    }

    [Fact]
    public async Task Garbage_found_in_a_snapshot_is_freed_and_no_reachable_object_ever_is()
    {
        var log = new InMemoryCommitLog();
        var pageserver = await PageServerAsync(log);
        var store = Path.Combine(_dir, "store");
        var nodes = new[] { await NodeAsync(log, 1, store), await NodeAsync(log, 2, store) };

        // Two lists; workers move items between them (unlink from one, link into the other, in one transaction) and
        // drop some, while the pageserver collects garbage again and again.
        await nodes[0].RunAsync(tx =>
        {
            tx.SetRoot("left", tx.Allocate([], [.. Enumerable.Range(0, 30).Select(i => tx.Allocate(Long(i)))]));
            tx.SetRoot("right", tx.Allocate([]));
        }).WaitAsync(Timeout);
        using var stop = new CancellationTokenSource();
        var dropped = 0L;
        var movers = nodes.Select(node => Task.Run(async () =>
        {
            var random = new Random(node.Node);
            while (!stop.IsCancellationRequested)
            {
                var drop = random.Next(10) == 0;
                var moved = await node.RunAsync(tx =>
                {
                    var (fromName, toName) = random.Next(2) == 0 ? ("left", "right") : ("right", "left");
                    var from = tx.GetRoot(fromName);
                    var to = tx.GetRoot(toName);
                    var items = tx.Read(from).Refs.ToList();
                    if (items.Count == 0)
                    {
                        return 0;
                    }

                    var item = items[random.Next(items.Count)];
                    _ = tx.Read(item);
                    items.Remove(item);
                    tx.Write(from, [], [.. items]);
                    if (!drop)
                    {
                        tx.Write(to, [], [.. tx.Read(to).Refs, item]);
                        return 0;
                    }

                    // A dropped item is replaced by a new one, so the lists never run dry.
                    tx.Write(to, [], [.. tx.Read(to).Refs, tx.Allocate(Long(-1))]);
                    return 1;
                });
                Interlocked.Add(ref dropped, moved);
            }
        })).ToArray();
        var freed = 0;
        for (var i = 0; i < 6; i++)
        {
            await Tools.WaitUntilAsync(() => Interlocked.Read(ref dropped) > i * 3, Timeout);
            freed += (await pageserver.SnapshotAsync().WaitAsync(Timeout)).Unreachable;
        }

        await stop.CancelAsync();
        await Task.WhenAll(movers).WaitAsync(Timeout);

        // Every item still in a list exists on every node: nothing reachable was freed.
        var head = await log.HeadAsync(CancellationToken.None);
        await Tools.WaitUntilAsync(() => nodes.All(n => n.Position >= head), Timeout);
        foreach (var node in nodes)
        {
            var count = await node.RunAsync(tx => tx.Read(tx.GetRoot("left")).Refs.Concat(tx.Read(tx.GetRoot("right")).Refs).Count(r => tx.Read(r) is not null)).WaitAsync(Timeout);
            Assert.Equal(30, count);
        }

        Assert.True(freed > 0, "dropped items should have been found unreachable");
        await pageserver.SnapshotAsync().WaitAsync(Timeout);
        var final = await log.HeadAsync(CancellationToken.None);
        await Tools.WaitUntilAsync(() => nodes.All(n => n.Position >= final), Timeout);

        // Two collections after the last drop: only the 30 items, the two list objects and the two root anchors remain.
        await pageserver.SnapshotAsync().WaitAsync(Timeout);
        final = await log.HeadAsync(CancellationToken.None);
        await Tools.WaitUntilAsync(() => nodes.All(n => n.Position >= final), Timeout);
        Assert.All(nodes, n => Assert.Equal(34, n.ObjectCount));
    }

    [Fact]
    public async Task Storing_a_reference_to_a_freed_object_fails_the_transaction()
    {
        var log = new InMemoryCommitLog();
        var pageserver = await PageServerAsync(log);
        var node = await NodeAsync(log, 1);
        var orphan = await node.RunAsync(tx =>
        {
            tx.SetRoot("home", tx.Allocate([]));
            return tx.Allocate(Long(1));
        }).WaitAsync(Timeout);
        await pageserver.SnapshotAsync().WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => node.ObjectCount == 2, Timeout);

        await Assert.ThrowsAsync<ObjectFreedException>(() => node.RunAsync(tx => tx.Read(orphan))).WaitAsync(Timeout);
        await Assert.ThrowsAsync<DanglingReferenceException>(() => node.RunAsync(tx => tx.Write(tx.GetRoot("home"), [], orphan))).WaitAsync(Timeout);
    }

    [Fact]
    public async Task Device_effects_happen_once_after_commit_even_when_the_node_restarts()
    {
        var log = new InMemoryCommitLog();
        var file = Path.Combine(_dir, "audit.log");
        await using var inbox = new MessageInbox(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        IDevice[] Devices() => [new FileAppendDevice("audit", file), new TcpMessageDevice("notify", inbox.EndPoint)];
        var node = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, Devices = Devices() }).WaitAsync(Timeout);
        await node.RunAsync(tx => tx.SetRoot("n", tx.Allocate(Long(0)))).WaitAsync(Timeout);
        for (var i = 1; i <= 5; i++)
        {
            await node.RunAsync(tx =>
            {
                var n = tx.GetRoot("n");
                var value = Long(tx.Read(n)) + 1;
                tx.Write(n, Long(value));
                tx.Emit("audit", Long(value));
                tx.Emit("notify", Long(value));
            }).WaitAsync(Timeout);
        }

        // A transaction that fails declares nothing.
        await Assert.ThrowsAsync<InvalidTimeZoneException>(() => node.RunAsync(tx =>
        {
            tx.Emit("audit", Long(99));
            throw new InvalidTimeZoneException();
        })).WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => node.PendingEffects == 0, Timeout);
        await node.DisposeAsync();

        // A restart runs the outbox again: nothing is pending, and nothing is done twice.
        var again = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, Devices = Devices() }).WaitAsync(Timeout);
        _owned.Add(again);
        await again.RunAsync(tx =>
        {
            var n = tx.GetRoot("n");
            tx.Write(n, Long(Long(tx.Read(n)) + 1));
            tx.Emit("audit", Long(6));
            tx.Emit("notify", Long(6));
        }).WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => again.PendingEffects == 0, Timeout);
        Assert.Equal([1L, 2, 3, 4, 5, 6], FileAppendDevice.ReadAll(file).Select(r => BinaryPrimitives.ReadInt64LittleEndian(r.Payload)));
        await Tools.WaitUntilAsync(() => inbox.Messages.Count == 6, Timeout);
        Assert.Equal([1L, 2, 3, 4, 5, 6], inbox.Messages.Select(m => BinaryPrimitives.ReadInt64LittleEndian(m.Payload)));
    }

    [Fact]
    public async Task Effects_whose_done_record_could_not_be_appended_are_reported_again_not_performed_again()
    {
        // The log refuses the first two done records (out of reach, and the node does not wait for it).
        var log = new FlakyLog(new InMemoryCommitLog(), kind: 5, failures: 2);
        var file = Path.Combine(_dir, "flaky.log");
        var node = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, AppendTimeout = TimeSpan.Zero, Devices = [new FileAppendDevice("audit", file)] }).WaitAsync(Timeout);
        _owned.Add(node);
        for (var i = 1; i <= 3; i++)
        {
            var value = i;
            await node.RunAsync(tx => tx.Emit("audit", Long(value))).WaitAsync(Timeout);
        }

        await Tools.WaitUntilAsync(() => node.PendingEffects == 0, Timeout);
        Assert.Equal(2, log.Failed);
        Assert.Equal([1L, 2, 3], FileAppendDevice.ReadAll(file).Select(r => BinaryPrimitives.ReadInt64LittleEndian(r.Payload)));
    }

    [Fact]
    public async Task A_body_that_fails_on_data_its_node_has_not_applied_yet_runs_again()
    {
        // Node 2 sees every record 300 ms late: a root node 1 just set is still unset in its copy.
        var inner = new InMemoryCommitLog();
        var first = await NodeAsync(inner, 1);
        var second = await NodeAsync(new LaggingLog(inner, TimeSpan.FromMilliseconds(300)), 2);
        await first.RunAsync(tx => tx.SetRoot("fresh", tx.Allocate(Long(42)))).WaitAsync(Timeout);

        var runs = 0;
        var value = await second.RunAsync(tx =>
        {
            runs++;
            return Long(tx.Read(tx.GetRoot("fresh")));
        }).WaitAsync(Timeout);
        Assert.Equal(42, value);
        Assert.Equal(2, runs);

        // A body that fails on current data fails for the caller.
        await Assert.ThrowsAsync<FormatException>(() => second.RunAsync(tx => tx.GetRoot("fresh").IsNull ? 0 : throw new FormatException())).WaitAsync(Timeout);
    }

    private sealed class LaggingLog(ICommitLog inner, TimeSpan lag) : ICommitLog
    {
        public Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken) => inner.AppendAsync(record, cancellationToken);

        public async IAsyncEnumerable<LogRecord> ReadAsync(long after, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var record in inner.ReadAsync(after, cancellationToken))
            {
                await Task.Delay(lag, cancellationToken);
                yield return record;
            }
        }

        public Task<long> HeadAsync(CancellationToken cancellationToken) => inner.HeadAsync(cancellationToken);

        public Task TruncateAsync(long upTo, CancellationToken cancellationToken) => inner.TruncateAsync(upTo, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class FlakyLog(ICommitLog inner, byte kind, int failures) : ICommitLog
    {
        private int _seen;
        private int _failed;

        public int Failed => Volatile.Read(ref _failed);

        public Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken)
        {
            if (record[1] == kind && Interlocked.Increment(ref _seen) <= failures)
            {
                Interlocked.Increment(ref _failed);
                throw new LogUnavailableException("out of reach (test)");
            }

            return inner.AppendAsync(record, cancellationToken);
        }

        public IAsyncEnumerable<LogRecord> ReadAsync(long after, CancellationToken cancellationToken) => inner.ReadAsync(after, cancellationToken);

        public Task<long> HeadAsync(CancellationToken cancellationToken) => inner.HeadAsync(cancellationToken);

        public Task TruncateAsync(long upTo, CancellationToken cancellationToken) => inner.TruncateAsync(upTo, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Fact]
    public async Task A_file_effect_performed_again_after_a_crash_is_written_once()
    {
        var file = Path.Combine(_dir, "effects.log");
        var device = new FileAppendDevice("f", file);
        await device.PerformAsync(1024, Long(1), CancellationToken.None);
        await device.PerformAsync(2048, Long(2), CancellationToken.None);

        // A new run (a restarted node) performs the same operations again, and a torn record is cut off.
        await File.AppendAllBytesAsync(file, [1, 2, 3]);
        var restarted = new FileAppendDevice("f", file);
        await restarted.PerformAsync(1024, Long(1), CancellationToken.None);
        await restarted.PerformAsync(2048, Long(2), CancellationToken.None);
        await restarted.PerformAsync(3072, Long(3), CancellationToken.None);
        Assert.Equal([1024L, 2048, 3072], FileAppendDevice.ReadAll(file).Select(r => r.Operation));

        // A fallback to the snapshot at position 2 voids the effect of the transaction at position 3.
        await restarted.FallBackAsync(2, CancellationToken.None);
        Assert.Equal([1024L, 2048], FileAppendDevice.ReadAll(file).Select(r => r.Operation));
    }

    [Fact]
    public async Task The_cluster_falls_back_to_a_snapshot_and_voids_later_effects()
    {
        var log = new InMemoryCommitLog();
        var store = Path.Combine(_dir, "store");
        var file = Path.Combine(_dir, "fallback.log");
        var pageserver = await PageServerAsync(log);
        var node = await NodeAsync(log, 1, store, [new FileAppendDevice("audit", file)]);
        await CreateAccountsAsync(node, 2).WaitAsync(Timeout);
        await node.RunAsync(tx => tx.Emit("audit", Long(1))).WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => node.PendingEffects == 0, Timeout);
        var snapshot = await pageserver.SnapshotAsync().WaitAsync(Timeout);
        await TransferAsync(node, 0, 1, 60).WaitAsync(Timeout);
        await node.RunAsync(tx => tx.Emit("audit", Long(2))).WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => node.PendingEffects == 0 && FileAppendDevice.ReadAll(file).Count == 2, Timeout);
        Assert.Equal(new long[] { 40, 160 }, await BalancesAsync(node));

        var at = await pageserver.FallBackAsync(snapshot.Id).WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => node.Position >= at, Timeout);
        Assert.Equal(new long[] { 100, 100 }, await BalancesAsync(node));
        Assert.Equal([1L], FileAppendDevice.ReadAll(file).Select(r => BinaryPrimitives.ReadInt64LittleEndian(r.Payload)));

        // Work goes on after the fallback.
        await TransferAsync(node, 1, 0, 10).WaitAsync(Timeout);
        Assert.Equal(new long[] { 110, 90 }, await BalancesAsync(node));
    }

    [Fact]
    public async Task A_controlled_shutdown_of_the_whole_cluster_loses_nothing()
    {
        var log = new InMemoryCommitLog();
        var store = Path.Combine(_dir, "store");
        long[] before;
        {
            await using var pageserver = await PageServer.StartAsync(log, new PageServerOptions { StorePath = store, Interval = TimeSpan.Zero }).WaitAsync(Timeout);
            await using var a = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 1, StorePath = store }).WaitAsync(Timeout);
            await using var b = await MemoryNode.StartAsync(log, new MemoryNodeOptions { Node = 2, StorePath = store }).WaitAsync(Timeout);
            await CreateAccountsAsync(a, 4).WaitAsync(Timeout);
            var work = Task.WhenAll(
                Task.Run(async () =>
                {
                    for (var i = 0; i < 30; i++)
                    {
                        await TransferAsync(a, i % 4, (i + 1) % 4, 5);
                    }
                }),
                Task.Run(async () =>
                {
                    for (var i = 0; i < 30; i++)
                    {
                        await TransferAsync(b, (i + 3) % 4, i % 4, 2);
                    }
                }));
            await work.WaitAsync(Timeout);
            await a.ShutdownAsync().WaitAsync(Timeout);
            await Assert.ThrowsAsync<TransactionFailedException>(() => TransferAsync(a, 0, 1, 1)).WaitAsync(Timeout);
            var head = await log.HeadAsync(CancellationToken.None);
            await Tools.WaitUntilAsync(() => b.Position >= head, Timeout);
            before = await BalancesAsync(b).WaitAsync(Timeout);
            await b.ShutdownAsync().WaitAsync(Timeout);
            await pageserver.FinalSnapshotAsync().WaitAsync(Timeout);
        }

        // A new log (etcd wiped, say): the cluster starts again from the final snapshot alone.
        var fresh = new InMemoryCommitLog();
        for (var i = 0; i < 1000; i++)
        {
            await fresh.AppendAsync(new JoinRecord(0).Encode(), CancellationToken.None);
        }

        var restarted = await NodeAsync(fresh, 1, store);
        Assert.Equal(before, await BalancesAsync(restarted));
        Assert.Equal(400, before.Sum());
    }

    private sealed class SlowLog(ICommitLog inner) : ICommitLog
    {
        public async Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken)
        {
            await Task.Delay(1, cancellationToken);
            return await inner.AppendAsync(record, cancellationToken);
        }

        public IAsyncEnumerable<LogRecord> ReadAsync(long after, CancellationToken cancellationToken) => inner.ReadAsync(after, cancellationToken);

        public Task<long> HeadAsync(CancellationToken cancellationToken) => inner.HeadAsync(cancellationToken);

        public Task TruncateAsync(long upTo, CancellationToken cancellationToken) => inner.TruncateAsync(upTo, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Fact]
    public async Task Records_round_trip_and_damaged_ones_are_refused()
    {
        var commit = new CommitRecord(new TxKey(3, 42), [(5, 7), (-9, 0)], [new ObjectWrite(5, false, [1, 2], [6]), new ObjectWrite((3L << 40) + 1, true, [], [])], [new DeviceWrite("d", [9])]);
        var decoded = Assert.IsType<CommitRecord>(MemoryRecord.Decode(commit.Encode()));
        Assert.Equal(commit.Tx, decoded.Tx);
        Assert.Equal(commit.Reads, decoded.Reads);
        Assert.Equal(commit.Writes.Select(w => (w.Id, w.Allocated, Convert.ToHexString(w.Data), string.Join(',', w.Refs))), decoded.Writes.Select(w => (w.Id, w.Allocated, Convert.ToHexString(w.Data), string.Join(',', w.Refs))));
        Assert.Equal("d", decoded.Devices[0].Device);
        Assert.IsType<FreeRecord>(MemoryRecord.Decode(new FreeRecord(10, [1, 2]).Encode()));

        var bytes = commit.Encode();
        Assert.Throws<InvalidDataException>(() => MemoryRecord.Decode(bytes.AsSpan(0, bytes.Length - 1)));
        Assert.Throws<InvalidDataException>(() => MemoryRecord.Decode([.. bytes, 0]));
        Assert.Throws<InvalidDataException>(() => MemoryRecord.Decode([2, 1]));
        Assert.Throws<InvalidDataException>(() => MemoryRecord.Decode([1, 200]));
        var huge = (byte[])bytes.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(huge.AsSpan(14), int.MaxValue);
        Assert.Throws<InvalidDataException>(() => MemoryRecord.Decode(huge));
        await Task.CompletedTask;
    }
}
