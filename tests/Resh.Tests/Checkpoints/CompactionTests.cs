using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class CompactionTests : IDisposable
{
    private readonly StoreScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task Prune_and_compact_then_every_remaining_snapshot_restores_bit_exactly()
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(clock: clock));
        var sources = new Dictionary<string, string>();
        var random = new Random(21);
        var source = _scratch.PathOf("live");
        TestTrees.Random(source, seed: 21, files: 30, largestFile: 100_000);
        for (var i = 0; i < 12; i++)
        {
            // Each generation rewrites a few files, deletes one and adds one.
            var files = Directory.GetFiles(source, "*.dat", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
            foreach (var file in files.Where((_, j) => j % 5 == i % 5))
            {
                File.WriteAllBytes(file, TestTrees.RandomBytes(random, random.Next(0, 60_000)));
            }

            File.Delete(files[random.Next(files.Count)]);
            File.WriteAllBytes(Path.Combine(source, $"gen{i}.dat"), TestTrees.RandomBytes(random, random.Next(1000, 80_000)));

            var copy = _scratch.PathOf($"gen{i}");
            CopyTree(source, copy);
            var info = await store.SnapshotAsync(copy);
            sources[info.Id] = copy;
            clock.Advance(TimeSpan.FromHours(1));
        }

        var before = await store.StatsAsync();
        var pruned = await store.PruneAsync(new RetentionPolicy { KeepLast = 3, KeepDaily = 1, KeepWithin = TimeSpan.Zero });
        Assert.Equal(3, pruned.Kept.Count);
        Assert.Equal(9, pruned.Removed.Count);

        var garbage = await store.StatsAsync();
        Assert.True(garbage.DeadBytes > 0);
        var compaction = await store.CompactAsync();
        Assert.True(compaction.PacksDeleted + compaction.PacksRewritten > 0);
        Assert.True(compaction.BytesFreed > 0);
        var after = await store.StatsAsync();
        Assert.True(after.PackBytes < before.PackBytes);
        Assert.True(after.DeadBytes <= garbage.DeadBytes / 5, $"dead bytes left {after.DeadBytes} of {garbage.DeadBytes}");
        Assert.All(after.PackDetails, p => Assert.True(p.DeadFraction < 0.1, $"pack {p.Id} is {p.DeadFraction:P0} dead"));

        Assert.True((await store.VerifyAsync()).IsHealthy);
        await RestoreAllAsync(store, sources.Where(s => pruned.Kept.Any(k => k.Id == s.Key)).ToDictionary());
        Assert.Equal(pruned.Kept.Select(k => k.Id).Order(), (await store.ListAsync()).Select(s => s.Id).Order());

        // And from disk, as a fresh reader sees it.
        await using var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.True((await reader.VerifyAsync()).IsHealthy);
        Assert.Single(Directory.GetFiles(Path.Combine(_scratch.Store, "index"), "*.idx"));
    }

    [Fact]
    public async Task Fully_dead_packs_are_deleted_and_a_compacted_store_compacts_to_nothing_more()
    {
        var source = _scratch.NewDirectory("source");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(1), 400_000));
        await store.SnapshotAsync(source);
        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(2), 400_000));
        var kept = await store.SnapshotAsync(source);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });

        var result = await store.CompactAsync();
        Assert.True(result.PacksDeleted >= 5);
        Assert.Equal(0, result.PacksRewritten);
        Assert.Equal(0, result.BytesCopied);
        var again = await store.CompactAsync();
        Assert.Equal(0, again.PacksDeleted + again.PacksRewritten);
        await RestoreAllAsync(store, new Dictionary<string, string> { [kept.Id] = source });
    }

    [Fact]
    public async Task Packs_below_the_threshold_are_left_alone_and_a_dry_run_changes_nothing()
    {
        var source = _scratch.NewDirectory("source");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        for (var i = 0; i < 20; i++)
        {
            File.WriteAllBytes(Path.Combine(source, $"f{i}"), TestTrees.RandomBytes(new Random(i), 30_000));
        }

        await store.SnapshotAsync(source);
        File.Delete(Path.Combine(source, "f7"));
        var kept = await store.SnapshotAsync(source);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });
        var packs = Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories).Order().ToList();

        var dry = await store.CompactAsync(new CompactionOptions { DryRun = true, DeadFractionThreshold = 0.01 });
        Assert.True(dry.DryRun);
        Assert.True(dry.PacksRewritten >= 1);
        Assert.Equal(packs, Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories).Order());

        var lenient = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0.9, SmallPackFraction = 0 });
        Assert.Equal(0, lenient.PacksRewritten);
        Assert.Equal(packs, Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories).Order());

        var strict = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0.01 });
        Assert.True(strict.PacksRewritten >= 1);
        Assert.Equal(0, (await store.StatsAsync()).DeadBytes);
        await RestoreAllAsync(store, new Dictionary<string, string> { [kept.Id] = source });
    }

    [Fact]
    public async Task Small_packs_are_merged()
    {
        var source = _scratch.NewDirectory("source");
        var options = StoreTestOptions.Small();
        options.PackTargetSize = 1 << 20;
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, options);
        var sources = new Dictionary<string, string>();
        for (var i = 0; i < 5; i++)
        {
            File.WriteAllBytes(Path.Combine(source, $"f{i}"), TestTrees.RandomBytes(new Random(i), 20_000));
            var copy = _scratch.PathOf($"copy{i}");
            CopyTree(source, copy);
            sources[(await store.SnapshotAsync(copy)).Id] = copy;
        }

        Assert.Equal(5, (await store.StatsAsync()).Packs);
        var result = await store.CompactAsync(new CompactionOptions());
        Assert.Equal(5, result.PacksRewritten);
        Assert.Equal(1, result.PacksWritten);
        Assert.Equal(1, (await store.StatsAsync()).Packs);
        await RestoreAllAsync(store, sources);
    }

    [Fact]
    public async Task Compaction_order_prefers_empty_and_old_packs_within_a_copy_budget()
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = _scratch.NewDirectory("source");
        var options = StoreTestOptions.Small(clock: clock);
        options.PackTargetSize = 1 << 20;
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, options);

        // Old pack: 4 files, 3 of which die. Young pack: 4 files, 1 of which dies.
        void Write(string prefix, int seed)
        {
            for (var i = 0; i < 4; i++)
            {
                File.WriteAllBytes(Path.Combine(source, $"{prefix}{i}"), TestTrees.RandomBytes(new Random(seed + i), 50_000));
            }
        }

        Write("old", 100);
        await store.SnapshotAsync(source);
        clock.Advance(TimeSpan.FromDays(10));
        Write("young", 200);
        await store.SnapshotAsync(source);
        File.Delete(Path.Combine(source, "old0"));
        File.Delete(Path.Combine(source, "old1"));
        File.Delete(Path.Combine(source, "old2"));
        File.Delete(Path.Combine(source, "young0"));
        clock.Advance(TimeSpan.FromDays(1));
        var kept = await store.SnapshotAsync(source);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });

        var packs = (await store.StatsAsync()).PackDetails.OrderBy(p => p.Created).ToList();
        var oldPack = packs[0];
        Assert.True(oldPack.DeadFraction > 0.7);

        // Budget for one pack's live data: the old, emptier pack wins.
        var result = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0.1, SmallPackFraction = 0, MaxCopyBytes = 60_000 });
        Assert.Equal(1, result.PacksRewritten);
        var remaining = (await store.StatsAsync()).PackDetails.Select(p => p.Id).ToList();
        Assert.DoesNotContain(oldPack.Id, remaining);
        Assert.Contains(packs[1].Id, remaining);
        await RestoreAllAsync(store, new Dictionary<string, string> { [kept.Id] = source });
    }

    [Fact]
    public async Task A_snapshot_running_during_compaction_keeps_the_garbage_chunks_it_reuses()
    {
        var gate = new PauseAt(FaultPoint.SnapshotDataWritten);
        var tree = _scratch.NewDirectory("tree");
        var other = _scratch.NewDirectory("other");
        File.WriteAllBytes(Path.Combine(tree, "data"), TestTrees.RandomBytes(new Random(1), 300_000));
        File.WriteAllBytes(Path.Combine(other, "data"), TestTrees.RandomBytes(new Random(2), 300_000));
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(faults: gate));
        await store.SnapshotAsync(tree);
        await store.SnapshotAsync(other);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 }); // the chunks of "tree" are now garbage

        gate.Armed = true;
        var running = Task.Run(() => store.SnapshotAsync(tree)); // reuses every garbage chunk
        await gate.Reached.Task;
        var compaction = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
        gate.Release();
        var info = await running;

        Assert.Equal(0, info.NewChunks);
        Assert.Equal(0, compaction.PacksDeleted); // nothing was dead after all
        await RestoreAllAsync(store, new Dictionary<string, string> { [info.Id] = tree });
        Assert.True((await store.VerifyAsync()).IsHealthy);
    }

    [Fact]
    public async Task A_snapshot_running_during_compaction_survives_chunks_being_moved_and_dropped()
    {
        var gate = new PauseAt(FaultPoint.SnapshotDataWritten);
        var source = _scratch.NewDirectory("source");
        for (var i = 0; i < 6; i++)
        {
            File.WriteAllBytes(Path.Combine(source, $"f{i}"), TestTrees.RandomBytes(new Random(i), 40_000));
        }

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(faults: gate));
        await store.SnapshotAsync(source);
        var removed = File.ReadAllBytes(Path.Combine(source, "f2"));
        File.Delete(Path.Combine(source, "f2"));
        File.Delete(Path.Combine(source, "f4"));
        var second = await store.SnapshotAsync(source);
        var secondCopy = _scratch.PathOf("second");
        CopyTree(source, secondCopy);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });

        // The running snapshot reuses live chunks that compaction moves, and writes new ones of its own.
        File.WriteAllBytes(Path.Combine(source, "new"), TestTrees.RandomBytes(new Random(99), 50_000));
        gate.Armed = true;
        var running = Task.Run(() => store.SnapshotAsync(source));
        await gate.Reached.Task;
        var compaction = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
        gate.Release();
        var third = await running;
        Assert.True(compaction.PacksRewritten + compaction.PacksDeleted > 0);
        Assert.True(compaction.ChunksCopied > 0);

        // A chunk dropped by compaction is stored afresh when it comes back.
        File.WriteAllBytes(Path.Combine(source, "f2"), removed);
        var fourth = await store.SnapshotAsync(source);
        Assert.True(fourth.NewChunks > 0);

        var thirdCopy = _scratch.PathOf("third");
        await store.RestoreAsync(third.Id, thirdCopy);
        Assert.True(File.Exists(Path.Combine(thirdCopy, "new")));
        await RestoreAllAsync(store, new Dictionary<string, string> { [second.Id] = secondCopy, [fourth.Id] = source });
        Assert.True((await store.VerifyAsync()).IsHealthy);

        await using var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.True((await reader.VerifyAsync()).IsHealthy);
    }

    internal static async Task RestoreAllAsync(CheckpointStore store, IReadOnlyDictionary<string, string> sources)
    {
        var scratch = Path.Combine(Path.GetTempPath(), "resh-store-tests", "restore-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var (id, source) in sources)
            {
                var target = Path.Combine(scratch, id);
                await store.RestoreAsync(id, target);
                TestTrees.AssertSame(source, target);
            }
        }
        finally
        {
            if (Directory.Exists(scratch))
            {
                foreach (var dir in Directory.EnumerateDirectories(scratch, "*", SearchOption.AllDirectories))
                {
                    TestTrees.MakeWritable(dir);
                }

                Directory.Delete(scratch, recursive: true);
            }
        }
    }

    internal static void CopyTree(string from, string to)
    {
        using var cp = System.Diagnostics.Process.Start("cp", ["-a", from, to]);
        cp.WaitForExit();
        Assert.Equal(0, cp.ExitCode);
    }

    /// <summary>Blocks the operation that reaches a fault point until the test releases it.</summary>
    private sealed class PauseAt(FaultPoint point) : IStoreFaults
    {
        private readonly ManualResetEventSlim _release = new();

        public bool Armed { get; set; }

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _release.Set();

        public void Hit(FaultPoint at, string? path)
        {
            if (Armed && at == point)
            {
                Armed = false;
                Reached.TrySetResult();
                _release.Wait();
            }
        }
    }
}
