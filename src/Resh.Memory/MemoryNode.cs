using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Resh.Memory;

/// <summary>How a node of the memory runs.</summary>
public sealed class MemoryNodeOptions
{
    /// <summary>The node's number, 1 to 65535, unique in the cluster: it names its transactions and its objects.</summary>
    public int Node { get; set; } = 1;

    /// <summary>The cluster's name (snapshots in the store carry it).</summary>
    public string Cluster { get; set; } = "memory";

    /// <summary>The pageserver's checkpoint store, read to start from its newest snapshot (none: start from the log alone).</summary>
    public string? StorePath { get; set; }

    /// <summary>A transaction that lost this many times in a row reserves what it uses and then runs in turn (fairness).</summary>
    public int ReserveAfter { get; set; } = 3;

    /// <summary>A transaction that still has not committed after this many runs fails.</summary>
    public int MaxAttempts { get; set; } = 1000;

    /// <summary>How long an append is tried again while the log is unreachable before the transaction fails.</summary>
    public TimeSpan AppendTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The node's devices (effects that take part in transactions).</summary>
    public IReadOnlyList<IDevice> Devices { get; set; } = [];

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Node is < 1 or > 65535)
        {
            errors.Add($"MemoryNodeOptions.Node must be 1 to 65535 (got {Node})");
        }

        if (string.IsNullOrWhiteSpace(Cluster))
        {
            errors.Add("MemoryNodeOptions.Cluster must not be empty");
        }

        if (ReserveAfter < 1)
        {
            errors.Add($"MemoryNodeOptions.ReserveAfter must be at least 1 (got {ReserveAfter})");
        }

        if (MaxAttempts < ReserveAfter + 1)
        {
            errors.Add($"MemoryNodeOptions.MaxAttempts must be above ReserveAfter (got {MaxAttempts})");
        }

        var names = Devices.GroupBy(d => d.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (names.Count > 0)
        {
            errors.Add($"MemoryNodeOptions.Devices: names must be unique on a node ({string.Join(", ", names)} repeat)");
        }

        return errors;
    }
}

/// <summary>A transaction gave up: it lost more often than the node allows, or the node is shutting down.</summary>
public sealed class TransactionFailedException(string message, Exception? inner = null) : InvalidOperationException(message, inner);

/// <summary>Counters of one node's transactions.</summary>
public readonly record struct TransactionStats(long Commits, long Restarts, long Reservations, int MaxRestarts, long ReadOnly);

/// <summary>
/// A node of the transactional memory: a full copy of the memory kept current from the ordered log, on which the
/// program's transactions run optimistically. A commit appends the transaction's reads (with versions) and writes to the
/// log; every node applies commits in log order with the same rule (the first committer wins), so no node waits for
/// another's answer. A transaction that lost runs again by itself; one that lost <see cref="MemoryNodeOptions.ReserveAfter"/>
/// times reserves what it uses, in log order, and then completes. Devices perform the effects of committed
/// transactions. <see cref="ShutdownAsync"/> leaves in order.
/// </summary>
public sealed partial class MemoryNode : IAsyncDisposable
{
    private readonly ICommitLog _log;
    private readonly MemoryReplica _replica;
    private readonly MemoryNodeOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<TxKey, TaskCompletionSource<CommitDecision>> _pending = new();
    private readonly Dictionary<string, IDevice> _devices;
    private readonly CancellationTokenSource _stop = new();
    private readonly long _run = (long)Random.Shared.Next(1, 1 << 22) << 40;
    private readonly HashSet<long> _performed = [];
    private readonly HashSet<long> _reported = [];
    private readonly SemaphoreSlim _devicesGate = new(1, 1);
    private Task _deviceLoop = Task.CompletedTask;
    private long _nextTx;
    private long _nextObject;
    private int _running;
    private volatile bool _closing;
    private long _commits;
    private long _restarts;
    private long _reservations;
    private long _readOnly;
    private int _maxRestarts;

    private MemoryNode(ICommitLog log, MemoryReplica replica, MemoryNodeOptions options, ILogger logger)
    {
        _log = log;
        _replica = replica;
        _options = options;
        _logger = logger;
        _devices = options.Devices.ToDictionary(d => d.Name);
        replica.Decided = OnDecided;
        replica.FallingBack = FallBackDevicesAsync;
        replica.PauseEffects = PauseEffectsAsync;
    }

    public int Node => _options.Node;

    internal MemoryState State => _replica.State;

    /// <summary>The position of the last log record this node applied.</summary>
    public long Position => State.Position;

    /// <summary>Records of the log applied since the memory began (the same on every node at the same position).</summary>
    public long RecordsApplied => State.Records;

    /// <summary>Objects this node holds (all of the memory).</summary>
    public int ObjectCount => State.ObjectCount;

    /// <summary>Effects committed by this node's transactions and not yet performed.</summary>
    public int PendingEffects => State.Outbox(Node).Count;

    /// <summary>Snapshots this node loaded (at start, after the log was truncated past it, at a fallback).</summary>
    public int SnapshotsLoaded => _replica.SnapshotsLoaded;

    public TransactionStats Stats => new(Interlocked.Read(ref _commits), Interlocked.Read(ref _restarts), Interlocked.Read(ref _reservations), Volatile.Read(ref _maxRestarts), Interlocked.Read(ref _readOnly));

    /// <summary>
    /// Starts a node: loads the newest snapshot from the store (if configured), applies the log after it up to its head,
    /// announces itself (which releases whatever an earlier run of this node had reserved) and resumes performing the
    /// effects its earlier run committed but had not performed.
    /// </summary>
    public static async Task<MemoryNode> StartAsync(ICommitLog log, MemoryNodeOptions options, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        if (options.Validate() is { Count: > 0 } errors)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }

        logger ??= NullLogger.Instance;
        var replica = await MemoryReplica.StartAsync(log, options.Cluster, options.StorePath, logger, cancellationToken);
        var node = new MemoryNode(log, replica, options, logger);
        try
        {
            var joined = await node.AppendAsync(new JoinRecord(options.Node).Encode(), cancellationToken);
            await replica.WaitForAsync(joined, cancellationToken);
            node._nextObject = replica.State.HighWater(options.Node);
            node._deviceLoop = Task.Run(node.DeviceLoopAsync, CancellationToken.None);
            Started(logger, options.Node, joined, replica.State.ObjectCount);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits until this node's copy holds every record ordered before the call. A read-only transaction runs on the local
    /// copy without touching the log (serializable, but possibly behind other nodes' newest commits); one that runs after
    /// this call also sees everything committed anywhere before it.
    /// </summary>
    public async Task SyncAsync(CancellationToken cancellationToken = default) =>
        await _replica.WaitForAsync(await _log.HeadAsync(cancellationToken), cancellationToken);

    /// <summary>Runs a transaction until it commits; returns what its body returned in the run that committed.</summary>
    /// <exception cref="DanglingReferenceException">It stored a reference to an object freed before it committed.</exception>
    /// <exception cref="TransactionFailedException">It lost too often, or the node is shutting down.</exception>
    public async Task<T> RunAsync<T>(Func<Transaction, T> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        Interlocked.Increment(ref _running);
        try
        {
            if (_closing)
            {
                throw new TransactionFailedException($"node {Node} is shutting down: no new transactions");
            }

            return await RunCoreAsync(body, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    /// <summary>Runs a transaction that returns nothing.</summary>
    public Task RunAsync(Action<Transaction> body, CancellationToken cancellationToken = default) =>
        RunAsync<bool>(tx =>
        {
            body(tx);
            return true;
        }, cancellationToken);

    private async Task<T> RunCoreAsync<T>(Func<Transaction, T> body, CancellationToken cancellationToken)
    {
        TxKey? reserved = null;
        var used = new HashSet<long>();
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (_replica.Failed.IsFaulted)
                {
                    throw new TransactionFailedException($"node {Node} cannot follow the log", _replica.Failed.Exception?.InnerException);
                }

                if (attempt >= _options.MaxAttempts)
                {
                    throw new TransactionFailedException($"the transaction did not commit in {_options.MaxAttempts} runs");
                }

                if (attempt >= _options.ReserveAfter && reserved is null && used.Count > 0)
                {
                    reserved = await ReserveAsync(used, cancellationToken);
                }

                var tx = new Transaction(this, reserved ?? NewKey(), attempt);
                T result;
                Exception? thrown = null;
                try
                {
                    result = body(tx);
                }
                catch (RestartException)
                {
                    NoteRestart(attempt);
                    continue;
                }
                catch (Exception e)
                {
                    thrown = e;
                    result = default!;
                }

                if (thrown is not null)
                {
                    // The body failed on what it read. The local copy may be behind the log (data just created on another
                    // node): once it holds everything ordered so far, a body that read stale data runs again; one whose
                    // reads are still current failed on the memory as it is, and its exception is the program's.
                    await SyncAsync(cancellationToken);
                    if (State.StillValid(tx.Reads))
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(thrown).Throw();
                    }

                    NoteRestart(attempt);
                    continue;
                }

                foreach (var id in tx.Reads.Keys)
                {
                    used.Add(id);
                }

                if (reserved is { } holding && !used.All(id => State.IsReservedBy(id, holding)))
                {
                    // This run used objects the reservation does not cover: reserve again, for all of them.
                    await ReleaseAsync(holding, cancellationToken);
                    reserved = null;
                    NoteRestart(attempt);
                    continue;
                }

                if (tx.Writes.Count == 0 && tx.Devices.Count == 0)
                {
                    if (State.StillValid(tx.Reads))
                    {
                        Interlocked.Increment(ref _readOnly);
                        if (reserved is { } r)
                        {
                            await ReleaseAsync(r, cancellationToken);
                            reserved = null;
                        }

                        return result;
                    }

                    NoteRestart(attempt);
                    continue;
                }

                var decision = await CommitAsync(tx, cancellationToken);
                switch (decision.Outcome)
                {
                    case CommitOutcome.Committed:
                        reserved = null;
                        Interlocked.Increment(ref _commits);
                        UpdateMax(attempt);
                        WakeDevices();
                        return result;
                    case CommitOutcome.Dangling:
                        throw new DanglingReferenceException(new Ref(decision.Dangling));
                    case CommitOutcome.Invalid:
                        throw new TransactionFailedException($"the log refused transaction {tx.Key} as invalid (an allocation outside node {Node}'s range, a reference to a root, or too many device effects)");
                    case CommitOutcome.Reserved:
                        // Others hold what it writes: it waits until those holders let go (not for the queues to
                        // empty: after ReserveAfter runs it queues up itself), then runs again.
                        NoteRestart(attempt);
                        var writes = tx.Writes.Select(w => w.Id).ToList();
                        var holders = State.Holders(writes, tx.Key);
                        await _replica.WaitUntilAsync(() => !State.Holders(writes, tx.Key).Overlaps(holders), cancellationToken);
                        break;
                    default:
                        NoteRestart(attempt);
                        break;
                }
            }
        }
        catch when (reserved is { } held && !_stop.IsCancellationRequested)
        {
            await ReleaseAsync(held, CancellationToken.None);
            throw;
        }
    }

    private async Task<TxKey> ReserveAsync(HashSet<long> ids, CancellationToken cancellationToken)
    {
        var key = NewKey();
        Interlocked.Increment(ref _reservations);
        var position = await AppendAsync(new ReserveRecord(key, [.. ids]).Encode(), cancellationToken);
        await _replica.WaitForAsync(position, cancellationToken);

        // Granted, or lapsed (ReservationLimit) before this node used it: then the caller runs without one.
        await _replica.WaitUntilAsync(() => State.IsGranted(key) || !State.HasReservation(key), cancellationToken);
        return key;
    }

    private async Task ReleaseAsync(TxKey key, CancellationToken cancellationToken)
    {
        try
        {
            await AppendAsync(new ReleaseRecord(key).Encode(), cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Not released now: the reservation lapses after ReservationLimit records, or when this node starts again.
            ReleaseFailed(_logger, key.ToString(), e.Message);
        }
    }

    private async Task<CommitDecision> CommitAsync(Transaction tx, CancellationToken cancellationToken)
    {
        tx.Guard(MemoryState.AnchorId($"\0node-{Node}"));
        var record = new CommitRecord(tx.Key, [.. tx.Reads.Select(kv => (kv.Key, kv.Value))], [.. tx.Writes], tx.Devices);
        var waiter = new TaskCompletionSource<CommitDecision>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[tx.Key] = waiter;
        try
        {
            var loads = _replica.SnapshotsLoaded;
            var position = await AppendAsync(record.Encode(), cancellationToken);

            // Once appended the log decides, whatever happens here: wait for the decision, or for the replica to fail.
            while (!waiter.Task.IsCompleted)
            {
                var next = _replica.NextProgress();
                if (_replica.Failed.IsCompleted)
                {
                    throw new TransactionFailedException($"node {Node} stopped following the log before transaction {tx.Key} was decided; it may have committed", _replica.Failed.Exception?.InnerException);
                }

                if (_replica.SnapshotsLoaded != loads && State.Position >= position && !waiter.Task.IsCompleted)
                {
                    // The replica went past the record without deciding it here: it lagged behind a truncation of the log
                    // and loaded a snapshot that holds the record's effect, if it had one. The state tells which.
                    return Inferred(record, position);
                }

                await Task.WhenAny(waiter.Task, next);
            }

            return await waiter.Task;
        }
        finally
        {
            _pending.TryRemove(tx.Key, out _);
        }
    }

    /// <summary>
    /// The decision about a commit record a snapshot skipped over. Versions are positions: an object at the record's
    /// position was written by it (committed); every object still older than it (and no object it allocated present)
    /// means it lost. Anything else cannot be told apart.
    /// </summary>
    private CommitDecision Inferred(CommitRecord record, long position)
    {
        var versions = record.Writes.Select(w => State.VersionOf(w.Id)).ToList();
        if (versions.Contains(position))
        {
            return new CommitDecision(record.Tx, CommitOutcome.Committed, position);
        }

        if (record.Writes.Zip(versions).All(p => p.First.Allocated ? p.Second < 0 : p.Second >= 0 && p.Second < position))
        {
            return new CommitDecision(record.Tx, CommitOutcome.Conflict, position);
        }

        throw new TransactionFailedException($"node {Node} loaded a snapshot past transaction {record.Tx}, and later writes hide whether it committed");
    }

    /// <summary>
    /// Appends a record, again and again while the log is unreachable (up to <see cref="MemoryNodeOptions.AppendTimeout"/>).
    /// Appending a record twice is harmless: a commit appended again reads versions its first copy changed (or lost on),
    /// so the copy loses and the first decision stands; reservations, releases, joins and done records are idempotent.
    /// </summary>
    private async Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await _log.AppendAsync(record, cancellationToken);
            }
            catch (LogUnavailableException e) when (clock.Elapsed < _options.AppendTimeout)
            {
                AppendRetry(_logger, Node, attempt, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 * attempt)), cancellationToken);
            }
        }
    }

    private void OnDecided(CommitDecision decision)
    {
        if (decision.Tx.Node == Node && _pending.TryGetValue(decision.Tx, out var waiter))
        {
            waiter.TrySetResult(decision);
        }
    }

    private TxKey NewKey() => new(Node, _run | (Interlocked.Increment(ref _nextTx) & ((1L << 40) - 1)));

    internal long NextObjectId() => Interlocked.Increment(ref _nextObject);

    internal bool HasDevice(string name) => _devices.ContainsKey(name);

    private void NoteRestart(int attempt)
    {
        Interlocked.Increment(ref _restarts);
        UpdateMax(attempt + 1);
    }

    private void UpdateMax(int restarts)
    {
        var seen = Volatile.Read(ref _maxRestarts);
        while (restarts > seen && Interlocked.CompareExchange(ref _maxRestarts, restarts, seen) != seen)
        {
            seen = Volatile.Read(ref _maxRestarts);
        }
    }

    /// <summary>
    /// Leaves in order: no new transactions; the running ones finish; the effects this node committed are performed and
    /// recorded done (they are the only thing in the memory that waits on this node); a leave record releases whatever it
    /// reserved. Everything else it wrote is in the log already, so nothing is lost.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        _closing = true;
        while (Volatile.Read(ref _running) > 0)
        {
            await Task.WhenAny(_replica.NextProgress(), Task.Delay(20, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        while (State.Outbox(Node).Count > 0)
        {
            WakeDevices();
            await Task.WhenAny(_replica.NextProgress(), Task.Delay(20, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        var left = await AppendAsync(new LeaveRecord(Node).Encode(), cancellationToken);
        await _replica.WaitForAsync(left, cancellationToken);
        Left(_logger, Node, left);
    }

    public async ValueTask DisposeAsync()
    {
        _closing = true;
        await _stop.CancelAsync();
        try
        {
            await _deviceLoop;
        }
        catch (OperationCanceledException)
        {
        }

        await _replica.DisposeAsync();
        foreach (var waiter in _pending.Values)
        {
            waiter.TrySetException(new TransactionFailedException($"node {Node} stopped"));
        }

        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1911, Level = LogLevel.Information, Message = "Memory: node {Node} joined at position {Position} holding {Objects} objects")]
    private static partial void Started(ILogger logger, int node, long position, int objects);

    [LoggerMessage(EventId = 1912, Level = LogLevel.Information, Message = "Memory: node {Node} left at position {Position}")]
    private static partial void Left(ILogger logger, int node, long position);

    [LoggerMessage(EventId = 1913, Level = LogLevel.Warning, Message = "Memory: releasing reservation {Tx} failed: {Problem}; it lapses by itself")]
    private static partial void ReleaseFailed(ILogger logger, string tx, string problem);

    [LoggerMessage(EventId = 1916, Level = LogLevel.Warning, Message = "Memory: node {Node}: append attempt {Attempt} failed: {Problem}; trying again")]
    private static partial void AppendRetry(ILogger logger, int node, int attempt, string problem);
}

/// <summary>An auto-reset wake-up for one waiter.</summary>
internal sealed class WakeUp
{
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set() => Volatile.Read(ref _signal).TrySetResult();

    public Task WaitAsync()
    {
        var signal = Volatile.Read(ref _signal);
        if (signal.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _signal, new(TaskCreationOptions.RunContinuationsAsynchronously), signal);
        }

        return signal.Task;
    }
}
