using System.Diagnostics;
using System.Globalization;
using System.Net;
using Resh.Domains;
using Resh.Ordering;
using Resh.Replicas;
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
public sealed partial class ReplicaGroup
{
    private Task _spareLoop = Task.CompletedTask;
    private Activation? _activation;
    private long _activations;
    private long _rejuvenations;
    private bool _rejuvenating;
    private volatile bool _standby;

    private bool Spare => _options.Mode == ReplicationMode.Spare;

    /// <summary>Mode remus, the backup: the replica waits passive until promoted.</summary>
    public bool Standby => _standby;

    private void StartSpare()
    {
        if (Spare)
        {
            _spareLoop = Task.Run(() => SpareLoopAsync(_stopping.Token), CancellationToken.None);
        }
        else if (_standby)
        {
            _spareLoop = Task.Run(() => StandbyLoopAsync(_stopping.Token), CancellationToken.None);
        }
    }

    /// <summary>
    /// Where a passive replica's update ends: spare, the settled prefix (its replies are checked against decided
    /// digests); the remus backup, everything it holds (the primary acknowledged nothing it did not ship).
    /// </summary>
    private long UpdateTarget() => _standby ? _log.Count : _voter.SettledBelow(_log.Head);

    /// <summary>The remus backup applies what it holds to its frozen domain every apply interval.</summary>
    private async Task StandbyLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.Remus.ApplyInterval);
        try
        {
            while (_standby && await timer.WaitForNextTickAsync(ct))
            {
                await UpdatePassivesAsync(ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Mode remus, the backup takes over: its replica is thawed, applies everything the backup holds, and votes
    /// (alone) from then on. Completes when it votes.
    /// </summary>
    public async Task PromoteAsync(CancellationToken ct)
    {
        _standby = false;
        var replica = _replicas[0];
        var waited = Stopwatch.StartNew();
        while (true)
        {
            await WakeAsync(replica);
            Check();
            lock (_lock)
            {
                if (replica.State == ReplicaState.Up)
                {
                    return;
                }
            }

            if (waited.Elapsed > _options.StartupTimeout)
            {
                throw new TimeoutException($"the backup's replica did not catch up within {_options.StartupTimeout.TotalSeconds:0}s after the takeover (state {replica.State.ToString().ToLowerInvariant()})");
            }

            await Task.Delay(2, ct);
        }
    }

    /// <summary>The role a new generation of <paramref name="replica"/> takes. Call under the lock.</summary>
    private ReplicaRole RoleOfNewGeneration(Replica replica, bool first)
    {
        if (!Spare && !_standby)
        {
            return ReplicaRole.Active;
        }

        if (_standby)
        {
            return ReplicaRole.Passive;
        }

        if (first)
        {
            // The first f+1 replicas of the configuration start active, the others passive.
            return replica.Index < _voter.Quorum ? ReplicaRole.Active : ReplicaRole.Passive;
        }

        var active = _replicas.Count(r => r != replica && r.Role == ReplicaRole.Active && r.State is not (ReplicaState.Suspected or ReplicaState.Down));
        return active >= _voter.Quorum ? ReplicaRole.Passive : ReplicaRole.Active;
    }

    /// <summary>Whether passive replicas can be woken now: mode spare, no activation running, a passive replica left. Call under the lock.</summary>
    private bool CanActivate() =>
        Spare && _activation is null && !_stopping.IsCancellationRequested
        && _replicas.Any(r => r.Role == ReplicaRole.Passive && r.State is ReplicaState.Passive or ReplicaState.Updating or ReplicaState.Starting);

    /// <summary>
    /// Wakes every passive replica: the fault path of mode spare. <paramref name="contested"/> is the entry the
    /// active replicas could not decide (-1: none, f+1 active replicas are just missing); <paramref name="silent"/>
    /// the active replicas that did not answer it, replaced once it is decided without them.
    /// </summary>
    private void Activate(string reason, long contested, int[]? silent)
    {
        List<Replica> woken;
        lock (_lock)
        {
            if (!CanActivate())
            {
                return;
            }

            woken = [.. _replicas.Where(r => r.Role == ReplicaRole.Passive && r.State is not (ReplicaState.Suspected or ReplicaState.Down))];
            _activation = new Activation(contested, silent ?? [], Stopwatch.GetTimestamp(), [.. woken.Select(r => r.Index)]);
            _activations++;
        }

        var ids = string.Join(", ", woken.Select(r => r.Spec.Id));
        _metrics.Activation(reason.Split(':', 2)[0]);
        GroupLog.Activation(_logger, reason, ids);
        _events.Record("+activation", null, $"{reason}; waking {ids}");
        foreach (var r in woken)
        {
            _ = WakeAsync(r);
        }
    }

    /// <summary>Turns a passive replica active: thawed, no limit, replaying to the head; it votes once it reaches an undecided entry.</summary>
    private async Task WakeAsync(Replica replica)
    {
        try
        {
            await replica.Control.WaitAsync(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            IDomain? thaw = null;
            lock (_lock)
            {
                if (replica.Role != ReplicaRole.Passive || replica.State is ReplicaState.Suspected or ReplicaState.Down)
                {
                    return;
                }

                replica.Role = ReplicaRole.Active;
                replica.ActivatedTimestamp = Stopwatch.GetTimestamp();
                if (replica.State is ReplicaState.Passive or ReplicaState.Updating && replica.Applier is { } applier)
                {
                    // Replays from where its last update left it; its replies are checked against the decided digests
                    // until it reaches an entry that is not decided yet, and from there it votes.
                    replica.State = ReplicaState.Recovering;
                    replica.Activating = true;
                    replica.ReplayFrom = applier.Applied + 1;
                    replica.ProgressApplied = applier.Applied;
                    replica.ProgressTimestamp = replica.ActivatedTimestamp;
                    replica.ReplayTimestamp = replica.ActivatedTimestamp;
                    applier.Limit = long.MaxValue;
                    thaw = replica.Domain;
                }

                // Still starting: the supervisor sees the active role when it starts the applier.
            }

            thaw?.Resume();
            GroupLog.ReplicaActivated(_logger, replica.Spec.Id);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            Suspect(replica, null, "activation", $"could not thaw it: {e.Message}");
        }
        finally
        {
            replica.Control.Release();
        }
    }

    /// <summary>Measures the activation: from waking the passive replicas to the decision they made possible (outside the lock).</summary>
    private void ActivationDecided(VoteOutcome outcome)
    {
        var activation = Volatile.Read(ref _activation);
        if (activation is null || outcome.Kind == VoteOutcomeKind.Mismatch || Volatile.Read(ref activation.DecidedTimestamp) != 0
            || (activation.Contested >= 0 && outcome.Entry.Sequence != activation.Contested))
        {
            return;
        }

        if (Interlocked.CompareExchange(ref activation.DecidedTimestamp, Stopwatch.GetTimestamp(), 0) == 0)
        {
            _metrics.ActivationLatency(Stopwatch.GetElapsedTime(activation.Started, activation.DecidedTimestamp));
        }
    }

    /// <summary>
    /// On every tick of mode spare: ends an activation once the woken replicas vote and the contested entry is
    /// settled (replacing the active replicas that stayed silent on it), then brings the group back to f+1
    /// active replicas.
    /// </summary>
    private void SpareTick()
    {
        EndActivationIfSettled();
        Rebalance();
    }

    private void EndActivationIfSettled()
    {
        List<(Replica Replica, ReplicaApplier Applier, string Reason)>? silent = null;
        string? done = null;
        lock (_lock)
        {
            if (_activation is not { } a)
            {
                return;
            }

            var catchingUp = a.Woken.Any(i => _replicas[i].Role == ReplicaRole.Active && _replicas[i].State is ReplicaState.Starting or ReplicaState.Recovering);
            var settled = a.Contested < 0
                ? _voter.VoterCount >= _voter.Quorum
                : a.Contested < _log.First || _log[a.Contested].Decision != Decision.Pending;
            var elapsed = Stopwatch.GetElapsedTime(a.Started);
            if (settled && !catchingUp)
            {
                foreach (var i in a.Silent)
                {
                    var r = _replicas[i];
                    if (r.State == ReplicaState.Up && r.Applier is { } applier && applier.Applied < a.Contested)
                    {
                        (silent ??= []).Add((r, applier, $"no reply to #{a.Contested}, which f+1 other replicas decided"));
                    }
                }

                var decided = a.DecidedTimestamp != 0 ? Stopwatch.GetElapsedTime(a.Started, a.DecidedTimestamp).TotalMilliseconds : elapsed.TotalMilliseconds;
                var voting = string.Join(", ", _replicas.Where(r => _voter.IsVoter(r.Index)).Select(r => r.Spec.Id));
                done = string.Create(CultureInfo.InvariantCulture, $"{(a.Contested >= 0 ? $"#{a.Contested}" : "the group")} decided {decided:0.#} ms after waking the passive replicas; voting: {voting}");
                _activation = null;
            }
            else if (elapsed > _options.StartupTimeout + _options.ReplyTimeout)
            {
                done = $"gave up waiting after {elapsed.TotalSeconds:0.#}s: the woken replicas did not catch up, or #{a.Contested} is still open";
                _activation = null;
            }
        }

        if (done is not null)
        {
            _events.Record("+activation-done", null, done);
        }

        foreach (var (r, applier, reason) in silent ?? [])
        {
            Suspect(r, applier, "timeout", reason);
        }
    }

    /// <summary>
    /// Mode spare: wakes the passive replicas when fewer than f+1 active ones are left, and sends active replicas
    /// beyond f+1 back to passive once nothing is contested (the most recently activated first).
    /// </summary>
    private void Rebalance()
    {
        if (!Spare)
        {
            return;
        }

        var activate = false;
        var alive = 0;
        List<Replica>? demote = null;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            var up = _replicas.Where(r => r.Role == ReplicaRole.Active && r.State == ReplicaState.Up).ToList();
            var coming = _replicas.Count(r => r.Role == ReplicaRole.Active && r.State is ReplicaState.Starting or ReplicaState.Recovering);
            alive = up.Count + coming;
            if (alive < _voter.Quorum)
            {
                activate = CanActivate();
            }
            else if (_activation is null && !_rejuvenating && coming == 0 && up.Count > _voter.Quorum)
            {
                demote = [.. up.OrderByDescending(r => r.ActivatedTimestamp).Take(up.Count - _voter.Quorum)];
            }
        }

        if (activate)
        {
            Activate($"missing: only {alive} of {_voter.Quorum} active replicas are left", -1, null);
        }

        foreach (var r in demote ?? [])
        {
            _ = DemoteAsync(r);
        }
    }

    /// <summary>Takes an active replica out of voting and parks it as a passive replica once it answered what it was sent.</summary>
    private async Task DemoteAsync(Replica replica)
    {
        try
        {
            await replica.Control.WaitAsync(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        ReplicaApplier? applier;
        long target;
        var outcomes = new List<VoteOutcome>();
        List<(Replica, ReplicaApplier?, string)>? mismatches;
        try
        {
            lock (_lock)
            {
                applier = replica.Applier;
                var up = _replicas.Count(r => r.Role == ReplicaRole.Active && r.State == ReplicaState.Up);
                if (applier is null || replica.Role != ReplicaRole.Active || replica.State != ReplicaState.Up || up <= _voter.Quorum || _activation is not null)
                {
                    return;
                }

                _voter.RemoveVoter(replica.Index, outcomes);
                mismatches = CollectMismatches(outcomes, null);
                replica.Role = ReplicaRole.Passive;
                replica.State = ReplicaState.Updating;
                applier.SkipSettledReads = true;
                replica.ProgressApplied = applier.Applied;
                replica.ProgressTimestamp = Stopwatch.GetTimestamp();
                target = _log.Count;
                applier.Limit = target;
            }
        }
        finally
        {
            replica.Control.Release();
        }

        _events.Record("+replica-passive", replica.Spec.Id, $"f+1 replicas vote again without it; it answers what it was sent (up to #{target - 1}) and is frozen");
        Release(outcomes);
        SuspectAll(mismatches);
        await ParkAsync(replica, applier, target, _stopping.Token);
    }

    /// <summary>Waits until a passive replica has applied everything before <paramref name="target"/>, then freezes it.</summary>
    private async Task ParkAsync(Replica replica, ReplicaApplier applier, long target, CancellationToken ct)
    {
        try
        {
            // No bound here: the monitor suspects an updating replica that makes no progress for reply-timeout,
            // which breaks its applier and ends this wait.
            await applier.WaitAppliedAsync(target - 1, ct);
            await replica.Control.WaitAsync(ct);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return;
        }

        try
        {
            IDomain? domain;
            lock (_lock)
            {
                if (!ReferenceEquals(replica.Applier, applier) || replica.Role != ReplicaRole.Passive || replica.State != ReplicaState.Updating)
                {
                    return;
                }

                replica.State = ReplicaState.Passive;
                replica.LastUpdate = DateTimeOffset.UtcNow;
                domain = replica.Domain;
            }

            domain?.Pause();
            GroupLog.ReplicaParked(_logger, replica.Spec.Id, applier.Applied);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException or TimeoutException)
        {
            Suspect(replica, applier, "freeze", $"could not freeze it: {e.Message}");
        }
        finally
        {
            replica.Control.Release();
        }
    }

    private async Task SpareLoopAsync(CancellationToken ct)
    {
        var options = _options.Spare;
        var tick = TimeSpan.FromMilliseconds(Math.Clamp((options.UpdateEvery ?? TimeSpan.FromMilliseconds(50)).TotalMilliseconds / 4, 5, 50));
        var lastUpdate = Stopwatch.GetTimestamp();
        var lastRejuvenation = lastUpdate;
        var updatedHead = _log.Head;
        using var timer = new PeriodicTimer(tick);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                SpareTick();
                bool calm;
                lock (_lock)
                {
                    calm = _activation is null && _voter.VoterCount >= _voter.Quorum;
                }

                if (!calm)
                {
                    continue;
                }

                var head = _log.Head;
                var due = head != updatedHead
                    && ((options.UpdateEvery is { } every && Stopwatch.GetElapsedTime(lastUpdate) >= every)
                        || (options.UpdateEveryEntries is { } entries && head - updatedHead >= entries));
                if (due)
                {
                    updatedHead = await UpdatePassivesAsync(ct);
                    lastUpdate = Stopwatch.GetTimestamp();
                }

                if (options.RejuvenateEvery is { } rejuvenate && Stopwatch.GetElapsedTime(lastRejuvenation) >= rejuvenate)
                {
                    await RejuvenateAsync(ct);
                    lastRejuvenation = Stopwatch.GetTimestamp();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// One passive update: (with a digest command) the active replicas vote on the service's digest, then every
    /// passive replica is thawed, fed the settled log since its last update, and frozen again. Returns the log head
    /// the update covered.
    /// </summary>
    private async Task<long> UpdatePassivesAsync(CancellationToken ct)
    {
        if (Spare && (_options.Spare.Digest ?? _options.Checkpoint?.Digest) is { } digest)
        {
            // Voted like a request: a passive replica replaying it compares its state with the active replicas'.
            var probe = new LogEntry(LogEventKind.Request, 0, 0, _protocol.EncodeCommand(digest), 1);
            try
            {
                await _sequencer.SubmitAsync(probe, ct);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                GroupLog.PassiveUpdateFailed(_logger, $"the digest could not be appended: {e.Message}");
                return _log.Head;
            }

            var waited = Stopwatch.StartNew();
            while (probe.Decision == Decision.Pending && waited.Elapsed < 2 * _options.ReplyTimeout)
            {
                await Task.Delay(2, ct);
            }
        }

        long target;
        List<Replica> due;
        lock (_lock)
        {
            target = UpdateTarget();
            due = [.. _replicas.Where(r => r.Role == ReplicaRole.Passive && r.State == ReplicaState.Passive && r.Applier is { } a && a.Applied < target - 1)];
        }

        foreach (var replica in due)
        {
            await replica.Control.WaitAsync(ct);
            ReplicaApplier? applier;
            long from;
            try
            {
                IDomain? domain;
                lock (_lock)
                {
                    applier = replica.Applier;
                    if (applier is null || replica.Role != ReplicaRole.Passive || replica.State != ReplicaState.Passive)
                    {
                        continue;
                    }

                    replica.State = ReplicaState.Updating;
                    from = applier.Applied + 1;
                    replica.ProgressApplied = applier.Applied;
                    replica.ProgressTimestamp = Stopwatch.GetTimestamp();
                    applier.Limit = target;
                    domain = replica.Domain;
                }

                domain?.Resume();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
            {
                Suspect(replica, null, "activation", $"could not thaw it for its update: {e.Message}");
                continue;
            }
            finally
            {
                replica.Control.Release();
            }

            var started = Stopwatch.GetTimestamp();
            await ParkAsync(replica, applier, target, ct);
            _metrics.PassiveUpdate(target - from);
            GroupLog.PassiveUpdated(_logger, replica.Spec.Id, from, target - 1, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }

        return _log.Head;
    }

    /// <summary>
    /// Proactive recovery: the oldest passive replica is activated; once it votes, the oldest active domain is
    /// discarded and its slot starts again as a passive replica from the newest verified checkpoint (taken first,
    /// when checkpoints are configured).
    /// </summary>
    private async Task RejuvenateAsync(CancellationToken ct)
    {
        Replica? passive;
        Replica? active;
        lock (_lock)
        {
            var calm = _activation is null
                && _replicas.Count(r => r.Role == ReplicaRole.Active && r.State == ReplicaState.Up) == _voter.Quorum
                && _replicas.Count(r => r.Role == ReplicaRole.Passive && r.State == ReplicaState.Passive) == _replicas.Length - _voter.Quorum;
            passive = calm ? _replicas.Where(r => r.Role == ReplicaRole.Passive).MinBy(r => r.StartedTimestamp) : null;
            active = calm ? _replicas.Where(r => r.Role == ReplicaRole.Active).MinBy(r => r.StartedTimestamp) : null;
            if (passive is null || active is null)
            {
                return;
            }

            _rejuvenating = true;
        }

        try
        {
            if (_options.Checkpoint is not null)
            {
                await CheckpointNowAsync(_options.StartupTimeout);
            }

            var activeGeneration = active.Generation;
            await WakeAsync(passive);
            var waited = Stopwatch.StartNew();
            while (passive.State != ReplicaState.Up)
            {
                if (waited.Elapsed > _options.StartupTimeout || passive.Role != ReplicaRole.Active || passive.State is ReplicaState.Suspected or ReplicaState.Down)
                {
                    _events.Record("+rejuvenation-failed", passive.Spec.Id, $"it did not vote within {_options.StartupTimeout.TotalSeconds:0}s after activation; {active.Spec.Id} stays");
                    return;
                }

                await Task.Delay(5, ct);
            }

            ReplicaApplier? applier;
            var outcomes = new List<VoteOutcome>();
            List<(Replica, ReplicaApplier?, string)>? mismatches;
            lock (_lock)
            {
                applier = active.Applier;
                if (active.State != ReplicaState.Up || active.Generation != activeGeneration)
                {
                    return;
                }

                active.State = ReplicaState.Suspected;
                _voter.RemoveVoter(active.Index, outcomes);
                mismatches = CollectMismatches(outcomes, null);
                active.Broken.TrySetResult("rejuvenation");
                _rejuvenations++;
            }

            _metrics.Rejuvenation();
            var from = NewestCheckpoint is { } c ? $"from checkpoint #{c.Sequence}" : "from the log";
            _events.Record("+rejuvenation", active.Spec.Id, $"{passive.Spec.Id} (passive) now votes; {active.Spec.Id}.g{activeGeneration} is discarded and starts again as a passive replica {from}");
            Release(outcomes);
            SuspectAll(mismatches);
        }
        finally
        {
            lock (_lock)
            {
                _rejuvenating = false;
            }
        }
    }

    /// <summary>Fault drill "corrupt" on a frozen passive replica: thawed for the write and frozen again.</summary>
    private async Task<string> CorruptPassiveAsync(Replica replica, IDomain domain, int port, CancellationToken ct)
    {
        await replica.Control.WaitAsync(ct);
        try
        {
            domain.Resume();
            string detail;
            try
            {
                detail = await _protocol.CorruptAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
            }
            finally
            {
                // Holding Control, nothing else thaws or freezes it; an update that ran meanwhile keeps it thawed.
                bool atRest;
                lock (_lock)
                {
                    atRest = replica.State == ReplicaState.Passive;
                }

                if (atRest)
                {
                    domain.Pause();
                }
            }

            Injected(replica.Spec.Id, FaultKind.Corrupt, detail + " (passive: thawed for the write, frozen again)");
            return detail;
        }
        finally
        {
            replica.Control.Release();
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
