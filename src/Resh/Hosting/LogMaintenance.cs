using Resh.Checkpoints;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Hosting;

/// <summary>
/// The operator's view of a configuration's durable log, with resh stopped: what each segment holds, and a repair
/// that keeps what the newest checkpoint and the log's intact prefix cover (<c>resh log verify|repair</c>).
/// </summary>
public static class LogMaintenance
{
    /// <summary>Where a configuration keeps its durable log.</summary>
    public static string LogDirectory(ReshOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Path.Combine(options.Group.StateDirectory, "log");
    }

    /// <summary>Where a configuration keeps its checkpoints.</summary>
    public static string StoreDirectory(ReshOptions options, CheckpointOptions checkpoint)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(checkpoint);
        return checkpoint.StorePath ?? Path.Combine(options.Group.StateDirectory, "store");
    }

    /// <summary>The log position the newest stored checkpoint covers, -1 when there is none (read without the store's lock).</summary>
    public static async Task<long> CoveredThroughAsync(ReshOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Group.Checkpoint is not { } checkpoint || !Directory.Exists(StoreDirectory(options, checkpoint)))
        {
            return -1;
        }

        try
        {
            await using var store = await CheckpointStore.OpenAsync(StoreDirectory(options, checkpoint), new StoreOptions { ReadOnly = true, CreateIfMissing = false }, cancellationToken);
            return (await VerifiedCheckpoint.NewestSnapshotAsync(store, null, cancellationToken)).Sequence;
        }
        catch (StoreNotFoundException)
        {
            return -1;
        }
    }

    /// <summary>Every segment of the log and the newest checkpoint's position.</summary>
    public static async Task<(string Directory, long CoveredThrough, IReadOnlyList<SegmentScan> Segments)> InspectAsync(ReshOptions options, CancellationToken cancellationToken)
    {
        var covered = await CoveredThroughAsync(options, cancellationToken);
        var directory = LogDirectory(options);
        return (directory, covered, DurableLog.Inspect(directory));
    }

    /// <summary>Repairs the log for a start from the newest checkpoint (see <see cref="DurableLog.Repair"/>); with <paramref name="apply"/> false, only says what it would do.</summary>
    public static async Task<LogRepair> RepairAsync(ReshOptions options, bool apply, CancellationToken cancellationToken)
    {
        var covered = await CoveredThroughAsync(options, cancellationToken);
        return DurableLog.Repair(LogDirectory(options), covered, apply);
    }
}
