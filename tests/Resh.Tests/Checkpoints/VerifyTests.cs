using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class VerifyTests : IDisposable
{
    private readonly StoreScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public async Task A_flipped_byte_in_a_chunk_names_the_chunk_the_pack_the_snapshot_and_the_file()
    {
        var (first, second, firstPacks) = await TwoDisjointSnapshotsAsync();
        var pack = firstPacks[0];
        var path = PackPath(pack);
        FlipByte(path, PackFormat.HeaderSize + PackFormat.RecordHeaderSize + 100); // inside the first record's payload

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        var report = await store.VerifyAsync();
        Assert.False(report.IsHealthy);
        var chunk = Assert.Single(report.DamagedChunks);
        Assert.Equal(pack, chunk.Pack);
        Assert.Contains("SHA-256", chunk.Reason, StringComparison.Ordinal);
        Assert.Equal(pack, Assert.Single(report.DamagedPacks).Id);
        var snapshot = Assert.Single(report.DamagedSnapshots);
        Assert.Equal(first.Id, snapshot.Id);
        Assert.Equal(["first/data"], snapshot.DamagedFiles);

        // Restore of the damaged snapshot fails naming chunk, pack and file; the other one is fine.
        var error = await Assert.ThrowsAsync<ChunkCorruptedException>(() => store.RestoreAsync(first.Id, _scratch.PathOf("r1")));
        Assert.Equal(pack, error.Pack);
        Assert.Contains("first/data", error.Message, StringComparison.Ordinal);
        await store.RestoreAsync(second.Id, _scratch.PathOf("r2"));
        TestTrees.AssertSame(_scratch.PathOf("second"), _scratch.PathOf("r2"));
    }

    [Fact]
    public async Task A_flipped_byte_in_a_compressed_chunk_is_named_by_verify_and_restore()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "aof"), TestTrees.RedundantText(new Random(5), 8_000));
        var options = StoreTestOptions.Small();
        options.Compression = ChunkCompression.Zstd;
        string pack;
        string id;
        await using (var writer = await CheckpointStore.OpenAsync(_scratch.Store, options))
        {
            id = (await writer.SnapshotAsync(source)).Id;
            pack = Assert.Single((await writer.StatsAsync()).PackDetails).Id;
        }

        FlipByte(PackPath(pack), PackFormat.HeaderSize + PackFormat.RecordHeaderSize + 20); // inside the first compressed payload

        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        var damaged = Assert.Single((await store.VerifyAsync()).DamagedChunks);
        Assert.Equal(pack, damaged.Pack);
        var error = await Assert.ThrowsAsync<ChunkCorruptedException>(() => store.RestoreAsync(id, _scratch.PathOf("restored")));
        Assert.Contains("aof", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Damage_anywhere_in_a_pack_is_found()
    {
        var (_, _, firstPacks) = await TwoDisjointSnapshotsAsync();
        var path = PackPath(firstPacks[0]);
        var length = new FileInfo(path).Length;
        var original = await File.ReadAllBytesAsync(path);
        // Pack header, a record header, its chunk id, the footer entries, the footer tail.
        long[] offsets = [3, 13, PackFormat.HeaderSize + 9, PackFormat.HeaderSize + 20, length - PackFormat.TailSize - 10, length - 6, length - 1];
        foreach (var offset in offsets)
        {
            await File.WriteAllBytesAsync(path, original);
            FlipByte(path, offset);
            await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
            var report = await store.VerifyAsync();
            Assert.False(report.IsHealthy, $"flip at {offset} of {length} went unnoticed");
            Assert.Contains(report.DamagedPacks, p => p.Id == firstPacks[0]);
        }

        await File.WriteAllBytesAsync(path, original);
        await using var healed = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        Assert.True((await healed.VerifyAsync()).IsHealthy);
    }

    [Fact]
    public async Task Damage_in_an_unreferenced_record_damages_the_pack_but_no_snapshot()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(1), 3000));
        File.WriteAllBytes(Path.Combine(source, "b"), TestTrees.RandomBytes(new Random(2), 3000));
        string pack;
        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            await store.SnapshotAsync(source);
            File.Delete(Path.Combine(source, "a"));
            await store.SnapshotAsync(source);
            await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });
            pack = Assert.Single((await store.StatsAsync()).PackDetails).Id;
        }

        FlipByte(PackPath(pack), PackFormat.HeaderSize + PackFormat.RecordHeaderSize + 5); // the record of "a": dead now
        await using var reader = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader());
        var report = await reader.VerifyAsync();
        Assert.Contains(report.DamagedChunks, c => c.Pack == pack);
        Assert.Empty(report.DamagedSnapshots);
        Assert.False(report.IsHealthy);
    }

    [Fact]
    public async Task A_missing_pack_a_damaged_manifest_and_a_damaged_index_are_named()
    {
        var (first, second, firstPacks) = await TwoDisjointSnapshotsAsync();
        File.Delete(PackPath(firstPacks[^1]));
        var manifest = Path.Combine(_scratch.Store, "snapshots", second.Id + ".json");
        var json = await File.ReadAllTextAsync(manifest);
        await File.WriteAllTextAsync(manifest, json.Replace("\"data\"", "\"date\"", StringComparison.Ordinal));

        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader()))
        {
            var report = await store.VerifyAsync();
            Assert.Contains(report.DamagedPacks, p => p.Id == firstPacks[^1] && p.Reason.Contains("missing", StringComparison.Ordinal));
            Assert.Contains(report.DamagedSnapshots, s => s.Id == first.Id);
            Assert.Contains(report.DamagedSnapshots, s => s.Id == second.Id && s.Reason.Contains("does not match its id", StringComparison.Ordinal));
            Assert.DoesNotContain(await store.ListAsync(), s => s.Id == second.Id);
        }

        var index = Directory.GetFiles(Path.Combine(_scratch.Store, "index"), "*.idx")[0];
        FlipByte(index, 40);
        IReadOnlyList<string> packsOfDamagedIndex;
        await using (var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Reader()))
        {
            var report = await store.VerifyAsync();
            Assert.Contains(report.DamagedIndexFiles, i => i.Id == Path.GetFileNameWithoutExtension(index));
            packsOfDamagedIndex = report.UnreferencedPacks;
            Assert.NotEmpty(packsOfDamagedIndex);
        }

        // A writer collects no packs while an index file is damaged (they may be its packs), and
        // compaction neither supersedes nor deletes the damaged file.
        var packsBefore = Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories).Length;
        await using (var writer = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            Assert.Equal(packsBefore, Directory.GetFiles(_scratch.Store, "*.pack", SearchOption.AllDirectories).Length);
            await writer.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
        }

        await using (await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small()))
        {
            Assert.True(File.Exists(index));
            Assert.All(packsOfDamagedIndex, id => Assert.True(File.Exists(PackPath(id)), $"pack {id} of the damaged index was deleted"));
        }
    }

    [Fact]
    public async Task Compaction_leaves_a_pack_with_a_damaged_live_chunk_alone()
    {
        var source = _scratch.NewDirectory("source");
        File.WriteAllBytes(Path.Combine(source, "a"), TestTrees.RandomBytes(new Random(1), 3000));
        File.WriteAllBytes(Path.Combine(source, "b"), TestTrees.RandomBytes(new Random(2), 3000));
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        await store.SnapshotAsync(source);
        File.Delete(Path.Combine(source, "a"));
        await store.SnapshotAsync(source);
        await store.PruneAsync(new RetentionPolicy { KeepLast = 1 });
        var pack = Assert.Single((await store.StatsAsync()).PackDetails).Id;
        var path = PackPath(pack);
        FlipByte(path, new FileInfo(path).Length - PackFormat.TailSize - (2 * PackFormat.EntrySize) - 100); // inside "b", the live record

        var result = await store.CompactAsync(new CompactionOptions { DeadFractionThreshold = 0 });
        Assert.Equal([pack], result.SkippedDamagedPacks);
        Assert.True(File.Exists(path));
    }

    private async Task<(SnapshotInfo First, SnapshotInfo Second, List<string> FirstPacks)> TwoDisjointSnapshotsAsync()
    {
        var first = _scratch.NewDirectory("first");
        var second = _scratch.NewDirectory("second");
        Directory.CreateDirectory(Path.Combine(first, "first"));
        File.WriteAllBytes(Path.Combine(first, "first", "data"), TestTrees.RandomBytes(new Random(1), 200_000));
        File.WriteAllBytes(Path.Combine(second, "data"), TestTrees.RandomBytes(new Random(2), 200_000));
        await using var store = await CheckpointStore.OpenAsync(_scratch.Store, StoreTestOptions.Small());
        var a = await store.SnapshotAsync(first);
        var firstPacks = (await store.StatsAsync()).PackDetails.Select(p => p.Id).ToList();
        var b = await store.SnapshotAsync(second);
        return (a, b, firstPacks);
    }

    private string PackPath(string id) => Path.Combine(_scratch.Store, "packs", id[..2], id + ".pack");

    private static void FlipByte(string path, long offset)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = offset;
        var b = stream.ReadByte();
        stream.Position = offset;
        stream.WriteByte((byte)(b ^ 0x20));
    }
}

public sealed class FormatTests
{
    [Fact]
    public void Index_files_round_trip_and_detect_damage()
    {
        var entries = Enumerable.Range(0, 5).Select(i => new PackEntry(ChunkId.Compute([(byte)i]), 16 + (i * 100), 48, 50, (byte)(i % 2))).ToArray();
        var packs = new[] { new PackInfo(PackWriter.NewId(), 12345, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123), entries) };
        var superseded = new[] { IndexFile.NewId(), IndexFile.NewId() };
        var bytes = IndexFile.Encode(packs, superseded);

        Assert.Null(IndexFile.Decode(bytes, out var decoded, out var replaced));
        Assert.Equal(superseded, replaced);
        var pack = Assert.Single(decoded);
        Assert.Equal(packs[0].Id, pack.Id);
        Assert.Equal(12345, pack.Size);
        Assert.Equal(packs[0].Created, pack.Created);
        Assert.Equal(entries, pack.Entries);

        for (var i = 0; i < bytes.Length; i += 7)
        {
            var copy = bytes.ToArray();
            copy[i] ^= 1;
            Assert.NotNull(IndexFile.Decode(copy, out _, out _));
        }

        Assert.NotNull(IndexFile.Decode(bytes.AsSpan(0, bytes.Length - 1), out _, out _));
    }

    [Fact]
    public void Record_headers_detect_every_single_bit_flip()
    {
        var header = new byte[PackFormat.RecordHeaderSize];
        var id = ChunkId.Compute("hello"u8);
        PackFormat.WriteRecordHeader(header, id, 5, 5, 0);
        Assert.Null(PackFormat.ReadRecordHeader(header, 16, out var entry));
        Assert.Equal(new PackEntry(id, 16, 5, 5, 0), entry);
        for (var bit = 0; bit < header.Length * 8; bit++)
        {
            header[bit / 8] ^= (byte)(1 << (bit % 8));
            Assert.NotNull(PackFormat.ReadRecordHeader(header, 16, out _));
            header[bit / 8] ^= (byte)(1 << (bit % 8));
        }
    }

    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, PackFormat.Crc32C("123456789"u8));
        Assert.Equal(0u, PackFormat.Crc32C([]));
    }

    [Fact]
    public void Chunk_ids_parse_print_and_compare()
    {
        var id = ChunkId.Compute("abc"u8);
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", id.ToString());
        Assert.Equal(id, ChunkId.Parse(id.ToString()));
        Assert.False(ChunkId.TryParse("xyz", out _));
        Assert.Equal("ba7816bf8f01", id.ToShortString());
        Assert.True(ChunkId.Compute("a"u8) != id);
    }
}
