using Microsoft.Extensions.Logging;

namespace Resh.Checkpoints;

/// <summary>Log messages of the checkpoint store: event ids 3000-3099.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Checkpoint store {Path} opened ({Mode}): {Snapshots} snapshots, {Packs} packs, {Chunks} chunks")]
    public static partial void Opened(ILogger logger, string path, string mode, int snapshots, int packs, int chunks);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Checkpoint store {Path} created")]
    public static partial void Created(ILogger logger, string path);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Removed {Count} leftover files ({Bytes} bytes) not reachable from a committed index or manifest")]
    public static partial void CleanedUp(ILogger logger, int count, long bytes);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Index file {File} is damaged ({Reason}); unreferenced packs are kept until it is repaired")]
    public static partial void DamagedIndex(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Manifest {File} is damaged ({Reason}); it is ignored")]
    public static partial void DamagedManifest(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Snapshot {SnapshotId} committed: {Files} files, {LogicalBytes} bytes, {NewChunks} new chunks ({AddedBytes} bytes added), {ReusedChunks} reused, in {ElapsedMs} ms")]
    public static partial void SnapshotCommitted(ILogger logger, string snapshotId, int files, long logicalBytes, int newChunks, long addedBytes, int reusedChunks, long elapsedMs);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Skipped {Path}: not a regular file, directory or symbolic link")]
    public static partial void SkippedSpecialFile(ILogger logger, string path);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "Pruned snapshot {SnapshotId} ({Time:o})")]
    public static partial void Pruned(ILogger logger, string snapshotId, DateTimeOffset time);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Compaction: {Rewritten} packs rewritten, {Deleted} dead packs deleted, {Copied} bytes copied, {Freed} bytes freed")]
    public static partial void Compacted(ILogger logger, int rewritten, int deleted, long copied, long freed);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Compaction skipped pack {Pack}: {Reason}")]
    public static partial void CompactionSkippedPack(ILogger logger, string pack, string reason);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Error, Message = "Verify found damage: {Damage}")]
    public static partial void Damage(ILogger logger, string damage);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "Snapshot aborted, {Count} unfinished packs deleted: {Reason}")]
    public static partial void SnapshotAborted(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Debug, Message = "Pack {Pack} sealed: {Records} records, {Bytes} bytes")]
    public static partial void PackSealed(ILogger logger, string pack, int records, long bytes);
}
