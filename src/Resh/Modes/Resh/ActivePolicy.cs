using Resh.Voting;

namespace Resh.Modes;

/// <summary>
/// Every replica is active and votes: mode resh (2f+1 replicas, f+1 equal replies decide), D-RESH (the same on every
/// host of one etcd-ordered log) and the Remus primary (one replica, its reply decides; output commit waits for the
/// backup). A silent or outvoted replica is suspected and rebuilt by the core; nothing is woken.
/// </summary>
public sealed class ActivePolicy : IGroupPolicy
{
    public bool Serving => true;

    public bool WatchesSplits => false;

    public (long Activations, long Rejuvenations) Counters => (0, 0);

    public void Attach(IGroupControl control)
    {
    }

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => ReplicaRole.Active;

    public bool SkipsSettledReads(ReplicaRole role, bool first) => false;

    public long UpdateTarget(GroupView view) => view.SettledBelowHead;

    public bool CanWake(GroupView view) => false;

    public void OnSplit(long sequence)
    {
    }

    public void OnSilent(long sequence, IReadOnlyList<int> silent, string reason)
    {
    }

    public void OnSuspected()
    {
    }

    public void OnReleased(VoteOutcome outcome)
    {
    }

    public Task RunAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
