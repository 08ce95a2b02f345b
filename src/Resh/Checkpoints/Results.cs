namespace Resh.Checkpoints;

/// <summary>A committed snapshot as listed by the store.</summary>
public sealed class SnapshotInfo
{
    /// <summary>First 16 hex digits of the SHA-256 of the snapshot's manifest.</summary>
    public required string Id { get; init; }

    public required DateTimeOffset Time { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public int Files { get; init; }

    public int Directories { get; init; }

    /// <summary>Sum of the sizes of the snapshot's files.</summary>
    public long LogicalBytes { get; init; }

    /// <summary>Pack bytes the snapshot added when it was taken (its new chunks).</summary>
    public long AddedBytes { get; init; }

    public int NewChunks { get; init; }

    public int ReusedChunks { get; init; }
}

/// <summary>Sizes of a store: see <see cref="CheckpointStore.StatsAsync"/>.</summary>
public sealed class StoreStats
{
    public int Snapshots { get; init; }

    public int Packs { get; init; }

    /// <summary>Distinct chunks in the index.</summary>
    public int Chunks { get; init; }

    /// <summary>Distinct chunks referenced by at least one snapshot.</summary>
    public int LiveChunks { get; init; }

    /// <summary>Sum over snapshots of their file sizes: what a full copy of each would take.</summary>
    public long LogicalBytes { get; init; }

    /// <summary>Uncompressed size of the live chunks.</summary>
    public long UniqueBytes { get; init; }

    /// <summary>Size of all pack files.</summary>
    public long PackBytes { get; init; }

    /// <summary>Size of every file of the store (packs, index, manifests, config).</summary>
    public long TotalBytes { get; init; }

    /// <summary>Record bytes in packs that no snapshot needs: what compaction can reclaim.</summary>
    public long DeadBytes { get; init; }

    /// <summary><see cref="LogicalBytes"/> / <see cref="TotalBytes"/>; 0 for an empty store.</summary>
    public double DedupRatio => TotalBytes == 0 ? 0 : (double)LogicalBytes / TotalBytes;

    public required IReadOnlyList<PackStats> PackDetails { get; init; }
}

public sealed class PackStats
{
    public required string Id { get; init; }

    public long Size { get; init; }

    public long LiveBytes { get; init; }

    public long DeadBytes { get; init; }

    public int Records { get; init; }

    public int LiveRecords { get; init; }

    public DateTimeOffset Created { get; init; }

    /// <summary>Dead share of the pack's record bytes.</summary>
    public double DeadFraction => LiveBytes + DeadBytes == 0 ? 1 : (double)DeadBytes / (LiveBytes + DeadBytes);
}

public sealed class PruneResult
{
    public required IReadOnlyList<SnapshotInfo> Kept { get; init; }

    public required IReadOnlyList<SnapshotInfo> Removed { get; init; }

    /// <summary>Why each kept snapshot is kept, by id.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> Reasons { get; init; }

    public bool DryRun { get; init; }
}

public sealed class CompactionResult
{
    /// <summary>Packs whose live chunks were copied into new packs, then deleted.</summary>
    public int PacksRewritten { get; init; }

    /// <summary>Packs that held nothing live and were simply deleted.</summary>
    public int PacksDeleted { get; init; }

    public int PacksWritten { get; init; }

    public int ChunksCopied { get; init; }

    public long BytesCopied { get; init; }

    /// <summary>Pack bytes removed minus pack bytes written.</summary>
    public long BytesFreed { get; init; }

    /// <summary>Candidate packs left alone because a live chunk in them is damaged.</summary>
    public IReadOnlyList<string> SkippedDamagedPacks { get; init; } = [];

    public bool DryRun { get; init; }
}

/// <summary>What <see cref="CheckpointStore.VerifyAsync"/> found.</summary>
public sealed class VerifyReport
{
    public int SnapshotsChecked { get; init; }

    public int PacksChecked { get; init; }

    public int ChunksChecked { get; init; }

    public long BytesRead { get; init; }

    public required IReadOnlyList<DamagedChunk> DamagedChunks { get; init; }

    public required IReadOnlyList<DamagedItem> DamagedPacks { get; init; }

    public required IReadOnlyList<DamagedSnapshot> DamagedSnapshots { get; init; }

    public required IReadOnlyList<DamagedItem> DamagedIndexFiles { get; init; }

    /// <summary>Pack files no index lists (left by a crash; a writer deletes them when it opens the store). Not damage.</summary>
    public required IReadOnlyList<string> UnreferencedPacks { get; init; }

    public bool IsHealthy => DamagedChunks.Count == 0 && DamagedPacks.Count == 0 && DamagedSnapshots.Count == 0 && DamagedIndexFiles.Count == 0;
}

public sealed record DamagedItem(string Id, string Reason);

public sealed record DamagedChunk(ChunkId Chunk, string Pack, string Reason);

public sealed record DamagedSnapshot(string Id, string Reason, IReadOnlyList<string> DamagedFiles);

/// <summary>How far a long store operation is: <paramref name="Done"/> bytes of <paramref name="Total"/>.</summary>
public readonly record struct StoreProgress(long Done, long Total);
