using System.Diagnostics;
using Resh.Group;
using Resh.Voting;

namespace Resh.Remus;

/// <summary>
/// A group that stands by for another gateway: every replica is passive (frozen, fed what this gateway holds every
/// apply interval) until the takeover, when all are woken, apply everything and serve as the <paramref name="serving"/>
/// policy says (<see cref="PromoteAsync"/>). The Remus backup stands by for its primary with <see cref="PrimaryPolicy"/>
/// (one replica); a migration target stands by for the gateway it takes the service from with that mode's policy.
/// </summary>
/// <param name="serving">The mode the group serves in after the takeover (its replica count and quorum hold from the start).</param>
/// <param name="applyInterval">How often what arrived is applied to the frozen replicas.</param>
public sealed class StandbyPolicy(IGroupPolicy serving, TimeSpan applyInterval) : IGroupPolicy
{
    private IGroupControl _group = null!;
    private volatile bool _standby = true;

    /// <summary>The Remus backup: one replica, serving as the primary after the takeover.</summary>
    public StandbyPolicy(RemusOptions remus)
        : this(new PrimaryPolicy(), (remus ?? throw new ArgumentNullException(nameof(remus))).ApplyInterval)
    {
    }

    public string Name => serving.Name;

    public int ReplicasFor(int faults) => serving.ReplicasFor(faults);

    public string? ReplicaCountProblem(int faults, int count) => serving.ReplicaCountProblem(faults, count);

    public int VotingFaults(int faults) => serving.VotingFaults(faults);

    public bool Serving => !_standby;

    public void Attach(IGroupControl control)
    {
        _group = control;
        serving.Attach(control);
    }

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => _standby ? ReplicaRole.Passive : serving.RoleOfNewGeneration(view, replica, first);

    public bool SkipsSettledReads(ReplicaRole role, bool first) => !_standby && serving.SkipsSettledReads(role, first);

    /// <summary>Standing by: everything this gateway holds (the other one acknowledged nothing it did not ship).</summary>
    public long UpdateTarget(GroupView view) => _standby ? view.LogCount : serving.UpdateTarget(view);

    public bool CanWake(GroupView view) => !_standby && serving.CanWake(view);

    public bool MayDemote => !_standby && serving.MayDemote;

    public bool WatchesSplits => serving.WatchesSplits;

    public void OnSplit(long sequence)
    {
        if (!_standby)
        {
            serving.OnSplit(sequence);
        }
    }

    public void OnSilent(long sequence, IReadOnlyList<int> silent, string reason)
    {
        if (!_standby)
        {
            serving.OnSilent(sequence, silent, reason);
        }
    }

    public void OnSuspected()
    {
        if (!_standby)
        {
            serving.OnSuspected();
        }
    }

    public void OnReleased(VoteOutcome outcome) => serving.OnReleased(outcome);

    public (long Activations, long Rejuvenations) Counters => serving.Counters;

    /// <summary>Applies what this gateway holds to its frozen replicas every apply interval, until the takeover.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(applyInterval, _group.Clock);
        try
        {
            while (_standby && await timer.WaitForNextTickAsync(cancellationToken))
            {
                await _group.UpdatePassivesAsync(UpdateTarget(_group.View()), PassiveUpdateMethod.Replay, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        if (!cancellationToken.IsCancellationRequested)
        {
            await serving.RunAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Ends the standby at once: from here on what is appended is served in the serving mode (no passive update takes it).
    /// Called before clients are let in when the replicas are woken beside them (<see cref="PromoteAsync"/> calls it too).
    /// </summary>
    public void EndStandby() => _standby = false;

    /// <summary>
    /// The takeover: every replica is thawed and applies everything this gateway holds; completes when enough vote to
    /// decide (all of them, or at least a quorum once the others are being rebuilt).
    /// </summary>
    public async Task PromoteAsync(CancellationToken cancellationToken)
    {
        EndStandby();
        var waited = Stopwatch.StartNew();
        var timeout = _group.Options.StartupTimeout;
        while (true)
        {
            var view = _group.View();
            foreach (var replica in view.Replicas.Where(r => r.Role == ReplicaRole.Passive && r.State is ReplicaState.Passive))
            {
                await _group.WakeAsync(replica.Index);
            }

            _group.CheckNow();
            view = _group.View();
            var up = view.Replicas.Count(r => r.State == ReplicaState.Up);
            if (up == view.Replicas.Count || (up >= view.Quorum && !view.Replicas.Any(r => r.State is ReplicaState.Passive or ReplicaState.Updating)))
            {
                return;
            }

            if (waited.Elapsed > timeout)
            {
                throw new TimeoutException($"the replicas did not catch up within {timeout.TotalSeconds:0}s after the takeover ({string.Join(", ", view.Replicas.Select(r => $"{r.Id} {r.State.ToString().ToLowerInvariant()}"))})");
            }

            await Task.Delay(2, cancellationToken);
        }
    }
}
