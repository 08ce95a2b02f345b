using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class CheckpointStoreTests : IDisposable
{
    private readonly StoreScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Random_trees_round_trip_bit_exactly(int seed)
    {
        var source = _scratch.PathOf("source");
        TestTrees.Random(source, seed);
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source, new Dictionary<string, string> { ["log-position"] = "1234" });

        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        TestTrees.AssertSame(source, target);
        Assert.Equal("1234", info.Labels["log-position"]);
        Assert.Equal(16, info.Id.Length);
        Assert.True((await store.VerifyAsync()).IsHealthy);
    }

    [Fact]
    public async Task Restore_and_verify_report_their_progress_up_to_the_whole()
    {
        var source = _scratch.PathOf("source");
        TestTrees.Random(source, seed: 4);
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source);

        var restore = new Recorder();
        await store.RestoreAsync(info.Id, _scratch.PathOf("restored"), progress: restore);
        Assert.Equal(info.LogicalBytes, restore.Last.Total);
        Assert.Equal(restore.Last.Total, restore.Last.Done);
        Assert.True(restore.Count > 2, $"{restore.Count} reports");

        var verify = new Recorder();
        Assert.True((await store.VerifyAsync(progress: verify)).IsHealthy);
        Assert.True(verify.Last.Total > 0);
        Assert.Equal(verify.Last.Total, verify.Last.Done);
    }

    /// <summary>Keeps the furthest report (reports come from several threads, in any order).</summary>
    private sealed class Recorder : IProgress<StoreProgress>
    {
        private readonly Lock _lock = new();

        public StoreProgress Last { get; private set; }

        public int Count { get; private set; }

        public void Report(StoreProgress value)
        {
            lock (_lock)
            {
                Count++;
                if (value.Done >= Last.Done)
                {
                    Last = value;
                }
            }
        }
    }

    [Fact]
    public async Task Larger_files_round_trip_with_default_chunk_and_pack_sizes()
    {
        var source = _scratch.NewDirectory("source");
        TestTrees.LargeFile(Path.Combine(source, "dump.rdb"), 24L << 20, seed: 1);
        TestTrees.LargeFile(Path.Combine(source, "exactly-max-chunk"), StoreOptions.DefaultMaxChunkSize, seed: 2);
        TestTrees.LargeFile(Path.Combine(source, "max-chunk-plus-one"), StoreOptions.DefaultMaxChunkSize + 1, seed: 3);
        File.WriteAllBytes(Path.Combine(source, "empty"), []);
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store);
        var info = await store.SnapshotAsync(source);
        Assert.Equal(4, info.Files);

        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        TestTrees.AssertSame(source, target);
        var stats = await store.StatsAsync();
        Assert.True(stats.Packs >= 2, "32 MiB of data fills more than one 16 MiB pack");
        Assert.All(stats.PackDetails, p => Assert.True(p.Size < StoreOptions.DefaultPackTargetSize + StoreOptions.DefaultMaxChunkSize + 4096));
    }

    [Fact]
    public async Task A_hundred_mebibyte_file_round_trips()
    {
        var source = _scratch.NewDirectory("source");
        TestTrees.LargeFile(Path.Combine(source, "big"), 100L << 20, seed: 9);
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store);
        var info = await store.SnapshotAsync(source);
        Assert.Equal(100L << 20, info.LogicalBytes);
        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        TestTrees.AssertSame(source, target);
    }

    [Fact]
    public async Task An_empty_directory_round_trips()
    {
        var source = _scratch.NewDirectory("source");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source);
        Assert.Equal(0, info.Files);
        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        Assert.Empty(Directory.EnumerateFileSystemEntries(target));
    }

    [Fact]
    public async Task A_second_snapshot_after_a_one_percent_change_stores_little()
    {
        var source = _scratch.NewDirectory("source");
        var random = new Random(11);
        for (var i = 0; i < 8; i++)
        {
            File.WriteAllBytes(Path.Combine(source, $"f{i}"), i % 2 == 0 ? TestTrees.RandomBytes(random, 1 << 20) : TestTrees.RedundantText(random, 1 << 20));
        }

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var first = await store.SnapshotAsync(source);

        // 1% of 8 MiB, in 16 scattered places, plus an insertion that shifts the rest of a file.
        for (var i = 0; i < 16; i++)
        {
            var path = Path.Combine(source, $"f{i % 8}");
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
            stream.Position = random.Next(0, (1 << 20) - 5000);
            stream.Write(TestTrees.RandomBytes(random, 5000));
        }

        var f3 = File.ReadAllBytes(Path.Combine(source, "f3"));
        File.WriteAllBytes(Path.Combine(source, "f3"), [.. f3[..500_000], .. "inserted"u8, .. f3[500_000..]]);
        var second = await store.SnapshotAsync(source);

        Assert.True(second.AddedBytes < first.AddedBytes * 5 / 100, $"second snapshot added {second.AddedBytes} of {first.AddedBytes}");
        Assert.True(second.ReusedChunks > second.NewChunks * 10);
        var stats = await store.StatsAsync();
        // Two snapshots of the same 8 MiB: about 2x, less the metadata of 4 KiB chunks (headers, index, manifests).
        Assert.True(stats.DedupRatio > 1.75, $"dedup ratio {stats.DedupRatio}");

        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(second.Id, target);
        TestTrees.AssertSame(source, target);
    }

    [Fact]
    public async Task Identical_content_is_stored_once_across_files_and_snapshots()
    {
        var source = _scratch.NewDirectory("source");
        var data = TestTrees.RandomBytes(new Random(5), 200_000);
        File.WriteAllBytes(Path.Combine(source, "a"), data);
        File.WriteAllBytes(Path.Combine(source, "b"), data);
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var first = await store.SnapshotAsync(source);
        var second = await store.SnapshotAsync(source);

        Assert.Equal(0, second.NewChunks);
        Assert.Equal(0, second.AddedBytes);
        var stats = await store.StatsAsync();
        Assert.InRange(stats.UniqueBytes, 200_000, 200_000);
        Assert.InRange(first.AddedBytes, 200_000, 230_000);
    }

    [Theory]
    [InlineData(ChunkCompression.Zstd)]
    [InlineData(ChunkCompression.Brotli)]
    public async Task Compression_round_trips_and_shrinks_redundant_data(ChunkCompression compression)
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "aof"), TestTrees.RedundantText(new Random(3), 2 << 20));
        File.WriteAllBytes(Path.Combine(source, "random"), TestTrees.RandomBytes(new Random(4), 1 << 20));
        var options = StoreTestOptions.Small();
        options.Compression = compression;
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, options);
        var info = await store.SnapshotAsync(source);
        Assert.True(info.AddedBytes < (2 << 20), $"added {info.AddedBytes}");
        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        TestTrees.AssertSame(source, target);
        Assert.True((await store.VerifyAsync()).IsHealthy);
    }

    [Fact]
    public async Task A_store_reads_the_chunks_of_every_codec_it_wrote()
    {
        var ids = new List<(string Id, string Source)>();
        foreach (var (compression, seed) in new[] { (ChunkCompression.None, 1), (ChunkCompression.Brotli, 2), (ChunkCompression.Zstd, 3) })
        {
            var source = _scratch.NewDirectory($"source-{compression}");
            File.WriteAllBytes(Path.Combine(source, "aof"), TestTrees.RedundantText(new Random(seed), 300_000));
            File.WriteAllBytes(Path.Combine(source, "shared"), TestTrees.RedundantText(new Random(99), 100_000));
            var options = StoreTestOptions.Small();
            options.Compression = compression;
            await using var writer = await CheckpointStore.OpenAsync(_scratch.Store, options);
            ids.Add(((await writer.SnapshotAsync(source)).Id, source));
        }

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.True((await store.VerifyAsync()).IsHealthy);
        foreach (var (id, source) in ids)
        {
            var target = _scratch.PathOf("restored-" + id);
            await store.RestoreAsync(id, target);
            TestTrees.AssertSame(source, target);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public async Task A_parallel_restore_of_many_files_across_many_packs_is_bit_exact(int parallelism)
    {
        // Tiny packs: far more packs than the reader keeps open, so handles are evicted while leased.
        var source = _scratch.PathOf("source");
        TestTrees.Random(source, seed: 7, files: 150);
        TestTrees.LargeFile(Path.Combine(source, "large"), 3 << 20, seed: 8);
        var options = StoreTestOptions.Small();
        options.PackTargetSize = 16 * 1024;
        options.RestoreParallelism = parallelism;
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, options);
        var info = await store.SnapshotAsync(source);
        Assert.True((await store.StatsAsync()).Packs > 32, "more packs than the reader's cache holds");

        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        TestTrees.AssertSame(source, target);
    }

    [Fact]
    public async Task Snapshots_are_listed_oldest_first_and_found_by_prefix_or_latest()
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = _scratch.NewDirectory("source");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(clock: clock));
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            File.WriteAllText(Path.Combine(source, "counter"), i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            ids.Add((await store.SnapshotAsync(source, new Dictionary<string, string> { ["n"] = $"{i}" })).Id);
            clock.Advance(TimeSpan.FromMinutes(1));
        }

        var list = await store.ListAsync();
        Assert.Equal(ids, list.Select(s => s.Id));
        Assert.Equal(ids[2], (await store.FindSnapshotAsync("latest")).Id);
        Assert.Equal(ids[1], (await store.FindSnapshotAsync(ids[1][..8])).Id);
        Assert.Equal("1", (await store.FindSnapshotAsync(ids[1])).Labels["n"]);
        var missing = await Assert.ThrowsAsync<SnapshotNotFoundException>(() => store.FindSnapshotAsync("0000000000000000"));
        Assert.Contains("0000000000000000", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reader_sees_what_the_writer_commits_and_cannot_write()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllText(Path.Combine(source, "x"), "x");
        await using var writer = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        await using var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.Empty(await reader.ListAsync());
        var info = await writer.SnapshotAsync(source);
        Assert.Equal([info.Id], (await reader.ListAsync()).Select(s => s.Id));
        await reader.RestoreAsync(info.Id, _scratch.PathOf("restored"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => reader.SnapshotAsync(source));
        await Assert.ThrowsAsync<InvalidOperationException>(() => reader.CompactAsync());
    }

    [Fact]
    public async Task Opening_reports_a_missing_store_and_refuses_a_foreign_directory()
    {
        var missing = await Assert.ThrowsAsync<StoreNotFoundException>(() => CheckpointStore.OpenAsync(_scratch.PathOf("nothing"), StoreTestOptions.Reader()));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);

        var foreign = _scratch.NewDirectory("foreign");
        File.WriteAllText(Path.Combine(foreign, "precious.txt"), "keep me");
        var refused = await Assert.ThrowsAsync<StoreNotFoundException>(() => CheckpointStore.OpenAsync(foreign));
        Assert.Contains("precious.txt", refused.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(foreign, "precious.txt")));

        var notStore = await Assert.ThrowsAsync<StoreNotFoundException>(() => CheckpointStore.OpenAsync(foreign, StoreTestOptions.Reader()));
        Assert.Contains("config.json", notStore.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_are_validated_with_messages_naming_the_setting()
    {
        var options = new StoreOptions { MinChunkSize = 10, AverageChunkSize = 3000, MaxChunkSize = 100, PackTargetSize = 10 };
        var errors = options.Validate();
        Assert.Contains(errors, e => e.StartsWith("store.min-chunk-size", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("store.average-chunk-size must be a power of two", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("store.max-chunk-size", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("store.pack-target-size", StringComparison.Ordinal));
        Assert.Contains(new StoreOptions { CompressionLevel = 0 }.Validate(), e => e.StartsWith("store.compression-level", StringComparison.Ordinal));
        Assert.Contains(new StoreOptions { RestoreParallelism = -1 }.Validate(), e => e.StartsWith("store.restore-parallelism", StringComparison.Ordinal));
        Assert.Empty(new StoreOptions().Validate());
        Assert.Contains(new CompactionOptions { DeadFractionThreshold = 2 }.Validate(), e => e.StartsWith("compaction.dead-fraction-threshold", StringComparison.Ordinal));
        await Assert.ThrowsAsync<ArgumentException>(() => CheckpointStore.OpenAsync(_scratch.Store, options));
    }

    [Fact]
    public async Task Chunk_sizes_are_fixed_when_the_store_is_created()
    {
        (await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small())).Dispose();
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store);
        Assert.Equal((1024, 4096, 16 * 1024), store.ChunkSizes);
    }

    [Fact]
    public async Task Restore_refuses_a_non_empty_target_and_an_unknown_snapshot()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllText(Path.Combine(source, "x"), "x");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source);
        await Assert.ThrowsAsync<IOException>(() => store.RestoreAsync(info.Id, source));
        var unknown = await Assert.ThrowsAsync<SnapshotNotFoundException>(() => store.RestoreAsync("deadbeefdeadbeef", _scratch.PathOf("t")));
        Assert.Contains("deadbeefdeadbeef", unknown.Message, StringComparison.Ordinal);
        Assert.Contains(_scratch.Store, unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leftovers_of_interrupted_writes_are_removed_when_a_writer_opens_and_kept_for_readers()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "x"), TestTrees.RandomBytes(new Random(1), 100_000));
        string id;
        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            id = (await store.SnapshotAsync(source)).Id;
        }

        var orphanPack = Path.Combine(_scratch.Store, "packs", "ab", "ab" + new string('0', 30) + ".pack");
        Directory.CreateDirectory(Path.GetDirectoryName(orphanPack)!);
        File.WriteAllBytes(orphanPack, new byte[1000]);
        var tempIndex = Path.Combine(_scratch.Store, "index", ".tmp-0123");
        var tempManifest = Path.Combine(_scratch.Store, "snapshots", ".tmp-4567");
        File.WriteAllBytes(tempIndex, new byte[10]);
        File.WriteAllBytes(tempManifest, new byte[10]);

        await using (var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader()))
        {
            var report = await reader.VerifyAsync();
            Assert.True(report.IsHealthy);
            Assert.Equal([Path.GetFileNameWithoutExtension(orphanPack)], report.UnreferencedPacks);
        }

        Assert.True(File.Exists(orphanPack));
        await using (var writer = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            Assert.False(File.Exists(orphanPack));
            Assert.False(File.Exists(tempIndex));
            Assert.False(File.Exists(tempManifest));
            await writer.RestoreAsync(id, _scratch.PathOf("restored"));
        }
    }

    [Fact]
    public async Task A_store_kept_inside_the_tree_it_snapshots_is_left_out()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllText(Path.Combine(source, "data"), "data");
        var storePath = Path.Combine(source, "store");
        await using var store = await CheckpointStore.OpenAsync(storePath, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source);
        Assert.Equal(1, info.Files);
        Assert.Equal(0, info.Directories);
    }

    [Fact]
    public async Task Special_files_are_skipped()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllText(Path.Combine(source, "regular"), "data");
        var fifo = Path.Combine(source, "fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", fifo))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var info = await store.SnapshotAsync(source);
        Assert.Equal(1, info.Files);
        var target = _scratch.PathOf("restored");
        await store.RestoreAsync(info.Id, target);
        Assert.Equal(["regular"], Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Stats_report_logical_and_stored_bytes_and_dead_space()
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(1), 300_000));
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(clock: clock));
        await store.SnapshotAsync(source);
        clock.Advance(TimeSpan.FromHours(1));
        await store.SnapshotAsync(source);
        var stats = await store.StatsAsync();
        Assert.Equal(2, stats.Snapshots);
        Assert.Equal(600_000, stats.LogicalBytes);
        Assert.Equal(300_000, stats.UniqueBytes);
        Assert.InRange(stats.DedupRatio, 1.8, 2.0);
        Assert.Equal(0, stats.DeadBytes);

        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(2), 300_000));
        clock.Advance(TimeSpan.FromHours(1));
        await store.SnapshotAsync(source);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });
        stats = await store.StatsAsync();
        Assert.Equal(1, stats.Snapshots);
        Assert.InRange(stats.DeadBytes, 300_000, 320_000);
        Assert.Equal(stats.DeadBytes, stats.PackDetails.Sum(p => p.DeadBytes));
        Assert.Contains(stats.PackDetails, p => p.DeadFraction == 1);
    }
}
