using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Checkpoints;

namespace Resh.Memory;

/// <summary>How the pageserver runs.</summary>
public sealed class PageServerOptions
{
    /// <summary>The cluster's name; snapshots are labeled with it.</summary>
    public string Cluster { get; set; } = "memory";

    /// <summary>The checkpoint store the snapshots go to (created when missing).</summary>
    public string StorePath { get; set; } = "";

    /// <summary>Time between snapshots when run by <see cref="PageServer.RunAsync"/>; zero: only on request.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// After each snapshot, truncate the log up to the newest earlier snapshot at least <see cref="LogRetention"/> old (a
    /// node further behind starts from a snapshot).
    /// </summary>
    public bool TruncateLog { get; set; } = true;

    /// <summary>How long the log after a snapshot is kept before it is truncated (nodes lagging less never load a snapshot).</summary>
    public TimeSpan LogRetention { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Find unreachable objects in each snapshot and have the nodes free them.</summary>
    public bool CollectGarbage { get; set; } = true;

    /// <summary>Which snapshots stay in the store: by density over age (many young, few old), as for service checkpoints.</summary>
    public RetentionPolicy Retention { get; set; } = new() { KeepLast = 3, DensityBase = TimeSpan.FromSeconds(10) };

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Cluster))
        {
            errors.Add("PageServerOptions.Cluster must not be empty");
        }

        if (string.IsNullOrWhiteSpace(StorePath))
        {
            errors.Add("PageServerOptions.StorePath is required");
        }

        if (LogRetention < TimeSpan.Zero)
        {
            errors.Add($"PageServerOptions.LogRetention must not be negative (got {LogRetention})");
        }

        if (Interval < TimeSpan.Zero)
        {
            errors.Add($"PageServerOptions.Interval must not be negative (got {Interval})");
        }

        errors.AddRange(Retention.Validate().Select(e => "PageServerOptions.Retention: " + e));
        return errors;
    }
}

/// <summary>What one snapshot did.</summary>
public sealed record MemorySnapshotResult(string Id, long Position, int Objects, TimeSpan Pause, TimeSpan Duration, int Unreachable, long Bytes);

/// <summary>
/// The pageserver: a replica of the memory that runs no transactions and takes snapshots of the whole memory into the
/// checkpoint store while the nodes go on. A snapshot pins the state at one log position (the only pause, measured), and
/// the replica keeps the pinned version of every object changed afterwards until the snapshot is written (copy on
/// write). Then it lets the log go up to an earlier snapshot's position, walks the snapshot's object graph from the named roots, and
/// appends the objects it did not reach for the nodes to free. It also carries out a fallback of the whole cluster.
/// </summary>
public sealed partial class PageServer : IAsyncDisposable
{
    /// <summary>Label of a memory snapshot's cluster in the checkpoint store.</summary>
    public const string ClusterLabel = MemoryReplica.ClusterLabel;

    /// <summary>Label of a memory snapshot's log position in the checkpoint store.</summary>
    public const string PositionLabel = MemoryReplica.PositionLabel;

    private readonly ICommitLog _log;
    private readonly MemoryReplica _replica;
    private readonly CheckpointStore _store;
    private readonly PageServerOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _snapshotGate = new(1, 1);
    private readonly List<(DateTimeOffset Time, long Position)> _taken = [];
    private readonly TimeProvider _time = TimeProvider.System;

    private PageServer(ICommitLog log, MemoryReplica replica, CheckpointStore store, PageServerOptions options, ILogger logger)
    {
        _log = log;
        _replica = replica;
        _store = store;
        _options = options;
        _logger = logger;
    }

    public long Position => _replica.State.Position;

    public int ObjectCount => _replica.State.ObjectCount;

    /// <summary>The newest snapshot this pageserver stored.</summary>
    public MemorySnapshotResult? Last { get; private set; }

    /// <summary>Objects it handed to the nodes to free, in all.</summary>
    public long Freed { get; private set; }

    public static async Task<PageServer> StartAsync(ICommitLog log, PageServerOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        if (options.Validate() is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        logger ??= NullLogger.Instance;
        var store = await CheckpointStore.OpenAsync(options.StorePath, new StoreOptions(), cancellationToken);
        try
        {
            var replica = await MemoryReplica.StartAsync(log, options.Cluster, options.StorePath, logger, cancellationToken);
            return new PageServer(log, replica, store, options, logger);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>Takes a snapshot every <see cref="PageServerOptions.Interval"/> until canceled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_options.Interval <= TimeSpan.Zero)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        using var timer = new PeriodicTimer(_options.Interval);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            try
            {
                await SnapshotAsync(cancellationToken);
            }
            catch (Exception e) when (e is IOException or CheckpointStoreException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
            {
                SnapshotFailed(_logger, e.Message);
            }
        }
    }

    /// <summary>
    /// Takes one snapshot now, of the state once every record ordered before the call is applied: pins it (the pause),
    /// writes it to the store, then truncates the log up to an earlier snapshot (<see cref="PageServerOptions.LogRetention"/>)
    /// and hands the unreachable objects to the nodes, as configured.
    /// </summary>
    public async Task<MemorySnapshotResult> SnapshotAsync(CancellationToken cancellationToken = default)
    {
        await _snapshotGate.WaitAsync(cancellationToken);
        try
        {
            // Everything ordered before this call is in the snapshot.
            await _replica.WaitForAsync(await _log.HeadAsync(cancellationToken), cancellationToken);
            var total = Stopwatch.StartNew();
            using var snapshot = _replica.State.Pin();
            var pause = snapshot.Pause;
            var info = await MemoryReplica.StoreAsync(_store, _options.Cluster, snapshot, cancellationToken);
            var unreachable = _options.CollectGarbage ? Unreachable(snapshot) : [];
            var objects = snapshot.Ids.Length;
            snapshot.Dispose();

            // Up to an earlier snapshot, at least LogRetention old, never this one: a node that lags by less goes on from
            // the log and need not load a snapshot.
            var now = _time.GetUtcNow();
            if (_options.TruncateLog && _taken.LastOrDefault(t => now - t.Time >= _options.LogRetention) is { Position: > 0 } upTo)
            {
                await _log.TruncateAsync(upTo.Position, cancellationToken);
                _taken.RemoveAll(t => t.Position <= upTo.Position);
            }

            _taken.Add((now, snapshot.Position));

            foreach (var chunk in unreachable.Chunk(16_384))
            {
                await _log.AppendAsync(new FreeRecord(snapshot.Position, chunk).Encode(), cancellationToken);
            }

            Freed += unreachable.Length;
            await _store.PruneAsync(_options.Retention, cancellationToken: cancellationToken);
            var result = new MemorySnapshotResult(info.Id, snapshot.Position, objects, pause, total.Elapsed, unreachable.Length, info.LogicalBytes);
            Last = result;
            Stored(_logger, info.Id, snapshot.Position, objects, pause.TotalMilliseconds, total.Elapsed.TotalMilliseconds, unreachable.Length);
            return result;
        }
        finally
        {
            _snapshotGate.Release();
        }
    }

    /// <summary>
    /// The objects of a pinned snapshot that no named root reaches. References cannot be forged, so a program can reach
    /// such an object again only through a reference it stored after the snapshot, and the free rule of every node keeps
    /// an object linked after the snapshot (<see cref="MemoryState"/>).
    /// </summary>
    internal static long[] Unreachable(StateSnapshot snapshot)
    {
        var reached = new HashSet<long>();
        var stack = new Stack<long>(snapshot.Ids.Where(id => id < 0));
        while (stack.TryPop(out var id))
        {
            if (snapshot.Read(id) is not { } o)
            {
                continue;
            }

            foreach (var target in o.Refs)
            {
                if (target > 0 && reached.Add(target))
                {
                    stack.Push(target);
                }
            }
        }

        return [.. snapshot.Ids.Where(id => id > 0 && !reached.Contains(id) && snapshot.Read(id) is not null).Order()];
    }

    /// <summary>
    /// Falls the whole cluster back to a stored snapshot: every node and this pageserver replace their state with it when
    /// they apply the fallback record, and void the device effects of later transactions (each device by its class).
    /// </summary>
    public async Task<long> FallBackAsync(string snapshotId, CancellationToken cancellationToken = default)
    {
        var info = await _store.FindSnapshotAsync(snapshotId, cancellationToken);
        var at = await AppendFallbackAsync(_log, info, _options.Cluster, cancellationToken);
        await _replica.WaitForAsync(at, cancellationToken);
        return at;
    }

    /// <summary>
    /// Falls the cluster back to a stored snapshot from outside (`resh memory fallback`): checks the snapshot in the store
    /// (read only; a running pageserver may hold it) and appends the fallback record. Returns its position.
    /// </summary>
    /// <exception cref="InvalidOperationException">The snapshot is not a memory snapshot of <paramref name="cluster"/>.</exception>
    public static async Task<long> FallBackAsync(ICommitLog log, string storePath, string cluster, string snapshotId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(log);
        await using var store = await CheckpointStore.OpenAsync(storePath, new StoreOptions { ReadOnly = true, CreateIfMissing = false }, cancellationToken);
        return await AppendFallbackAsync(log, await store.FindSnapshotAsync(snapshotId, cancellationToken), cluster, cancellationToken);
    }

    private static Task<long> AppendFallbackAsync(ICommitLog log, SnapshotInfo info, string cluster, CancellationToken cancellationToken)
    {
        if (info.Labels.GetValueOrDefault(MemoryReplica.ClusterLabel) != cluster || !long.TryParse(info.Labels.GetValueOrDefault(MemoryReplica.PositionLabel), out var position))
        {
            throw new InvalidOperationException($"snapshot {info.Id} is not a memory snapshot of cluster {cluster}");
        }

        return log.AppendAsync(new FallbackRecord(position, info.Id).Encode(), cancellationToken);
    }

    /// <summary>
    /// Shuts the cluster down in order: once every node has left (<see cref="MemoryNode.ShutdownAsync"/>), a final
    /// snapshot holds everything; a cluster started again begins from it.
    /// </summary>
    public async Task<MemorySnapshotResult> FinalSnapshotAsync(CancellationToken cancellationToken = default)
    {
        var head = await _log.HeadAsync(cancellationToken);
        await _replica.WaitForAsync(head, cancellationToken);
        return await SnapshotAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _replica.DisposeAsync();
        await _store.DisposeAsync();
    }

    [LoggerMessage(EventId = 1921, Level = LogLevel.Information, Message = "Memory: snapshot {Id} at position {Position}: {Objects} objects, pause {PauseMs:F3} ms, {TotalMs:F0} ms in all, {Unreachable} unreachable")]
    private static partial void Stored(ILogger logger, string id, long position, int objects, double pauseMs, double totalMs, int unreachable);

    [LoggerMessage(EventId = 1922, Level = LogLevel.Error, Message = "Memory: a snapshot failed: {Problem}; the next one tries again")]
    private static partial void SnapshotFailed(ILogger logger, string problem);
}
