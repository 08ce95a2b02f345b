using System.Buffers;
using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Checkpoints;
using Resh.Diagnostics;
using Resh.Domains;
using Resh.Ordering;
using Resh.Protocols;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Modes;

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
    private readonly Voter _voter;
    private readonly Replica[] _replicas;
    private readonly Lock _lock = new();
    private readonly Lock _commitLock = new();
    private readonly PriorityQueue<(LogEntry Entry, ReadOnlyMemory<byte> Reply, long Held), long> _awaitingCommit = new();
    private readonly List<ICommitGate> _gates = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _supervisors = [];
    private Task _monitor = Task.CompletedTask;

    /// <param name="store">Where checkpoints are stored; required when <see cref="GroupOptions.Checkpoint"/> is set.</param>
    /// <param name="restored">The checkpoint the log continues from (the log starts right after it).</param>
    /// <param name="policy">What the mode decides (<see cref="ModePolicies.For"/>); every replica active and voting when null.</param>
    public ReplicaGroup(GroupOptions options, IProtocol protocol, ISequencer sequencer, Func<DomainSpec, IDomain> createDomain, ReshMetrics metrics, EventJournal events, ILogger? logger = null, CheckpointStore? store = null, VerifiedCheckpoint? restored = null, IGroupPolicy? policy = null)
    {
        ArgumentNullException.ThrowIfNull(options);
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
        _voter = new Voter(options.VotingFaults) { Members = options.Replicas.Count };
        _policy = policy ?? new ActivePolicy();
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
        foreach (var replica in _replicas)
        {
            _supervisors.Add(Task.Run(() => SuperviseAsync(replica, _stopping.Token), CancellationToken.None));
        }

        StartCheckpoints();
        _policy.Attach(this);
        _policyLoop = Task.Run(() => _policy.RunAsync(_stopping.Token), CancellationToken.None);
        _monitor = Task.Run(() => MonitorAsync(_stopping.Token), CancellationToken.None);
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
            return new GroupStatus(_options.ModeName, _options.Faults, _log.Head, _voter.DecidedHead, _voter.VoterCount, _voter.VoterCount >= _voter.Quorum, replicas)
            {
                LogFirst = _log.First,
                Checkpoint = _newest,
                Activations = _policy.Counters.Activations,
                Rejuvenations = _policy.Counters.Rejuvenations,
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

    /// <summary>Runs a fault drill against one replica; returns what was done.</summary>
    public async Task<string> InjectAsync(string replicaId, FaultKind fault, CancellationToken cancellationToken)
    {
        var replica = _replicas.FirstOrDefault(r => r.Spec.Id == replicaId)
            ?? throw new ArgumentException($"no replica '{replicaId}'; replicas are {string.Join(", ", _replicas.Select(r => r.Spec.Id))}", nameof(replicaId));
        IDomain? domain;
        ReplicaApplier? applier;
        int port;
        bool passive;
        lock (_lock)
        {
            domain = replica.Domain;
            applier = replica.Applier;
            port = replica.Port;
            passive = replica.State is ReplicaState.Passive or ReplicaState.Updating;
            if (domain is null || replica.State is not (ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Passive or ReplicaState.Updating))
            {
                throw new InvalidOperationException($"replica {replicaId} is {replica.State.ToString().ToLowerInvariant()}, not running");
            }
        }

        if (passive && fault == FaultKind.Hang)
        {
            throw new InvalidOperationException($"replica {replicaId} is passive and frozen already; a hang would end at its next update (inject crash, corrupt or slow)");
        }

        if (passive && fault == FaultKind.Corrupt)
        {
            return await CorruptPassiveAsync(replica, domain, port, cancellationToken);
        }

        string detail;
        switch (fault)
        {
            case FaultKind.Crash:
                detail = $"SIGKILL to pid {domain.Pid}";
                Injected(replicaId, fault, detail);
                domain.Kill();
                return detail;
            case FaultKind.Hang:
                detail = $"froze pid {domain.Pid} ({domain.Isolation})";
                Injected(replicaId, fault, detail);
                domain.Pause();
                return detail;
            case FaultKind.Corrupt:
                detail = await _protocol.CorruptAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                Injected(replicaId, fault, detail);
                return detail;
            case FaultKind.Slow:
                if (applier is null)
                {
                    throw new InvalidOperationException($"replica {replicaId} has no connection yet");
                }

                detail = $"every reply delayed by {_options.SlowDelay.TotalMilliseconds:0} ms";
                Injected(replicaId, fault, detail);
                applier.ReplyDelay = _options.SlowDelay;
                return detail;
            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault, null);
        }
    }

    private void Injected(string replicaId, FaultKind fault, string detail)
    {
        GroupLog.FaultInjected(_logger, replicaId, fault, detail);
        _events.Record("+fault-injected", replicaId, $"{fault.ToString().ToLowerInvariant()}: {detail}");
    }

    public async ValueTask DisposeAsync()
    {
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
            await Task.WhenAll([.. _supervisors, _monitor, _storer, _policyLoop]).WaitAsync(TimeSpan.FromSeconds(15));
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

    // ---- supervision -------------------------------------------------------------------------

    private async Task SuperviseAsync(Replica replica, CancellationToken ct)
    {
        var failures = 0;
        var first = true;
        while (!ct.IsCancellationRequested)
        {
            IDomain? domain = null;
            ReplicaApplier? applier = null;
            var started = false;
            try
            {
                var generation = replica.Generation + 1;
                var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
                var dataDir = Path.GetFullPath(Path.Combine(_options.StateDirectory, "replicas", replica.Spec.Id, $"g{generation}"));
                if (Directory.Exists(dataDir))
                {
                    Directory.Delete(dataDir, recursive: true);
                }

                Directory.CreateDirectory(dataDir);

                // A new replica starts from the newest verified checkpoint and replays only the log after it.
                VerifiedCheckpoint? from;
                lock (_lock)
                {
                    from = _newest;
                    replica.StartsAt = from is null ? 0 : from.Sequence + 1;
                    replica.Role = _policy.RoleOfNewGeneration(ViewUnderLock(), replica.Index, first);
                }

                if (from is not null)
                {
                    var restoreStarted = Stopwatch.GetTimestamp();
                    var info = await _store!.RestoreAsync(from.SnapshotId, dataDir, ct);
                    _events.Record("+replica-restored", replica.Spec.Id, $"generation {generation} starts from checkpoint #{from.Sequence} ({from.SnapshotId}, {info.LogicalBytes} bytes in {Stopwatch.GetElapsedTime(restoreStarted).TotalMilliseconds:0} ms)");
                }

                var values = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["dir"] = dataDir,
                    ["id"] = replica.Spec.Id,
                };
                var args = CommandTemplate.Expand(replica.Spec.Command, values);
                var logDir = Path.GetFullPath(LogDirectory);

                // Stopping ends supervision first: no replica is started once the group stops (the domain factory
                // is disposed after it).
                ct.ThrowIfCancellationRequested();
                domain = _createDomain(new DomainSpec($"{replica.Spec.Id}.g{generation}", args, dataDir, logDir, replica.Spec.Environment));
                lock (_lock)
                {
                    replica.Generation = generation;
                    replica.DataDirectory = dataDir;
                    replica.Port = port;
                    replica.Domain = domain;
                    replica.State = ReplicaState.Starting;
                    replica.Broken = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                domain.Start();
                await WaitUntilReadyAsync(domain, port, ct);
                if (from?.Labels is { } labels)
                {
                    await RestoreStateAsync(replica, port, labels, ct);
                }

                GroupLog.ReplicaStarted(_logger, replica.Spec.Id, generation, domain.Pid, port, domain.Isolation);

                long parkAt = -1;
                lock (_lock)
                {
                    // The first generation starts with the group (before any client, perhaps on a log restored from
                    // disk) and votes from the start; a rebuilt replica replays first. A passive one (mode spare) is
                    // fed the verified log and frozen.
                    var start = replica.StartsAt ?? 0;
                    applier = new ReplicaApplier(replica.Spec.Id, replica.Index, new IPEndPoint(IPAddress.Loopback, port), _log, _protocol, start, this)
                    {
                        // A replica brought up to date may replay only the writes (the policy says); off once it votes.
                        SkipSettledReads = _policy.SkipsSettledReads(replica.Role, first),
                    };
                    if (replica.Role == ReplicaRole.Passive)
                    {
                        replica.State = ReplicaState.Updating;
                        parkAt = Math.Max(start, _policy.UpdateTarget(ViewUnderLock()));
                        applier.Limit = parkAt;
                    }
                    else
                    {
                        replica.State = first ? ReplicaState.Up : ReplicaState.Recovering;
                        if (replica.State == ReplicaState.Up)
                        {
                            _voter.AddVoter(replica.Index);
                        }
                    }

                    replica.Applier = applier;
                    replica.Activating = false;
                    replica.StartedTimestamp = Stopwatch.GetTimestamp();
                    replica.StartsAt = null;
                    replica.ReplayFrom = start;
                    replica.ProgressApplied = start - 1;
                    replica.ProgressTimestamp = replica.StartedTimestamp;
                    replica.ReplayTimestamp = replica.ProgressTimestamp;
                }

                await applier.StartAsync(ct);
                if (parkAt >= 0)
                {
                    _ = ParkAsync(replica, applier, parkAt, ct);
                }
                started = true;
                failures = 0;
                if (first)
                {
                    first = false;
                    replica.FirstStart.TrySetResult();
                }

                var exited = domain.Exited;
                var broken = replica.Broken.Task;
                var done = await Task.WhenAny(exited, broken);
                if (done == exited)
                {
                    var code = await exited;
                    Suspect(replica, applier, "exit", $"process exited with code {code}");
                }
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                // Stopping: whatever failed (a domain killed under it, a disposed factory) is the stop, not a fault.
            }
            catch (Exception e)
            {
                failures++;
                lock (_lock)
                {
                    // This generation will not apply the log: it no longer holds truncation back (the next
                    // attempt picks the newest checkpoint again).
                    replica.StartsAt = null;
                }

                var reason = e is DomainStartException or CommandTemplateException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                GroupLog.ReplicaStartFailed(_logger, replica.Spec.Id, reason);
                _events.Record("+replica-start-failed", replica.Spec.Id, reason);
                if (first && failures >= 3)
                {
                    replica.FirstStart.TrySetException(new DomainStartException($"replica {replica.Spec.Id} could not be started: {reason}"));
                }

                Suspect(replica, applier, "start", reason);
            }
            finally
            {
                if (applier is not null)
                {
                    await applier.DisposeAsync();
                }

                if (domain is not null)
                {
                    await domain.DisposeAsync();
                }
            }

            if (ct.IsCancellationRequested)
            {
                break;
            }

            var backoff = started ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures, 6))));
            try
            {
                await Task.Delay(backoff, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// Gives a replica restored from a checkpoint what the checkpoint's files do not hold (RESP: the configuration
    /// changed by CONFIG SET), before it replays the log after the checkpoint. A refused request is recorded.
    /// </summary>
    private async Task RestoreStateAsync(Replica replica, int port, IReadOnlyDictionary<string, string> labels, CancellationToken ct)
    {
        var requests = _protocol.RestoreRequests(labels);
        if (requests.Count == 0)
        {
            return;
        }

        using var client = await WireClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), _protocol.CreateReplyFramer(), ct);
        foreach (var request in requests)
        {
            var reply = await client.RequestAsync(request, ct);
            if (_protocol.IsErrorReply(reply))
            {
                _events.Record("+replica-restore-refused", replica.Spec.Id, $"{System.Text.Encoding.UTF8.GetString(request).ReplaceLineEndings(" ").Trim()}: {System.Text.Encoding.UTF8.GetString(reply).Trim()}");
            }
        }
    }

    private async Task WaitUntilReadyAsync(IDomain domain, int port, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.StartupTimeout);
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        try
        {
            while (true)
            {
                if (domain.Exited.IsCompleted)
                {
                    throw new DomainStartException($"{domain.Id} exited with code {await domain.Exited} during start; see {Path.Combine(LogDirectory, domain.Id)}.err");
                }

                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                attempt.CancelAfter(TimeSpan.FromSeconds(1));
                try
                {
                    if (await _protocol.ProbeAsync(endpoint, attempt.Token))
                    {
                        return;
                    }
                }
                catch (OperationCanceledException) when (!timeout.IsCancellationRequested)
                {
                }

                await Task.Delay(50, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new DomainStartException($"{domain.Id} did not answer the readiness probe on port {port} within {_options.StartupTimeout.TotalSeconds:0.#}s; see {Path.Combine(LogDirectory, domain.Id)}.err");
        }
    }

    private async Task MonitorAsync(CancellationToken ct)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.ReplyTimeout.TotalMilliseconds / 5, 10, 250));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                Check();
                CheckpointTick();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Suspects replicas that miss the reply timeout or lag, and lets caught-up recovering replicas vote.</summary>
    private void Check()
    {
        var toSuspect = new List<(Replica, ReplicaApplier, string, string)>();
        List<(Replica Replica, long Sequence)>? missing = null;
        bool? canWake = null;
        lock (_lock)
        {
            var count = _log.Count;
            foreach (var r in _replicas)
            {
                var applier = r.Applier;
                if (applier is null || r.State is not (ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Updating))
                {
                    continue;
                }

                var applied = applier.Applied;
                if (r.State == ReplicaState.Recovering && applied >= count - 1)
                {
                    Join(r, applied);
                    continue;
                }

                if (r.State == ReplicaState.Updating && applied >= Math.Min(applier.Limit, count) - 1)
                {
                    // Done with its update (it is frozen when its park completes); nothing to wait for.
                    r.ProgressApplied = applied;
                    r.ProgressTimestamp = Stopwatch.GetTimestamp();
                    continue;
                }

                var now = Stopwatch.GetTimestamp();
                if (applied != r.ProgressApplied)
                {
                    (r.ProgressApplied, r.ProgressTimestamp) = (applied, now);
                }

                var replaying = r.State is ReplicaState.Recovering or ReplicaState.Updating;
                var next = applied + 1;
                if (!replaying && next >= count)
                {
                    continue;
                }

                // Replaying entries decided long ago is judged by progress, not by their decision times.
                var entry = replaying ? null : _log[next];
                var owed = new OwedReply(
                    replaying,
                    r.ProgressTimestamp,
                    entry is not null && entry.Decision != Decision.Pending,
                    entry?.DecidedTimestamp ?? 0,
                    entry?.AppendedTimestamp ?? 0,
                    !replaying && _voter.HasReplies(next),
                    entry?.Kind == LogEventKind.Checkpoint || applier.AtCheckpointBarrier);
                var timeoutTicks = (long)(_options.ReplyTimeout.TotalSeconds * Stopwatch.Frequency);
                var timeout = _options.ReplyTimeout.TotalSeconds;
                var verdict = SilenceRule.Judge(owed, now, timeoutTicks, !replaying && (canWake ??= _policy.CanWake(ViewUnderLock())));
                switch (verdict)
                {
                    case SilenceVerdict.ReplayStalled:
                        toSuspect.Add((r, applier, "timeout", $"replay made no progress past #{applied} for {timeout:0.###}s ({applier.InFlightCount} in flight)"));
                        continue;
                    case SilenceVerdict.LateAfterDecision:
                        toSuspect.Add((r, applier, "timeout", $"no reply to #{next} {timeout:0.###}s after it was decided ({applier.InFlightCount} in flight)"));
                        continue;
                    case SilenceVerdict.Wake:
                        // The policy can wake replicas to decide without it (mode spare: the passive ones).
                        (missing ??= []).Add((r, next));
                        continue;
                    case SilenceVerdict.SilentWhileOthersAnswered or SilenceVerdict.SilentAlone:
                        var context = verdict == SilenceVerdict.SilentAlone ? "and no replica answered it" : "while others answered";
                        toSuspect.Add((r, applier, "timeout", $"no reply to #{next} within {2 * timeout:0.###}s {context} ({applier.InFlightCount} in flight)"));
                        continue;
                }

                if (replaying)
                {
                    continue;
                }

                if (_voter.DecidedHead - applied > _options.MaxLag)
                {
                    toSuspect.Add((r, applier, "lag", $"{_voter.DecidedHead - applied} entries behind the decided head (max-lag {_options.MaxLag})"));
                }
            }
        }

        foreach (var (r, applier, kind, reason) in toSuspect)
        {
            Suspect(r, applier, kind, reason);
        }

        if (missing is not null)
        {
            var first = missing.MinBy(m => m.Sequence);
            _policy.OnSilent(first.Sequence, [.. missing.Select(m => m.Replica.Index)], $"timeout: no reply from {string.Join(", ", missing.Select(m => m.Replica.Spec.Id))} to #{first.Sequence} within {_options.ReplyTimeout.TotalSeconds:0.###}s");
        }
    }

    private void Join(Replica r, long applied)
    {
        r.State = ReplicaState.Up;
        if (r.Applier is { } applier)
        {
            applier.SkipSettledReads = false;
        }

        _voter.AddVoter(r.Index);
        if (r.Activating)
        {
            // A woken passive replica (mode spare) caught up: an activation, not a recovery.
            r.Activating = false;
            var entries = Math.Max(0, applied - r.ReplayFrom + 1);
            _events.Record("+replica-active", r.Spec.Id, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"woken, replayed {entries} entries (#{r.ReplayFrom}..#{applied}) in {Stopwatch.GetElapsedTime(r.ReplayTimestamp).TotalMilliseconds:0.#} ms, and votes"));
            return;
        }

        r.Recoveries++;
        r.LastReplay = Math.Max(0, applied - r.ReplayFrom + 1);
        var seconds = Stopwatch.GetElapsedTime(r.ReplayTimestamp).TotalSeconds;
        _metrics.Recovery(r.Spec.Id);
        _metrics.Replayed(r.LastReplay.Value);
        GroupLog.ReplicaRecovered(_logger, r.Spec.Id, applied);
        _events.Record("+replica-recovered", r.Spec.Id, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"generation {r.Generation} replayed {r.LastReplay} entries (#{r.ReplayFrom}..#{applied}) in {seconds * 1000:0} ms ({r.LastReplay / Math.Max(seconds, 1e-6):0}/s) and votes again"));
    }

    private void Suspect(Replica replica, ReplicaApplier? applier, string kind, string reason)
    {
        var outcomes = new List<VoteOutcome>();
        List<(Replica, ReplicaApplier?, string)>? mismatches = null;
        lock (_lock)
        {
            if (applier is not null && !ReferenceEquals(replica.Applier, applier))
            {
                return;
            }

            if (replica.State is ReplicaState.Suspected or ReplicaState.Down || _stopping.IsCancellationRequested)
            {
                replica.Broken.TrySetResult(reason);
                return;
            }

            replica.State = ReplicaState.Suspected;
            replica.LastSuspicion = $"{kind}: {reason}";
            if (_voter.IsVoter(replica.Index))
            {
                _voter.RemoveVoter(replica.Index, outcomes);
            }

            replica.Broken.TrySetResult(reason);
            mismatches = CollectMismatches(outcomes, null);
        }

        _metrics.Suspicion(replica.Spec.Id, kind);
        GroupLog.ReplicaSuspected(_logger, replica.Spec.Id, $"{kind}: {reason}");
        _events.Record("+replica-suspected", replica.Spec.Id, $"{kind}: {reason}");
        Release(outcomes);
        SuspectAll(mismatches);
        _policy.OnSuspected();
    }

    // ---- replies -----------------------------------------------------------------------------

    void IApplierCallbacks.OnReply(ReplicaApplier applier, LogEntry entry, ReadOnlySequence<byte> replySequence, int lastReplyOffset)
    {
        var replica = _replicas[applier.ReplicaIndex];
        ReadOnlySpan<byte> reply = replySequence.IsSingleSegment ? replySequence.FirstSpan : replySequence.ToArray();
        var writer = replica.NormalizeBuffer;
        writer.ResetWrittenCount();
        var normalized = _protocol.TryNormalize(reply, entry.ReplyHint, writer) ? writer.WrittenSpan : reply;
        if (entry.Kind == LogEventKind.Checkpoint)
        {
            normalized = CheckpointVote(replica, applier, entry, reply, lastReplyOffset, normalized);
        }

        // Called only from this replica's reader loop, so its outcome list can be reused.
        var outcomes = replica.Outcomes;
        outcomes.Clear();
        List<(Replica, ReplicaApplier?, string)>? mismatches = null;
        var split = -1L;
        var divergence = -1L;
        lock (_lock)
        {
            if (!ReferenceEquals(replica.Applier, applier) || replica.State is not (ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Passive or ReplicaState.Updating))
            {
                return;
            }

            if (replica.State is ReplicaState.Passive or ReplicaState.Updating)
            {
                // A passive replica is fed the verified log: each reply is checked against the decided digest. (One
                // that was demoted from voting also answers the entries it had been sent; those it does not decide.)
                if (entry.Decision == Decision.Decided && Voter.DigestOf(normalized) != entry.Digest)
                {
                    replica.Mismatches++;
                    mismatches = [(replica, applier, $"passive replica's reply to #{entry.Sequence} differs from the decided one")];
                }
            }
            else if (replica.State == ReplicaState.Recovering)
            {
                switch (entry.Decision)
                {
                    case Decision.Decided when _voter.Quorum == 1:
                        // One reply decided it: nothing trustworthy to check a replayed reply against (that one reply
                        // may be the wrong value of a corrupted replica). The replayed state is what the log defines,
                        // so a difference is recorded and the replay goes on; suspecting it would rebuild forever.
                        if (Voter.DigestOf(normalized) != entry.Digest)
                        {
                            divergence = entry.Sequence;
                        }

                        break;
                    case Decision.Decided:
                        if (Voter.DigestOf(normalized) != entry.Digest)
                        {
                            replica.Mismatches++;
                            mismatches = [(replica, applier, $"replayed reply to #{entry.Sequence} differs from the decided one")];
                        }

                        break;
                    case Decision.Disagreed:
                        break;
                    default:
                        // Caught up with the undecided part of the log: from here on it votes.
                        Join(replica, entry.Sequence - 1);
                        _voter.Add(replica.Index, entry, normalized, entry.ReplyLastOnly ? reply[lastReplyOffset..] : reply, outcomes);
                        break;
                }
            }
            else
            {
                _voter.Add(replica.Index, entry, normalized, entry.ReplyLastOnly ? reply[lastReplyOffset..] : reply, outcomes);
                if (_policy.WatchesSplits && entry.Decision == Decision.Pending && _voter.IsSplit(entry.Sequence))
                {
                    split = entry.Sequence;
                }
            }

            mismatches = CollectMismatches(outcomes, mismatches);
        }

        Release(outcomes);
        SuspectAll(mismatches);
        if (divergence >= 0)
        {
            _metrics.Mismatch(replica.Spec.Id);
            _events.Record("+replay-divergence", replica.Spec.Id, $"replayed reply to #{divergence} differs from the one reply that decided it; the replayed state is kept");
        }

        if (split >= 0)
        {
            _policy.OnSplit(split);
        }
    }

    /// <summary>Counts the mismatches among <paramref name="outcomes"/> and pairs each with the applier that produced it. Call under the lock.</summary>
    private List<(Replica, ReplicaApplier?, string)>? CollectMismatches(List<VoteOutcome> outcomes, List<(Replica, ReplicaApplier?, string)>? into)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome.Kind == VoteOutcomeKind.Mismatch)
            {
                var r = _replicas[outcome.Replica];
                r.Mismatches++;
                (into ??= []).Add((r, r.Applier, $"reply to #{outcome.Entry.Sequence} differs from the decided one"));
            }
        }

        return into;
    }

    private void SuspectAll(List<(Replica Replica, ReplicaApplier? Applier, string Reason)>? mismatches)
    {
        if (mismatches is null)
        {
            return;
        }

        foreach (var (r, applier, reason) in mismatches)
        {
            _metrics.Mismatch(r.Spec.Id);
            Suspect(r, applier, "mismatch", reason);
        }
    }

    void IApplierCallbacks.OnBroken(ReplicaApplier applier, string reason)
    {
        Suspect(_replicas[applier.ReplicaIndex], applier, "connection", reason);
    }

    private void Release(List<VoteOutcome> outcomes)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome.Entry.Kind == LogEventKind.Checkpoint)
            {
                if (outcome.Kind != VoteOutcomeKind.Mismatch)
                {
                    CheckpointSettled(outcome);
                }

                continue;
            }

            _policy.OnReleased(outcome);
            switch (outcome.Kind)
            {
                case VoteOutcomeKind.Decided:
                    _metrics.Request("decided");
                    _metrics.ReplyLatency(outcome.Entry.AppendedTimestamp);
                    Complete(outcome.Entry, outcome.Reply);
                    break;
                case VoteOutcomeKind.Disagreed:
                    _metrics.Request("disagreed");
                    GroupLog.Disagreement(_logger, outcome.Entry.Sequence, _voter.Quorum);
                    _events.Record("+disagreement", null, $"no reply to #{outcome.Entry.Sequence} reached {_voter.Quorum} votes");
                    Complete(outcome.Entry, _protocol.ErrorReply("resh: replicas disagree"));
                    break;
            }
        }
    }

    /// <summary>
    /// Adds an output-commit gate: from now on a decided reply is released only once its request is below the
    /// gate's committed count (the ordered log on disk with fsync always, a Remus backup's acknowledgement).
    /// </summary>
    public void AddCommitGate(ICommitGate gate)
    {
        ArgumentNullException.ThrowIfNull(gate);
        lock (_commitLock)
        {
            _gates.Add(gate);
        }

        gate.Committed += OnCommitted;
    }

    /// <summary>Replies held back for output commit (decided, waiting for a gate).</summary>
    public int HeldReplies
    {
        get
        {
            lock (_commitLock)
            {
                return _awaitingCommit.Count;
            }
        }
    }

    /// <summary>The lowest committed count of all gates. Call under the commit lock.</summary>
    private long CommittedCount()
    {
        var count = long.MaxValue;
        foreach (var gate in _gates)
        {
            count = Math.Min(count, gate.CommittedCount);
        }

        return count;
    }

    /// <summary>
    /// Releases a decided reply to its session, once every output-commit gate has committed its request.
    /// </summary>
    private void Complete(LogEntry entry, ReadOnlyMemory<byte> reply)
    {
        if (entry.Origin is null)
        {
            return;
        }

        if (_gates.Count > 0)
        {
            lock (_commitLock)
            {
                if (entry.Sequence >= CommittedCount())
                {
                    _awaitingCommit.Enqueue((entry, reply, Stopwatch.GetTimestamp()), entry.Sequence);
                    return;
                }
            }
        }

        CompleteNow(entry, reply);
    }

    private void OnCommitted(long count)
    {
        List<(LogEntry Entry, ReadOnlyMemory<byte> Reply, long Held)>? ready = null;
        lock (_commitLock)
        {
            var committed = CommittedCount();
            while (_awaitingCommit.TryPeek(out var item, out var seq) && seq < committed)
            {
                _awaitingCommit.Dequeue();
                (ready ??= []).Add(item);
            }
        }

        foreach (var (entry, reply, held) in ready ?? [])
        {
            _metrics.CommitDelay(Stopwatch.GetElapsedTime(held));
            CompleteNow(entry, reply);
        }
    }

    private static void CompleteNow(LogEntry entry, ReadOnlyMemory<byte> reply)
    {
        var origin = entry.Origin;
        if (origin is not null)
        {
            entry.Origin = null;
            origin.Complete(reply);
        }
    }

    private sealed class Replica(int index, ReplicaSpec spec)
    {
        public int Index { get; } = index;

        public ReplicaSpec Spec { get; } = spec;

        public ReplicaState State { get; set; } = ReplicaState.Starting;

        public int Generation { get; set; }

        public int Port { get; set; }

        public string DataDirectory { get; set; } = "";

        /// <summary>Where the generation being started will begin to apply the log; the log is kept from there.</summary>
        public long? StartsAt { get; set; }

        /// <summary>Where the current applier began.</summary>
        public long ReplayFrom { get; set; }

        /// <summary>Recovering: the applied position last seen to move, and when.</summary>
        public long ProgressApplied { get; set; }

        public long ProgressTimestamp { get; set; }

        /// <summary>When the current applier started to replay.</summary>
        public long ReplayTimestamp { get; set; }

        /// <summary>Entries the last rebuild replayed before voting again.</summary>
        public long? LastReplay { get; set; }

        public IDomain? Domain { get; set; }

        public ReplicaApplier? Applier { get; set; }

        public long Mismatches { get; set; }

        public long Recoveries { get; set; }

        public string? LastSuspicion { get; set; }

        public TaskCompletionSource<string> Broken { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource FirstStart { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Active, or (mode spare) passive.</summary>
        public ReplicaRole Role { get; set; } = ReplicaRole.Active;

        /// <summary>Serializes freezing and thawing of this replica's domain with its role changes (mode spare).</summary>
        public SemaphoreSlim Control { get; } = new(1, 1);

        /// <summary>Stopwatch timestamp at which the current generation's applier started: the domain's age.</summary>
        public long StartedTimestamp { get; set; }

        /// <summary>Stopwatch timestamp of the last activation (passive to active), 0 if never.</summary>
        public long ActivatedTimestamp { get; set; }

        /// <summary>Woken from passive and not voting yet (mode spare).</summary>
        public bool Activating { get; set; }

        /// <summary>When it was last brought up to date as a passive replica.</summary>
        public DateTimeOffset? LastUpdate { get; set; }

        /// <summary>Scratch space of this replica's reader loop for normalized replies.</summary>
        public ArrayBufferWriter<byte> NormalizeBuffer { get; } = new(256);

        /// <summary>Scratch list of this replica's reader loop for vote outcomes.</summary>
        public List<VoteOutcome> Outcomes { get; } = new(4);
    }
}
