using Microsoft.Extensions.Logging;
using Resh.Checkpoints;

namespace Resh.Memory;

/// <summary>
/// A copy of the memory kept current from the ordered log: starts from the newest snapshot in the store (when there is
/// one), applies every record after it, reloads a snapshot when the log was truncated past it, and replaces its state
/// when the cluster falls back. Nodes and the pageserver are both built on it; it names no role.
/// </summary>
internal sealed partial class MemoryReplica : IAsyncDisposable
{
    /// <summary>Label of a snapshot's cluster in the checkpoint store.</summary>
    public const string ClusterLabel = "resh.memory.cluster";

    /// <summary>Label of a snapshot's log position in the checkpoint store.</summary>
    public const string PositionLabel = "resh.memory.position";

    private const string SnapshotFile = "memory.snap";

    private readonly ICommitLog _log;
    private readonly string _cluster;
    private readonly string? _storePath;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _loop = Task.CompletedTask;
    private int _snapshotsLoaded;

    private MemoryReplica(ICommitLog log, string cluster, string? storePath, ILogger logger, MemoryState state)
    {
        _log = log;
        _cluster = cluster;
        _storePath = storePath;
        _logger = logger;
        State = state;
    }

    public MemoryState State { get; }

    /// <summary>Called, on the apply loop, with every commit decision.</summary>
    public Action<CommitDecision>? Decided { get; set; }

    /// <summary>
    /// Called, on the apply loop, when the cluster falls back to the snapshot at the given position: before the state is
    /// replaced (and the new position published), with the effects paused (<see cref="PauseEffects"/>).
    /// </summary>
    public Func<long, Task>? FallingBack { get; set; }

    /// <summary>Stops effects from being performed until the returned handle is disposed.</summary>
    public Func<Task<IDisposable>>? PauseEffects { get; set; }

    /// <summary>Completes (faulted) when the replica cannot follow the log any more.</summary>
    public Task Failed => _failed.Task;

    /// <summary>Snapshots loaded (at start, after a truncation, at a fallback).</summary>
    public int SnapshotsLoaded => Volatile.Read(ref _snapshotsLoaded);

    /// <summary>Starts from the newest snapshot of the cluster in the store (if any) and follows the log until its head.</summary>
    public static async Task<MemoryReplica> StartAsync(ICommitLog log, string cluster, string? storePath, ILogger logger, CancellationToken cancellationToken)
    {
        var state = storePath is null ? null : await LoadNewestAsync(storePath, cluster, 0, cancellationToken);
        var replica = new MemoryReplica(log, cluster, storePath, logger, state ?? new MemoryState());
        if (state is not null)
        {
            Interlocked.Increment(ref replica._snapshotsLoaded);
            Loaded(logger, state.Position, cluster);
        }

        var head = await log.HeadAsync(cancellationToken);
        replica._loop = Task.Run(replica.ApplyLoopAsync, CancellationToken.None);
        await replica.WaitForAsync(head, cancellationToken);
        return replica;
    }

    /// <summary>Waits until the state has applied <paramref name="position"/>.</summary>
    public Task WaitForAsync(long position, CancellationToken cancellationToken) => WaitUntilAsync(() => State.Position >= position, cancellationToken);

    /// <summary>
    /// Waits until <paramref name="condition"/> (of the state) holds, checking it again after every applied record. The
    /// wake-up of the next record is taken before the check, so a record applied in between is never missed (a
    /// condition checked first and waited for after could sleep past the record that made it true, and then forever
    /// in a log where nothing else happens).
    /// </summary>
    public async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            var next = NextProgress();
            if (condition())
            {
                return;
            }

            await next.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Completes at the next applied record (or fails with the replica). Take it before checking the state.</summary>
    public Task NextProgress()
    {
        var progress = Volatile.Read(ref _progress).Task;
        return Task.WhenAny(progress, _failed.Task).Unwrap();
    }

    private async Task ApplyLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await foreach (var record in _log.ReadAsync(State.Position, ct))
                {
                    MemoryRecord decoded;
                    try
                    {
                        decoded = MemoryRecord.Decode(record.Bytes);
                    }
                    catch (InvalidDataException e)
                    {
                        // Every replica skips the same damaged record alike, so they stay equal; it is logged.
                        DamagedRecord(_logger, record.Position, e.Message);
                        decoded = new JoinRecord(0);
                    }

                    if (decoded is FallbackRecord fallback)
                    {
                        await FallBackAsync(fallback, record.Position, ct);
                    }
                    else if (State.Apply(record.Position, decoded) is { } decision)
                    {
                        Decided?.Invoke(decision);
                    }

                    Interlocked.Exchange(ref _progress, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                }
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                // Stopping: a canceled watch may end as a transport error rather than as a cancellation.
                return;
            }
            catch (LogTruncatedException truncated) when (_storePath is not null)
            {
                if (!await ReloadAsync(truncated, ct))
                {
                    return;
                }
            }
            catch (Exception e)
            {
                Fail(e);
                return;
            }
        }
    }

    /// <summary>The log was truncated past this replica: the newest snapshot at or after the truncation replaces its state.</summary>
    private async Task<bool> ReloadAsync(LogTruncatedException truncated, CancellationToken ct)
    {
        try
        {
            if (await LoadNewestAsync(_storePath!, _cluster, truncated.TruncatedTo, ct) is not { } newer)
            {
                Fail(truncated);
                return false;
            }

            State.ReplaceWith(newer, newer.Position);
            Interlocked.Increment(ref _snapshotsLoaded);
            Loaded(_logger, newer.Position, _cluster);
            return true;
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e)
        {
            Fail(new InvalidOperationException($"{truncated.Message}; loading a newer snapshot failed: {e.Message}", e));
            return false;
        }
    }

    private async Task FallBackAsync(FallbackRecord fallback, long position, CancellationToken ct)
    {
        if (_storePath is null)
        {
            throw new InvalidOperationException($"the cluster fell back to snapshot {fallback.Snapshot}, but this replica has no store to load it from");
        }

        var state = await LoadAsync(_storePath, fallback.Snapshot, ct);
        using (PauseEffects is { } pause ? await pause() : null)
        {
            if (FallingBack is { } fallingBack)
            {
                await fallingBack(fallback.Position);
            }

            State.ReplaceWith(state, position);
        }

        Interlocked.Increment(ref _snapshotsLoaded);
        FellBackTo(_logger, fallback.Snapshot, fallback.Position);
    }

    private void Fail(Exception e)
    {
        ReplicaFailed(_logger, e.Message);
        _failed.TrySetException(e);
    }

    /// <summary>The newest snapshot of <paramref name="cluster"/> at or after <paramref name="atLeast"/>, or null.</summary>
    public static async Task<MemoryState?> LoadNewestAsync(string storePath, string cluster, long atLeast, CancellationToken ct)
    {
        if (!Directory.Exists(storePath) || !Directory.EnumerateFileSystemEntries(storePath).Any())
        {
            return null;
        }

        await using var store = await CheckpointStore.OpenAsync(storePath, new StoreOptions { ReadOnly = true }, ct);
        var newest = (await store.ListAsync(ct))
            .Where(s => s.Labels.GetValueOrDefault(ClusterLabel) == cluster && long.TryParse(s.Labels.GetValueOrDefault(PositionLabel), out _))
            .MaxBy(s => long.Parse(s.Labels[PositionLabel], System.Globalization.CultureInfo.InvariantCulture));
        if (newest is null || long.Parse(newest.Labels[PositionLabel], System.Globalization.CultureInfo.InvariantCulture) < atLeast)
        {
            return null;
        }

        return await RestoreAsync(store, newest.Id, ct);
    }

    /// <summary>The state of one stored snapshot.</summary>
    public static async Task<MemoryState> LoadAsync(string storePath, string snapshotId, CancellationToken ct)
    {
        await using var store = await CheckpointStore.OpenAsync(storePath, new StoreOptions { ReadOnly = true }, ct);
        return await RestoreAsync(store, snapshotId, ct);
    }

    private static async Task<MemoryState> RestoreAsync(CheckpointStore store, string id, CancellationToken ct)
    {
        var dir = Path.Combine(Path.GetTempPath(), "resh-memory-" + Guid.NewGuid().ToString("N"));
        try
        {
            await store.RestoreAsync(id, dir, ct);
            return MemoryState.Load(await File.ReadAllBytesAsync(Path.Combine(dir, SnapshotFile), ct));
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }

    /// <summary>Writes a pinned state into the store as one snapshot labeled with its cluster and position.</summary>
    public static async Task<SnapshotInfo> StoreAsync(CheckpointStore store, string cluster, StateSnapshot snapshot, CancellationToken ct)
    {
        var dir = Path.Combine(Path.GetTempPath(), "resh-memory-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await using (var file = new FileStream(Path.Combine(dir, SnapshotFile), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await MemoryState.WriteAsync(snapshot, file, ct);
            }

            var labels = new Dictionary<string, string>
            {
                [ClusterLabel] = cluster,
                [PositionLabel] = snapshot.Position.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            return await store.SnapshotAsync(dir, labels, ct);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1901, Level = LogLevel.Information, Message = "Memory: loaded the snapshot at position {Position} of cluster {Cluster}")]
    private static partial void Loaded(ILogger logger, long position, string cluster);

    [LoggerMessage(EventId = 1902, Level = LogLevel.Warning, Message = "Memory: the cluster fell back to snapshot {Snapshot} (position {Position})")]
    private static partial void FellBackTo(ILogger logger, string snapshot, long position);

    [LoggerMessage(EventId = 1903, Level = LogLevel.Error, Message = "Memory: the log record at {Position} is damaged and skipped: {Problem}")]
    private static partial void DamagedRecord(ILogger logger, long position, string problem);

    [LoggerMessage(EventId = 1904, Level = LogLevel.Critical, Message = "Memory: this replica cannot follow the log any more: {Problem}")]
    private static partial void ReplicaFailed(ILogger logger, string problem);
}
