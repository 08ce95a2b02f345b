using System.Diagnostics;
using System.Globalization;
using Resh.Group;
using Resh.Voting;

namespace Resh.Modes;

/// <summary>
/// Mode spare (SPARE, NDSS 2011): f+1 active replicas execute and vote, and a reply needs all f+1 of them (the
/// voter's quorum); f+1 passive replicas stay frozen. Every update interval each passive replica is thawed, fed
/// the verified (settled) prefix of the log, its replies checked against the decided digests, and frozen again.
/// When the active replicas' replies split, or one misses its reply, or fewer than f+1 are left, the passive
/// replicas are woken: they replay up to the contested entry and vote on it, f+1 equal replies decide, and the
/// replicas that were outvoted or silent are replaced. Once settled, extra active replicas go back to passive.
/// Proactive recovery activates the oldest passive replica and discards the oldest active domain, whose slot
/// starts again as a fresh passive replica from the newest verified checkpoint.
/// </summary>
public sealed class SparePolicy(SpareOptions spare) : IGroupPolicy
{
    private readonly Lock _lock = new();
    private IGroupControl _group = null!;
    private Activation? _activation;
    private long _activations;
    private long _rejuvenations;
    private bool _rejuvenating;

    public string Name => "spare";

    public int ReplicasFor(int faults) => 2 * faults + 2;

    public string? ReplicaCountProblem(int faults, int count) => count == ReplicasFor(faults) ? null
        : $"replicas: mode spare with faults: {faults} needs exactly 2f+2 (f+1 active, f+1 passive) = {ReplicasFor(faults)} replicas (got {count}); add or remove entries, or change faults";

    public bool Serving => true;

    public bool WatchesSplits => true;

    /// <summary>Never while an activation runs: the entry it contests needs every voter it has.</summary>
    public bool MayDemote => Volatile.Read(ref _activation) is null;

    public (long Activations, long Rejuvenations) Counters => (Interlocked.Read(ref _activations), Interlocked.Read(ref _rejuvenations));

    public void Attach(IGroupControl control) => _group = control;

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first)
    {
        if (first)
        {
            // The first f+1 replicas of the configuration start active, the others passive.
            return replica < view.Quorum ? ReplicaRole.Active : ReplicaRole.Passive;
        }

        var active = view.Replicas.Count(r => r.Index != replica && r.Role == ReplicaRole.Active && r.State is not (ReplicaState.Suspected or ReplicaState.Down));
        return active >= view.Quorum ? ReplicaRole.Passive : ReplicaRole.Active;
    }

    /// <summary>A replica brought up to date replays the writes; decided reads could not change its state. Off once it votes.</summary>
    public bool SkipsSettledReads(ReplicaRole role, bool first) => role == ReplicaRole.Passive || !first;

    public long UpdateTarget(GroupView view) => view.SettledBelowHead;

    /// <summary>No activation running, the group not stopping, and a passive replica left to wake.</summary>
    public bool CanWake(GroupView view) =>
        Volatile.Read(ref _activation) is null && !_group.Stopping
        && view.Replicas.Any(r => r.Role == ReplicaRole.Passive && r.State is ReplicaState.Passive or ReplicaState.Updating or ReplicaState.Starting);

    public void OnSplit(long sequence) => Activate($"mismatch: the active replicas' replies to #{sequence} differ", sequence, null);

    public void OnSilent(long sequence, IReadOnlyList<int> silent, string reason) => Activate(reason, sequence, [.. silent]);

    public void OnSuspected() => Rebalance();

    /// <summary>Measures the activation: from waking the passive replicas to the decision they made possible.</summary>
    public void OnReleased(VoteOutcome outcome)
    {
        var activation = Volatile.Read(ref _activation);
        if (activation is null || outcome.Kind is VoteOutcomeKind.Mismatch or VoteOutcomeKind.Diverged || Volatile.Read(ref activation.DecidedTimestamp) != 0
            || (activation.Contested >= 0 && outcome.Entry.Sequence != activation.Contested))
        {
            return;
        }

        if (Interlocked.CompareExchange(ref activation.DecidedTimestamp, _group.Clock.GetTimestamp(), 0) == 0)
        {
            _group.Metrics.ActivationLatency(_group.Clock.GetElapsedTime(activation.Started, activation.DecidedTimestamp));
        }
    }

    /// <summary>
    /// Wakes every passive replica: the fault path of mode spare. <paramref name="contested"/> is the entry the
    /// active replicas could not decide (-1: none, f+1 active replicas are just missing); <paramref name="silent"/>
    /// the active replicas that did not answer it, replaced once it is decided without them.
    /// </summary>
    private void Activate(string reason, long contested, int[]? silent)
    {
        var view = _group.View();
        List<ReplicaView> woken;
        lock (_lock)
        {
            if (!CanWake(view))
            {
                return;
            }

            woken = [.. view.Replicas.Where(r => r.Role == ReplicaRole.Passive && r.State is not (ReplicaState.Suspected or ReplicaState.Down))];
            Volatile.Write(ref _activation, new Activation(contested, silent ?? [], _group.Clock.GetTimestamp(), [.. woken.Select(r => r.Index)]));
            Interlocked.Increment(ref _activations);
        }

        var ids = string.Join(", ", woken.Select(r => r.Id));
        _group.Metrics.Activation(reason.Split(':', 2)[0]);
        GroupLog.Activation(_group.Logger, reason, ids);
        _group.Events.Record("+activation", null, $"{reason}; waking {ids}");
        foreach (var r in woken)
        {
            _ = _group.WakeAsync(r.Index);
        }
    }

    /// <summary>One tick of the mode: ends a settled activation, then brings the group back to f+1 active replicas.</summary>
    internal void Tick()
    {
        EndActivationIfSettled();
        Rebalance();
    }

    /// <summary>
    /// Ends an activation once the woken replicas vote and the contested entry is settled (replacing the active
    /// replicas that stayed silent on it).
    /// </summary>
    private void EndActivationIfSettled()
    {
        if (Volatile.Read(ref _activation) is not { } a)
        {
            return;
        }

        var view = _group.View();
        var catchingUp = a.Woken.Any(i => view.Replicas[i].Role == ReplicaRole.Active && view.Replicas[i].State is ReplicaState.Starting or ReplicaState.Recovering);
        var settled = a.Contested < 0 ? view.Voters >= view.Quorum : _group.IsSettled(a.Contested);
        var elapsed = _group.Clock.GetElapsedTime(a.Started);
        var options = _group.Options;
        string? done = null;
        List<ReplicaView>? silent = null;
        if (settled && !catchingUp)
        {
            foreach (var i in a.Silent)
            {
                var r = view.Replicas[i];
                if (r.State == ReplicaState.Up && r.Applied < a.Contested)
                {
                    (silent ??= []).Add(r);
                }
            }

            var decided = a.DecidedTimestamp != 0 ? _group.Clock.GetElapsedTime(a.Started, a.DecidedTimestamp).TotalMilliseconds : elapsed.TotalMilliseconds;
            var voting = string.Join(", ", view.Replicas.Where(r => r.Votes).Select(r => r.Id));
            done = string.Create(CultureInfo.InvariantCulture, $"{(a.Contested >= 0 ? $"#{a.Contested}" : "the group")} decided {decided:0.#} ms after waking the passive replicas; voting: {voting}");
        }
        else if (elapsed > options.StartupTimeout + options.ReplyTimeout)
        {
            done = $"gave up waiting after {elapsed.TotalSeconds:0.#}s: the woken replicas did not catch up, or #{a.Contested} is still open";
        }

        if (done is null || Interlocked.CompareExchange(ref _activation, null, a) != a)
        {
            return;
        }

        _group.Events.Record("+activation-done", null, done);
        foreach (var r in silent ?? [])
        {
            _group.Suspect(r.Index, r.Generation, "timeout", $"no reply to #{a.Contested}, which f+1 other replicas decided");
        }
    }

    /// <summary>
    /// Wakes the passive replicas when fewer than f+1 active ones are left, and sends active replicas beyond f+1 back
    /// to passive once nothing is contested (the most recently activated first).
    /// </summary>
    private void Rebalance()
    {
        if (_group.Stopping)
        {
            return;
        }

        var view = _group.View();
        var up = view.Replicas.Where(r => r.Role == ReplicaRole.Active && r.State == ReplicaState.Up).ToList();
        var coming = view.Replicas.Count(r => r.Role == ReplicaRole.Active && r.State is ReplicaState.Starting or ReplicaState.Recovering);
        var alive = up.Count + coming;
        if (alive < view.Quorum)
        {
            if (CanWake(view))
            {
                Activate($"missing: only {alive} of {view.Quorum} active replicas are left", -1, null);
            }

            return;
        }

        bool rejuvenating;
        lock (_lock)
        {
            rejuvenating = _rejuvenating;
        }

        if (Volatile.Read(ref _activation) is null && !rejuvenating && coming == 0 && up.Count > view.Quorum)
        {
            foreach (var r in up.OrderByDescending(r => r.ActivatedTimestamp).Take(up.Count - view.Quorum))
            {
                _ = _group.DemoteAsync(r.Index);
            }
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var clock = _group.Clock;
        var tick = TimeSpan.FromMilliseconds(Math.Clamp((spare.UpdateEvery ?? TimeSpan.FromMilliseconds(50)).TotalMilliseconds / 4, 5, 50));
        var lastUpdate = clock.GetTimestamp();
        var lastRejuvenation = lastUpdate;
        using var timer = new PeriodicTimer(tick, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                Tick();
                var view = _group.View();
                if (Volatile.Read(ref _activation) is not null || view.Voters < view.Quorum)
                {
                    continue;
                }

                // Due by how far the passive replicas at rest are behind, not by what the last update covered: writes that
                // arrive while an update runs, or before this loop starts, are still owed to them.
                var behind = PassiveBehind(view);
                var due = behind > 0
                    && ((spare.UpdateEvery is { } every && clock.GetElapsedTime(lastUpdate) >= every)
                        || (spare.UpdateEveryEntries is { } entries && behind >= entries));
                if (due)
                {
                    await UpdatePassivesAsync(cancellationToken);
                    lastUpdate = clock.GetTimestamp();
                }

                if (spare.RejuvenateEvery is { } rejuvenate && clock.GetElapsedTime(lastRejuvenation) >= rejuvenate)
                {
                    await RejuvenateAsync(cancellationToken);
                    lastRejuvenation = clock.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>How many settled entries the furthest-behind passive replica at rest has yet to apply (0: none).</summary>
    private long PassiveBehind(GroupView view)
    {
        var last = UpdateTarget(view) - 1;
        var behind = 0L;
        foreach (var r in view.Replicas)
        {
            if (r.Role == ReplicaRole.Passive && r.State == ReplicaState.Passive)
            {
                behind = Math.Max(behind, last - r.Applied);
            }
        }

        return behind;
    }

    /// <summary>
    /// One passive update: every passive replica is brought up to the settled prefix, by replay or by state
    /// (<see cref="SpareOptions.UpdateBy"/>). With a digest command the active replicas also vote on the service's digest,
    /// and every passive replica replays that vote, so it compares its state with theirs.
    /// </summary>
    private async Task UpdatePassivesAsync(CancellationToken ct)
    {
        var options = _group.Options;
        // A checkpoint digest that is not a command (rdb: Resh reads the files) is no default for the update.
        var digest = spare.Digest ?? (options.Checkpoint is { VotesOnFiles: false } c ? c.Digest : null);
        if (digest is not null && spare.UpdateBy == PassiveUpdateMethod.Replay)
        {
            // Replay only: the digest goes first and is replayed with the rest, in one thaw.
            await _group.ProbeDigestAsync(digest, ct);
            await _group.UpdatePassivesAsync(UpdateTarget(_group.View()), PassiveUpdateMethod.Replay, ct);
            return;
        }

        await _group.UpdatePassivesAsync(UpdateTarget(_group.View()), spare.UpdateBy, ct);
        if (digest is not null)
        {
            // After a state transfer, which leaves out everything before its read: the digest is replayed after it.
            await _group.ProbeDigestAsync(digest, ct);
            await _group.UpdatePassivesAsync(UpdateTarget(_group.View()), PassiveUpdateMethod.Replay, ct);
        }
    }

    /// <summary>
    /// Proactive recovery: the oldest passive replica is activated; once it votes, the oldest active domain is
    /// discarded and its slot starts again as a passive replica from the newest verified checkpoint (taken first,
    /// when checkpoints are configured).
    /// </summary>
    internal async Task RejuvenateAsync(CancellationToken ct)
    {
        var view = _group.View();
        var calm = Volatile.Read(ref _activation) is null
            && view.Replicas.Count(r => r.Role == ReplicaRole.Active && r.State == ReplicaState.Up) == view.Quorum
            && view.Replicas.Count(r => r.Role == ReplicaRole.Passive && r.State == ReplicaState.Passive) == view.Replicas.Count - view.Quorum;
        var passive = calm ? view.Replicas.Where(r => r.Role == ReplicaRole.Passive).MinBy(r => r.StartedTimestamp) : null;
        var active = calm ? view.Replicas.Where(r => r.Role == ReplicaRole.Active).MinBy(r => r.StartedTimestamp) : null;
        if (passive is null || active is null)
        {
            return;
        }

        lock (_lock)
        {
            _rejuvenating = true;
        }

        try
        {
            var options = _group.Options;
            if (options.Checkpoint is not null)
            {
                await _group.CheckpointNowAsync(options.StartupTimeout);
            }

            await _group.WakeAsync(passive.Index);
            var waited = Stopwatch.StartNew();
            while (_group.View().Replicas[passive.Index] is var now && now.State != ReplicaState.Up)
            {
                if (waited.Elapsed > options.StartupTimeout || now.Role != ReplicaRole.Active || now.State is ReplicaState.Suspected or ReplicaState.Down)
                {
                    _group.Events.Record("+rejuvenation-failed", passive.Id, $"it did not vote within {options.StartupTimeout.TotalSeconds:0}s after activation; {active.Id} stays");
                    return;
                }

                await Task.Delay(5, ct);
            }

            if (!_group.Retire(active.Index, active.Generation))
            {
                return;
            }

            Interlocked.Increment(ref _rejuvenations);
            _group.Metrics.Rejuvenation();
            var from = _group.NewestCheckpoint is { } c ? $"from checkpoint #{c.Sequence}" : "from the log";
            _group.Events.Record("+rejuvenation", active.Id, $"{passive.Id} (passive) now votes; {active.Id}.g{active.Generation} is discarded and starts again as a passive replica {from}");
        }
        finally
        {
            lock (_lock)
            {
                _rejuvenating = false;
            }
        }
    }

    /// <summary>A running activation: the contested entry (or -1), the silent active replicas, when, and whom it woke.</summary>
    private sealed class Activation(long contested, int[] silent, long started, int[] woken)
    {
        public long Contested { get; } = contested;

        public int[] Silent { get; } = silent;

        public long Started { get; } = started;

        public int[] Woken { get; } = woken;

        /// <summary>Stopwatch timestamp of the decision the activation made possible; 0 until then.</summary>
        public long DecidedTimestamp;
    }
}
