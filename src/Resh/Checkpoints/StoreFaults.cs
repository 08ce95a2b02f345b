namespace Resh.Checkpoints;

/// <summary>
/// Named instants of the store's write paths where a test can simulate a crash. The store calls
/// <see cref="IStoreFaults.Hit"/> at each; an implementation that throws
/// <see cref="InjectedFaultException"/> aborts the operation and the store leaves the disk exactly as
/// it is (no clean-up), as a crash would.
/// </summary>
public enum FaultPoint
{
    /// <summary>A pack's records and footer are written (not yet fsynced). Path: the pack.</summary>
    PackWritten,

    /// <summary>A pack is fsynced and closed. Path: the pack.</summary>
    PackSynced,

    /// <summary>All chunks of a snapshot are chunked and handed to packs; nothing is committed yet.</summary>
    SnapshotDataWritten,

    /// <summary>An index file is written and fsynced under its temporary name. Path: the temporary file.</summary>
    IndexTempWritten,

    /// <summary>An index file is renamed into place, before the directory fsync. Path: the index file.</summary>
    IndexRenamed,

    /// <summary>A manifest is written and fsynced under its temporary name. Path: the temporary file.</summary>
    ManifestTempWritten,

    /// <summary>A manifest is renamed into place, before the directory fsync. Path: the manifest.</summary>
    ManifestRenamed,

    /// <summary>Prune deleted one manifest. Path: the manifest.</summary>
    PruneManifestDeleted,

    /// <summary>Compaction wrote and fsynced its new packs; the index does not know them yet.</summary>
    CompactionPacksWritten,

    /// <summary>Compaction's consolidated index is durable; old index files and packs still exist. Path: the index.</summary>
    CompactionIndexCommitted,

    /// <summary>Compaction deleted one superseded index file. Path: that file.</summary>
    CompactionIndexDeleted,

    /// <summary>Compaction deleted one old pack. Path: the pack.</summary>
    CompactionPackDeleted,
}

/// <summary>Fault-injection hook for crash-safety tests; leave <see cref="StoreOptions.Faults"/> null in production.</summary>
public interface IStoreFaults
{
    /// <summary>Called at <paramref name="point"/>; <paramref name="path"/> names the file concerned, when there is one.</summary>
    void Hit(FaultPoint point, string? path);
}

/// <summary>Thrown by an <see cref="IStoreFaults"/> to simulate a crash at a <see cref="FaultPoint"/>.</summary>
public sealed class InjectedFaultException(FaultPoint point) : Exception($"Injected fault at {point}.")
{
    public FaultPoint Point { get; } = point;
}
