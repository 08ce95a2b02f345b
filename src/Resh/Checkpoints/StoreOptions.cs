using System.Numerics;
using Microsoft.Extensions.Logging;

namespace Resh.Checkpoints;

/// <summary>How a checkpoint store is opened, and how a new one is laid out.</summary>
public sealed class StoreOptions
{
    public const int DefaultMinChunkSize = 256 * 1024;
    public const int DefaultAverageChunkSize = 1024 * 1024;
    public const int DefaultMaxChunkSize = 4 * 1024 * 1024;
    public const long DefaultPackTargetSize = 16L * 1024 * 1024;
    public const int DefaultCompressionLevel = 1;

    /// <summary>Largest chunk the format allows (record lengths are 32-bit; this keeps buffers sane).</summary>
    public const int MaxChunkSizeLimit = 64 * 1024 * 1024;

    /// <summary>Open for reading only: no lock is taken, nothing is cleaned up, mutations throw.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>Create the store when the directory is missing or empty (writers only).</summary>
    public bool CreateIfMissing { get; set; } = true;

    /// <summary>
    /// Smallest chunk (except a file's last). Used when the store is created and recorded in its
    /// config: an existing store keeps the sizes it was created with, so chunk boundaries stay stable.
    /// </summary>
    public int MinChunkSize { get; set; } = DefaultMinChunkSize;

    /// <summary>Target average chunk size, a power of two. Creation only, like <see cref="MinChunkSize"/>.</summary>
    public int AverageChunkSize { get; set; } = DefaultAverageChunkSize;

    /// <summary>Largest chunk. Creation only, like <see cref="MinChunkSize"/>.</summary>
    public int MaxChunkSize { get; set; } = DefaultMaxChunkSize;

    /// <summary>A pack is closed once it reaches this size (it may exceed it by one chunk).</summary>
    public long PackTargetSize { get; set; } = DefaultPackTargetSize;

    /// <summary>
    /// How new chunks are compressed; a chunk is stored raw unless compressing saves at least an
    /// eighth of it. Zstandard by default (see docs/benchmarks.md for the measurement that chose it);
    /// the store reads chunks of every codec whatever this says.
    /// </summary>
    public ChunkCompression Compression { get; set; } = ChunkCompression.Zstd;

    /// <summary>Zstandard level for new chunks (1 to 19); level 1 by measurement: 3 compresses 3% better at half the speed.</summary>
    public int CompressionLevel { get; set; } = DefaultCompressionLevel;

    /// <summary>Chunks a restore reads, checks, decompresses and writes at once; 0: one per processor (at least 2).</summary>
    public int RestoreParallelism { get; set; }

    /// <summary>Packs whose fsync may still be running while the next pack is written.</summary>
    public int MaxPendingPackSyncs { get; set; } = 2;

    public TimeProvider Clock { get; set; } = TimeProvider.System;

    public ILogger? Logger { get; set; }

    /// <summary>Fault-injection hook for tests; null in production.</summary>
    public IStoreFaults? Faults { get; set; }

    /// <summary>Problems with these options, each naming its setting; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MinChunkSize < 64)
        {
            errors.Add($"store.min-chunk-size must be at least 64 bytes (got {MinChunkSize})");
        }

        if (AverageChunkSize <= MinChunkSize)
        {
            errors.Add($"store.average-chunk-size ({AverageChunkSize}) must be larger than store.min-chunk-size ({MinChunkSize})");
        }

        if (AverageChunkSize <= 0 || !BitOperations.IsPow2(AverageChunkSize))
        {
            errors.Add($"store.average-chunk-size must be a power of two (got {AverageChunkSize})");
        }

        if (MaxChunkSize <= AverageChunkSize)
        {
            errors.Add($"store.max-chunk-size ({MaxChunkSize}) must be larger than store.average-chunk-size ({AverageChunkSize})");
        }

        if (MaxChunkSize > MaxChunkSizeLimit)
        {
            errors.Add($"store.max-chunk-size must be at most {MaxChunkSizeLimit} bytes (got {MaxChunkSize})");
        }

        if (PackTargetSize < 4096 || PackTargetSize > 1L << 30)
        {
            errors.Add($"store.pack-target-size must be between 4096 bytes and 1 GiB (got {PackTargetSize})");
        }

        if (!Enum.IsDefined(Compression))
        {
            errors.Add($"store.compression must be none, brotli or zstd (got {(int)Compression})");
        }

        if (CompressionLevel is < 1 or > 19)
        {
            errors.Add($"store.compression-level must be between 1 and 19 (got {CompressionLevel})");
        }

        if (RestoreParallelism is < 0 or > 64)
        {
            errors.Add($"store.restore-parallelism must be between 0 (one per processor) and 64 (got {RestoreParallelism})");
        }

        if (MaxPendingPackSyncs < 0 || MaxPendingPackSyncs > 64)
        {
            errors.Add($"store.max-pending-pack-syncs must be between 0 and 64 (got {MaxPendingPackSyncs})");
        }

        return errors;
    }
}

public enum ChunkCompression
{
    None,
    Brotli,
    Zstd,
}

/// <summary>What <see cref="CheckpointStore.CompactAsync"/> rewrites.</summary>
public sealed class CompactionOptions
{
    /// <summary>A pack is rewritten when at least this fraction of its record bytes is dead.</summary>
    public double DeadFractionThreshold { get; set; } = 0.10;

    /// <summary>
    /// Packs smaller than this fraction of <see cref="StoreOptions.PackTargetSize"/> count as small
    /// (snapshots with few new chunks leave small packs). 0 disables merging.
    /// </summary>
    public double SmallPackFraction { get; set; } = 0.25;

    /// <summary>
    /// Small packs are merged into new full-size packs when there are at least this many of them, or
    /// when other packs are being rewritten anyway.
    /// </summary>
    public int SmallPacksToMerge { get; set; } = 4;

    /// <summary>Stop choosing packs once this many live bytes would be copied; null: no limit. Fully dead packs are always deleted.</summary>
    public long? MaxCopyBytes { get; set; }

    /// <summary>Report what would be done without doing it (a read-only store will do).</summary>
    public bool DryRun { get; set; }

    /// <summary>Problems with these options, each naming its setting; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (double.IsNaN(DeadFractionThreshold) || DeadFractionThreshold < 0 || DeadFractionThreshold > 1)
        {
            errors.Add($"compaction.dead-fraction-threshold must be between 0 and 1 (got {DeadFractionThreshold})");
        }

        if (double.IsNaN(SmallPackFraction) || SmallPackFraction < 0 || SmallPackFraction > 1)
        {
            errors.Add($"compaction.small-pack-fraction must be between 0 and 1 (got {SmallPackFraction})");
        }

        if (SmallPacksToMerge < 2)
        {
            errors.Add($"compaction.small-packs-to-merge must be at least 2 (got {SmallPacksToMerge})");
        }

        if (MaxCopyBytes is < 0)
        {
            errors.Add($"compaction.max-copy-bytes must not be negative (got {MaxCopyBytes})");
        }

        return errors;
    }
}
