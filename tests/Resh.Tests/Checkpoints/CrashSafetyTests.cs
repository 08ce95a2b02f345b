using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

/// <summary>
/// Simulated crashes: an operation is aborted by an exception at a named instant, leaving the disk
/// as a crash would (optionally also losing what was not yet fsynced); then the store is reopened,
/// verified, every committed snapshot restored bit for bit, and the store used again.
/// </summary>
public sealed class CrashSafetyTests : IDisposable
{
    private readonly StoreScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    public static TheoryData<string, FaultPoint, int, bool> Crashes => new()
    {
        { "snapshot", FaultPoint.PackWritten, 1, false },
        { "snapshot", FaultPoint.PackWritten, 1, true },
        { "snapshot", FaultPoint.PackWritten, 3, true },
        { "snapshot", FaultPoint.PackSynced, 1, false },
        { "snapshot", FaultPoint.PackSynced, 2, false },
        { "snapshot", FaultPoint.SnapshotDataWritten, 1, false },
        { "snapshot", FaultPoint.IndexTempWritten, 1, false },
        { "snapshot", FaultPoint.IndexRenamed, 1, false },
        { "snapshot", FaultPoint.IndexRenamed, 1, true },
        { "snapshot", FaultPoint.ManifestTempWritten, 1, false },
        { "snapshot", FaultPoint.ManifestRenamed, 1, false },
        { "snapshot", FaultPoint.ManifestRenamed, 1, true },
        { "prune", FaultPoint.PruneManifestDeleted, 1, false },
        { "compact", FaultPoint.PackWritten, 1, true },
        { "compact", FaultPoint.PackSynced, 1, false },
        { "compact", FaultPoint.CompactionPacksWritten, 1, false },
        { "compact", FaultPoint.IndexTempWritten, 1, false },
        { "compact", FaultPoint.IndexRenamed, 1, false },
        { "compact", FaultPoint.IndexRenamed, 1, true },
        { "compact", FaultPoint.CompactionIndexCommitted, 1, false },
        { "compact", FaultPoint.CompactionIndexDeleted, 1, false },
        { "compact", FaultPoint.CompactionIndexDeleted, 2, false },
        { "compact", FaultPoint.CompactionPackDeleted, 1, false },
        { "compact", FaultPoint.CompactionPackDeleted, 3, false },
    };

    [Theory]
    [MemberData(nameof(Crashes))]
    public async Task Every_committed_snapshot_survives_a_crash(string phase, FaultPoint point, int nth, bool loseUnsynced)
    {
        var clock = new ManualClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var crash = new CrashAt(point, nth);
        var committed = new Dictionary<string, string>();
        string? inFlight = null;              // source of a snapshot that may or may not have committed
        var maybeRemoved = new HashSet<string>();

        var a = _scratch.PathOf("a");
        TestTrees.Random(a, seed: 1, files: 40, largestFile: 120_000);
        var b = _scratch.PathOf("b");
        CompactionTests.CopyTree(a, b);
        var random = new Random(2);
        foreach (var file in Directory.GetFiles(b, "*.dat", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Where((_, i) => i % 3 == 0))
        {
            File.WriteAllBytes(file, TestTrees.RandomBytes(random, random.Next(0, 50_000)));
        }

        var c = _scratch.PathOf("c");
        TestTrees.Random(c, seed: 3, files: 30, largestFile: 200_000);

        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(crash, clock)))
        {
            var infoA = await store.SnapshotAsync(a);
            committed[infoA.Id] = a;
            clock.Advance(TimeSpan.FromHours(1));
            committed[(await store.SnapshotAsync(b)).Id] = b;
            clock.Advance(TimeSpan.FromHours(1));
            try
            {
                crash.Armed = phase == "snapshot";
                inFlight = c;
                committed[(await store.SnapshotAsync(c)).Id] = c;
                inFlight = null;

                crash.Armed = phase == "prune";
                maybeRemoved.Add(infoA.Id);
                await store.PruneAsync(new RetentionPolicy { KeepLast = 2 });
                committed.Remove(infoA.Id);
                maybeRemoved.Clear();

                crash.Armed = phase == "compact";
                await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
            }
            catch (InjectedFaultException e)
            {
                Assert.Equal(point, e.Point);
            }
        }

        Assert.True(crash.Fired, $"the scenario never reached {point} #{nth} during {phase}");
        if (loseUnsynced)
        {
            LoseUnsyncedWrites(point, crash.Path!);
        }

        // Recovery: reopen as the next writer would.
        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(clock: clock)))
        {
            var listed = (await store.ListAsync()).ToDictionary(s => s.Id);
            foreach (var id in committed.Keys.Where(id => !maybeRemoved.Contains(id)))
            {
                Assert.True(listed.ContainsKey(id), $"committed snapshot {id} ({Path.GetFileName(committed[id])}) is gone");
            }

            var expected = new Dictionary<string, string>();
            foreach (var id in listed.Keys)
            {
                if (committed.TryGetValue(id, out var source))
                {
                    expected[id] = source;
                }
                else
                {
                    Assert.True(inFlight is not null, $"unexpected snapshot {id}");
                    expected[id] = inFlight;
                }
            }

            var report = await store.VerifyAsync();
            Assert.True(report.IsHealthy, Describe(report));
            Assert.Empty(report.UnreferencedPacks);
            Assert.Empty(Directory.GetFiles(_scratch.Store, ".tmp-*", SearchOption.AllDirectories));
            await CompactionTests.RestoreAllAsync(store, expected);

            // The store works on: a new snapshot, a prune and a compaction.
            clock.Advance(TimeSpan.FromHours(1));
            var d = await store.SnapshotAsync(c);
            expected[d.Id] = c;
            await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
            Assert.True((await store.VerifyAsync()).IsHealthy);
            await CompactionTests.RestoreAllAsync(store, expected);
        }
    }

    [Fact]
    public async Task A_crash_during_the_first_snapshot_leaves_an_empty_healthy_store()
    {
        var crash = new CrashAt(FaultPoint.IndexRenamed, 1) { Armed = true };
        var source = _scratch.PathOf("source");
        TestTrees.Random(source, seed: 4, files: 10);
        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(crash)))
        {
            await Assert.ThrowsAsync<InjectedFaultException>(() => store.SnapshotAsync(source));
        }

        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            Assert.Empty(await store.ListAsync());
            Assert.True((await store.VerifyAsync()).IsHealthy);
            // The index was committed, the manifest not: its packs are garbage that compaction collects.
            var packs = (await store.StatsAsync()).Packs;
            Assert.True(packs > 0);
            Assert.Equal(packs, (await store.CompactAsync()).PacksDeleted);
            Assert.Equal(0, (await store.StatsAsync()).Packs);
        }
    }

    [Fact]
    public async Task A_failed_snapshot_removes_its_own_packs_at_once()
    {
        var source = _scratch.PathOf("source");
        TestTrees.Random(source, seed: 5, files: 20);
        var unreadable = Path.Combine(source, "zzz-vanishing");
        File.WriteAllText(unreadable, "x");
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small(new DeleteOnFirstPack(unreadable)));
        await Assert.ThrowsAsync<FileNotFoundException>(() => store.SnapshotAsync(source));
        Assert.Empty(Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories));
        Assert.Empty(await store.ListAsync());
    }

    private static void LoseUnsyncedWrites(FaultPoint point, string path)
    {
        switch (point)
        {
            case FaultPoint.PackWritten:
                // The kernel had not written the pack out: keep only a prefix of it.
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
                {
                    stream.SetLength(stream.Length / 2);
                }

                break;
            case FaultPoint.IndexRenamed or FaultPoint.ManifestRenamed:
                // The rename had not reached the disk.
                File.Delete(path);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(point), point, "nothing unsynced at this point");
        }
    }

    private static string Describe(VerifyReport report) => string.Join("; ",
        report.DamagedChunks.Select(c => $"chunk {c.Chunk.ToShortString()} in {c.Pack}: {c.Reason}")
            .Concat(report.DamagedPacks.Select(p => $"pack {p.Id}: {p.Reason}"))
            .Concat(report.DamagedSnapshots.Select(s => $"snapshot {s.Id}: {s.Reason}"))
            .Concat(report.DamagedIndexFiles.Select(i => $"index {i.Id}: {i.Reason}")));

    /// <summary>Throws <see cref="InjectedFaultException"/> at the nth hit of a point while armed.</summary>
    private sealed class CrashAt(FaultPoint point, int nth) : IStoreFaults
    {
        private int _count;
        private volatile bool _armed;

        public bool Armed
        {
            get => _armed;
            set => _armed = value;
        }

        public bool Fired { get; private set; }

        public string? Path { get; private set; }

        public void Hit(FaultPoint at, string? path)
        {
            if (_armed && at == point && Interlocked.Increment(ref _count) == nth)
            {
                _armed = false;
                Fired = true;
                Path = path;
                throw new InjectedFaultException(at);
            }
        }
    }

    /// <summary>Makes an ordinary (not injected) failure happen mid-snapshot: a file vanishes after the first pack.</summary>
    private sealed class DeleteOnFirstPack(string victim) : IStoreFaults
    {
        public void Hit(FaultPoint at, string? path)
        {
            if (at == FaultPoint.PackWritten && File.Exists(victim))
            {
                File.Delete(victim);
            }
        }
    }
}
