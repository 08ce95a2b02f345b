using Resh.Ordering;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>The monitor: silent, lagging and stalled replicas (see <see cref="SilenceRule"/>), and recovering ones that caught up.</summary>
public sealed partial class ReplicaGroup
{
    private long _lastCheck;

    private async Task MonitorAsync(CancellationToken ct)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.ReplyTimeout.TotalMilliseconds / 5, 10, 250));
        using var timer = new PeriodicTimer(period, _clock);
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

        // A check that comes late (the gateway itself stalled: a pause of the process, starved threads) judges
        // nobody: replies may be waiting unread in the sockets. The next, on time, does.
        var previous = Interlocked.Exchange(ref _lastCheck, _clock.GetTimestamp());
        var late = previous != 0 && _clock.GetElapsedTime(previous) > _options.ReplyTimeout / 2;
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
                    r.ProgressTimestamp = _clock.GetTimestamp();
                    continue;
                }

                var now = _clock.GetTimestamp();
                if (applied != r.ProgressApplied)
                {
                    (r.ProgressApplied, r.ProgressTimestamp) = (applied, now);
                }

                // A replica of the first generation still applying the history the group started with (the log restored
                // from disk after a restart) is replaying too: the three replay it at once, and on two cores one of them
                // may trail the others by more than max-lag without being at fault. Judged by progress until it is past
                // that history, by lag after.
                var replaying = r.State is ReplicaState.Recovering or ReplicaState.Updating
                    || (r.Generation == 1 && applied < Volatile.Read(ref _startHead));
                var next = applied + 1;
                if (!replaying && next >= count)
                {
                    continue;
                }

                // Replaying entries decided long ago is judged by progress, not by their decision times. And nothing is
                // owed from before the replica started: a restarted gateway appends its log from disk at once, while a
                // replica restoring a large checkpoint starts seconds later (1 GiB: 8-12 s here).
                var entry = replaying ? null : _log[next];
                var owed = new OwedReply(
                    replaying,
                    r.ProgressTimestamp,
                    entry is not null && _voter.Decisions.KindOf(next) != Decision.Pending,
                    entry is null ? 0 : Math.Max(_voter.Decisions.TimeOf(next), r.StartedTimestamp),
                    entry is null ? 0 : Math.Max(entry.AppendedTimestamp, r.StartedTimestamp),
                    !replaying && _voter.HasReplies(next),
                    entry?.Kind == LogEventKind.Checkpoint || applier.AtCheckpointBarrier,
                    _voter.VoterCount == 1 && _voter.IsVoter(r.Index));
                var timeoutTicks = (long)(_options.ReplyTimeout.TotalSeconds * _clock.TimestampFrequency);
                var timeout = _options.ReplyTimeout.TotalSeconds;
                var verdict = late ? SilenceVerdict.None : SilenceRule.Judge(owed, now, timeoutTicks, !replaying && (canWake ??= _policy.CanWake(ViewUnderLock())));
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

                if (_voter.DecidedHead - applied > _options.MaxLag && !FlushExcusesLag(r, now))
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

    /// <summary>
    /// A replica whose background checkpoint flush runs (its fork writing the files beside it), or ended less than
    /// reply-timeout ago, may trail the replicas that rest: on a small host the fork's copy-on-write and the child's
    /// compression take its CPU. It is still judged by its replies' timeouts, not by max-lag; rebuilding a large replica
    /// for a checkpoint's cost would cost far more than the checkpoint.
    /// </summary>
    private bool FlushExcusesLag(Replica r, long now) =>
        Volatile.Read(ref r.Flushing) > 0
        || (Volatile.Read(ref r.FlushEnded) is var ended && ended != 0 && now - ended < (long)(_options.ReplyTimeout.TotalSeconds * _clock.TimestampFrequency));

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
            var milliseconds = _clock.GetElapsedTime(r.ReplayTimestamp).TotalMilliseconds;
            GroupLog.ReplicaWokenVotes(_logger, r.Spec.Id, entries, r.ReplayFrom, applied, milliseconds);
            _events.Record("+replica-active", r.Spec.Id, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"woken, replayed {entries} entries (#{r.ReplayFrom}..#{applied}) in {milliseconds:0.#} ms, and votes"));
            return;
        }

        r.Recoveries++;
        r.LastReplay = Math.Max(0, applied - r.ReplayFrom + 1);
        var seconds = _clock.GetElapsedTime(r.ReplayTimestamp).TotalSeconds;
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
        ReplicaSuspected?.Invoke(new ReplicaSuspicion(replica.Spec.Id, kind, reason));
    }

    /// <summary>
    /// A replica was suspected (it is being rebuilt); raised outside the group's lock, on the thread that suspected it.
    /// For what the host around the group does about it (mode remus: hand the service to the backup instead).
    /// </summary>
    public event Action<ReplicaSuspicion>? ReplicaSuspected;
}

/// <summary>A suspicion: the replica, its kind (exit, connection, mismatch, timeout, lag, start) and why.</summary>
public sealed record ReplicaSuspicion(string Replica, string Kind, string Reason);
