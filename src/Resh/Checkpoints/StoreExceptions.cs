namespace Resh.Checkpoints;

/// <summary>Base of the errors the checkpoint store reports about itself.</summary>
public class CheckpointStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The path holds no checkpoint store (or one that cannot be read).</summary>
public sealed class StoreNotFoundException(string storePath, string reason, Exception? inner = null)
    : CheckpointStoreException($"No checkpoint store at {storePath}: {reason}", inner)
{
    public string StorePath { get; } = storePath;
}

/// <summary>Another process holds the store's writer lock.</summary>
public sealed class StoreLockedException(string storePath, int? holderPid)
    : CheckpointStoreException($"Checkpoint store {storePath} is locked by another writer{(holderPid is { } pid ? $" (pid {pid})" : "")}; only one process may write to a store at a time (readers - list, stats, verify, restore - do not need the lock).")
{
    public string StorePath { get; } = storePath;

    public int? HolderPid { get; } = holderPid;
}

/// <summary>No snapshot has the given id, or a prefix matches several.</summary>
public sealed class SnapshotNotFoundException(string snapshotId, string storePath, string? detail = null)
    : CheckpointStoreException($"No snapshot {snapshotId} in checkpoint store {storePath}{(detail is null ? "" : $" ({detail})")}.")
{
    public string SnapshotId { get; } = snapshotId;
}

/// <summary>Stored data failed its checks: names the chunk and the pack holding it.</summary>
public sealed class ChunkCorruptedException(ChunkId chunk, string pack, long offset, string reason)
    : CheckpointStoreException(pack.Length == 0
        ? $"Chunk {chunk} is damaged: {reason}."
        : $"Chunk {chunk} in pack {pack} at offset {offset} is damaged: {reason}.")
{
    public ChunkId Chunk { get; } = chunk;

    /// <summary>The pack id, empty when the chunk is not in any pack.</summary>
    public string Pack { get; } = pack;

    public long Offset { get; } = offset;

    public string Reason { get; } = reason;
}
