using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Checkpoints;
using Resh.Diagnostics;
using Resh.Domains;
using Resh.Ordering;
using Resh.Protocols;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>
/// A replica group: the core every mode shares. Replicas apply the ordered log and their replies are voted; a
/// decided reply is released through output commit. A replica that exits, breaks its connection, answers
/// differently from the decided reply, does not answer in time, or falls too far behind is suspected: taken out
/// of voting, killed, and rebuilt by a fresh domain that replays the log (its replies checked against the decided
/// digests) and rejoins when it reaches the head. The group keeps serving meanwhile. What differs between modes
/// (the role of each replica, waking passive ones, their updates) is the <see cref="IGroupPolicy"/>'s to decide.
/// </summary>
public sealed partial class ReplicaGroup : IApplierCallbacks, IAsyncDisposable
{
    private readonly GroupOptions _options;
    private readonly IProtocol _protocol;
    private readonly OrderedLog _log;
    private readonly ISequencer _sequencer;
    private readonly CheckpointStore? _store;
    private readonly Func<DomainSpec, IDomain> _createDomain;
    private readonly ReshMetrics _metrics;
    private readonly EventJournal _events;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly Voter _voter;
    private readonly Replica[] _replicas;
    private readonly Lock _lock = new();
    private readonly Lock _commitLock = new();
    private readonly PriorityQueue<(LogEntry Entry, ReadOnlyMemory<byte> Reply, long Held), long> _awaitingCommit = new();
    private readonly List<ICommitGate> _gates = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _supervisors = [];
    private Task _monitor = Task.CompletedTask;
    private Task? _disposal;

    /// <param name="policy">What the mode decides: the role of each replica, what to wake, the quorum.</param>
    /// <param name="store">Where checkpoints are stored; required when <see cref="GroupOptions.Checkpoint"/> is set.</param>
    /// <param name="restored">The checkpoint the log continues from (the log starts right after it).</param>
    /// <param name="clock">
    /// The clock every decision reads: reply timeouts and silence, replay progress, checkpoint and passive-update
    /// cadence, activations. The log's append times must come from the same clock. Waits for real I/O (a
    /// readiness probe, the backoff between restarts) run on real time. The system clock when null.
    /// </param>
    public ReplicaGroup(GroupOptions options, IGroupPolicy policy, IProtocol protocol, ISequencer sequencer, Func<DomainSpec, IDomain> createDomain, ReshMetrics metrics, EventJournal events, ILogger? logger = null, CheckpointStore? store = null, VerifiedCheckpoint? restored = null, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(sequencer);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));
        if (options.Checkpoint is not null && store is null)
        {
            throw new ArgumentException("checkpoints need a store", nameof(store));
        }

        var log = sequencer.Log;
        if (restored is not null ? log.First != restored.Sequence + 1 : log.First != 0)
        {
            throw new ArgumentException($"the log starts at #{log.First}, but the restored checkpoint covers up to #{restored?.Sequence ?? -1}", nameof(restored));
        }

        _options = options;
        _protocol = protocol;
        _log = log;
        _sequencer = sequencer;
        _store = store;
        _newest = restored;
        _lastCheckpointAt = restored?.Sequence ?? -1;
        _createDomain = createDomain;
        _metrics = metrics;
        _events = events;
        _logger = logger ?? NullLogger.Instance;
        _clock = clock ?? TimeProvider.System;
        _lastCheckpointTimestamp = _clock.GetTimestamp();
        _policy = policy;
        if (options.Faults >= 0 && _policy.ReplicaCountProblem(options.Faults, options.Replicas.Count) is { } problem)
        {
            throw new ArgumentException($"invalid options:\n{problem}", nameof(options));
        }

        _voter = new Voter(_policy.VotingFaults(options.Faults), _clock) { Members = options.Replicas.Count };
        if (log.Durable is { } durable)
        {
            AddCommitGate(durable);
        }

        _replicas = [.. options.Replicas.Select((spec, i) => new Replica(i, spec))];
        if (restored?.Labels is { } labels)
        {
            protocol.Restored(restored.Sequence, labels);
        }
    }

    public int Faults => _options.Faults;

    /// <summary>True while at least f+1 replicas vote, i.e. requests can be decided.</summary>
    public bool Ready
    {
        get
        {
            lock (_lock)
            {
                return _voter.VoterCount >= _voter.Quorum;
            }
        }
    }

    /// <summary>Starts every replica and waits until all of them answer their probe.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Checkpoint entries of the history the group starts with are not run again (see SkipsCheckpoint).
        Volatile.Write(ref _startHead, _log.Head);
        foreach (var replica in _replicas)
        {
            _supervisors.Add(Task.Run(() => SuperviseAsync(replica, _stopping.Token), CancellationToken.None));
        }

        StartCheckpoints();
        _policy.Attach(this);
        _policyLoop = Task.Run(() => _policy.RunAsync(_stopping.Token), CancellationToken.None);
        _monitor = Task.Run(() => MonitorAsync(_stopping.Token), CancellationToken.None);
        StartVerifier();
        foreach (var replica in _replicas)
        {
            try
            {
                await replica.FirstStart.Task.WaitAsync(_options.StartupTimeout + TimeSpan.FromSeconds(5), cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new DomainStartException($"replica {replica.Spec.Id} did not become ready within {_options.StartupTimeout.TotalSeconds:0.#}s; see {LogDirectory} for its output");
            }
        }
    }

    private string LogDirectory => Path.Combine(_options.StateDirectory, "logs");

    public GroupStatus Status()
    {
        lock (_lock)
        {
            var replicas = _replicas.Select(r => new ReplicaStatus(
                r.Spec.Id,
                r.State.ToString().ToLowerInvariant(),
                r.Domain?.Pid,
                r.Port,
                r.Applier?.Applied ?? -1,
                r.Mismatches,
                r.Recoveries,
                r.Generation,
                SafeCpu(r.Domain),
                r.Domain?.Isolation,
                r.LastSuspicion,
                r.LastReplay)
            {
                Role = r.Role.ToString().ToLowerInvariant(),
                LastUpdate = r.LastUpdate,
            }).ToList();
            return new GroupStatus(_policy.Name, _options.Faults, _log.Head, _voter.DecidedHead, _voter.VoterCount, _voter.VoterCount >= _voter.Quorum, replicas)
            {
                LogFirst = _log.First,
                Checkpoint = _newest,
                Activations = _policy.Counters.Activations,
                Rejuvenations = _policy.Counters.Rejuvenations,
                StateUpdates = StateUpdates,
                VerifiedKeys = VerifiedKeys,
            };
        }
    }

    private static double SafeCpu(IDomain? domain)
    {
        try
        {
            return domain?.CpuTime.TotalSeconds ?? 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return 0;
        }
    }

    /// <summary>Stops the group: supervision first (no replica is started after), then the monitor, the policy and the checkpoint writer. Idempotent.</summary>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposal ??= StopAsync();
            return new ValueTask(_disposal);
        }
    }

    private async Task StopAsync()
    {
        await Task.Yield();
        _stopping.Cancel();
        lock (_lock)
        {
            foreach (var r in _replicas)
            {
                r.Broken.TrySetResult("stopping");
            }
        }

        _storeJobs.Writer.TryComplete();
        var ended = true;
        try
        {
            await Task.WhenAll([.. _supervisors, _monitor, _storer, _policyLoop, _verifier]).WaitAsync(TimeSpan.FromSeconds(15));
        }
        catch (TimeoutException)
        {
            // A supervisor still finishing a step sees the cancelled token and starts nothing more; its token must stay valid.
            ended = false;
        }

        lock (_lock)
        {
            foreach (var r in _replicas)
            {
                r.State = ReplicaState.Down;
            }
        }

        if (ended)
        {
            _stopping.Dispose();
        }
    }
}
