using System.Diagnostics;
using Resh.Group;

namespace Resh.Remus;

/// <summary>
/// Mode remus, the backup: its one replica is passive (frozen, fed what the backup holds every apply interval) until
/// the takeover, when it is woken, applies everything, and votes alone (<see cref="PromoteAsync"/>). The primary runs
/// <see cref="PrimaryPolicy"/>.
/// </summary>
public sealed class StandbyPolicy(RemusOptions remus) : IGroupPolicy
{
    private IGroupControl _group = null!;
    private volatile bool _standby = true;

    public string Name => PrimaryPolicy.ModeName;

    public int ReplicasFor(int faults) => 1;

    public string? ReplicaCountProblem(int faults, int count) => PrimaryPolicy.OneReplicaProblem(count);

    public int VotingFaults(int faults) => 0;

    public bool Serving => !_standby;

    public void Attach(IGroupControl control) => _group = control;

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => _standby ? ReplicaRole.Passive : ReplicaRole.Active;

    /// <summary>Everything the backup holds: the primary acknowledged nothing it did not ship.</summary>
    public long UpdateTarget(GroupView view) => view.LogCount;

    /// <summary>Applies what the backup holds to its frozen replica every apply interval, until the takeover.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(remus.ApplyInterval, _group.Clock);
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
    }

    /// <summary>The takeover: the replica is thawed, applies everything the backup holds, and votes alone. Completes when it votes.</summary>
    public async Task PromoteAsync(CancellationToken cancellationToken)
    {
        _standby = false;
        var waited = Stopwatch.StartNew();
        var timeout = _group.Options.StartupTimeout;
        while (true)
        {
            await _group.WakeAsync(0);
            _group.CheckNow();
            var replica = _group.View().Replicas[0];
            if (replica.State == ReplicaState.Up)
            {
                return;
            }

            if (waited.Elapsed > timeout)
            {
                throw new TimeoutException($"the backup's replica did not catch up within {timeout.TotalSeconds:0}s after the takeover (state {replica.State.ToString().ToLowerInvariant()})");
            }

            await Task.Delay(2, cancellationToken);
        }
    }
}
