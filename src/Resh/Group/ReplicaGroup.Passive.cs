using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Diagnostics;
using Resh.Domains;
using Resh.Ordering;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>
/// Passive replicas and the control surface of the mode's policy (<see cref="IGroupControl"/>). A passive replica is
/// frozen and fed the log in updates (thawed, applied up to a target, frozen again); waking makes it active (it replays
/// to the head and votes from the first undecided entry); demoting parks an active one; retiring discards one that
/// votes. Which replica, when and why is the policy's decision; how, under the group's lock, is here.
/// </summary>
public sealed partial class ReplicaGroup : IGroupControl
{
    private readonly IGroupPolicy _policy;
    private Task _policyLoop = Task.CompletedTask;

    /// <summary>False while the group stands by (mode remus, the backup, before its takeover).</summary>
    public bool Standby => !_policy.Serving;

    GroupOptions IGroupControl.Options => _options;

    ReshMetrics IGroupControl.Metrics => _metrics;

    EventJournal IGroupControl.Events => _events;

    ILogger IGroupControl.Logger => _logger;

    TimeProvider IGroupControl.Clock => _clock;

    bool IGroupControl.Stopping => _stopping.IsCancellationRequested;

    GroupView IGroupControl.View()
    {
        lock (_lock)
        {
            return ViewUnderLock();
        }
    }

    /// <summary>The view of the group. Call under the lock.</summary>
    private GroupView ViewUnderLock() => new(
        [.. _replicas.Select(r => new ReplicaView(r.Index, r.Spec.Id, r.Role, r.State, r.Generation, r.Applier?.Applied ?? -1, _voter.IsVoter(r.Index), r.StartedTimestamp, r.ActivatedTimestamp))],
        _voter.Quorum,
        _voter.VoterCount,
        _log.First,
        _log.Head,
        _log.Count,
        _voter.SettledBelow(_log.Head));

    bool IGroupControl.IsSettled(long sequence)
    {
        lock (_lock)
        {
            return sequence < _log.First || _voter.Decisions.KindOf(sequence) != Decision.Pending;
        }
    }

    void IGroupControl.Suspect(int replica, int generation, string kind, string reason)
    {
        var r = _replicas[replica];
        ReplicaApplier? applier;
        lock (_lock)
        {
            if (r.Generation != generation)
            {
                return;
            }

            applier = r.Applier;
        }

        if (applier is not null)
        {
            Suspect(r, applier, kind, reason);
        }
    }

    void IGroupControl.CheckNow() => Check();

    Task IGroupControl.WakeAsync(int replica) => WakeAsync(_replicas[replica]);

    /// <summary>Turns a passive replica active: thawed, no limit, replaying to the head; it votes once it reaches an undecided entry.</summary>
    private async Task WakeAsync(Replica replica)
    {
        if (!await TakeControlAsync(replica, _stopping.Token))
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
                replica.ActivatedTimestamp = _clock.GetTimestamp();
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

    /// <summary>Takes an active replica out of voting and parks it as a passive replica once it answered what it was sent.</summary>
    async Task IGroupControl.DemoteAsync(int index)
    {
        var replica = _replicas[index];
        if (!await TakeControlAsync(replica, _stopping.Token))
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
                if (applier is null || replica.Role != ReplicaRole.Active || replica.State != ReplicaState.Up || up <= _voter.Quorum || !_policy.MayDemote)
                {
                    return;
                }

                _voter.RemoveVoter(replica.Index, outcomes);
                mismatches = CollectMismatches(outcomes, null);
                replica.Role = ReplicaRole.Passive;
                replica.State = ReplicaState.Updating;
                applier.SkipSettledReads = true;
                replica.ProgressApplied = applier.Applied;
                replica.ProgressTimestamp = _clock.GetTimestamp();
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
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            return;
        }

        if (!await TakeControlAsync(replica, ct))
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

    /// <summary>Takes the replica's freeze-and-thaw control; false when the group stops meanwhile.</summary>
    private static async Task<bool> TakeControlAsync(Replica replica, CancellationToken ct)
    {
        try
        {
            await replica.Control.WaitAsync(ct);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    async Task IGroupControl.ProbeDigestAsync(string digest, CancellationToken ct)
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
            return;
        }

        var waited = Stopwatch.StartNew();
        while (_voter.Decisions.KindOf(probe.Sequence) == Decision.Pending && waited.Elapsed < 2 * _options.ReplyTimeout)
        {
            await Task.Delay(2, ct);
        }
    }

    /// <summary>
    /// Every passive replica at rest behind <paramref name="target"/> is thawed, brought up to there and frozen again: by
    /// replay, or given the state up to a read appended now and then replaying what follows it (<see cref="ReadStateAsync"/>).
    /// </summary>
    async Task IGroupControl.UpdatePassivesAsync(long target, PassiveUpdateMethod method, CancellationToken ct)
    {
        List<Replica> due;
        lock (_lock)
        {
            due = [.. _replicas.Where(r => r.Role == ReplicaRole.Passive && r.State == ReplicaState.Passive && r.Applier is { } a && a.Applied < target - 1)];
        }

        if (due.Count == 0)
        {
            return;
        }

        var state = await ReadStateAsync(due.Min(r => r.Applier?.Applied ?? long.MaxValue) + 1, method, ct);
        foreach (var replica in due)
        {
            if (!await TakeControlAsync(replica, ct))
            {
                return;
            }

            ReplicaApplier? applier;
            long from;
            var limit = state is null ? target : Math.Max(target, state.Sequence + 1);
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
                    replica.ProgressTimestamp = _clock.GetTimestamp();
                    if (state is null)
                    {
                        applier.Limit = limit;
                    }

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
            if (state is not null)
            {
                try
                {
                    await WriteStateAsync(replica, applier, state, ct);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or System.Net.Sockets.SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    Suspect(replica, applier, "update", $"its state transfer failed: {e.Message}");
                    continue;
                }

                lock (_lock)
                {
                    replica.ProgressTimestamp = _clock.GetTimestamp();
                    applier.Limit = limit;
                }
            }

            await ParkAsync(replica, applier, limit, ct);
            var elapsed = Stopwatch.GetElapsedTime(started);
            MeasureUpdate(state, limit - from, elapsed);
            if (state is not null)
            {
                Interlocked.Increment(ref _stateUpdates);
            }

            _metrics.PassiveUpdate(state is null ? "replay" : "state", limit - from, state?.Keys ?? 0);
            GroupLog.PassiveUpdated(_logger, replica.Spec.Id, state is null ? "replay" : $"state ({state.Keys} keys at #{state.Sequence}) and replay", from, limit - 1, elapsed.TotalMilliseconds);
        }
    }

    /// <summary>Discards an active replica that votes (proactive recovery): out of voting, its domain rebuilt by its supervisor.</summary>
    bool IGroupControl.Retire(int index, int generation)
    {
        var replica = _replicas[index];
        var outcomes = new List<VoteOutcome>();
        List<(Replica, ReplicaApplier?, string)>? mismatches;
        lock (_lock)
        {
            if (replica.State != ReplicaState.Up || replica.Generation != generation)
            {
                return false;
            }

            replica.State = ReplicaState.Suspected;
            _voter.RemoveVoter(replica.Index, outcomes);
            mismatches = CollectMismatches(outcomes, null);
            replica.Broken.TrySetResult("rejuvenation");
        }

        Release(outcomes);
        SuspectAll(mismatches);
        return true;
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
}
