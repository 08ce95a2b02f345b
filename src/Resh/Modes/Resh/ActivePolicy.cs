namespace Resh.Modes;

/// <summary>
/// Every replica is active and votes: mode resh (2f+1 replicas, f+1 equal replies decide), D-RESH (the same on every
/// host of one etcd-ordered log) and the Remus primary (one replica, its reply decides; output commit waits for the
/// backup). A silent or outvoted replica is suspected and rebuilt by the core; nothing is woken. Everything else is
/// the defaults of <see cref="IGroupPolicy"/>.
/// </summary>
public sealed class ActivePolicy : IGroupPolicy
{
    public void Attach(IGroupControl control)
    {
    }

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => ReplicaRole.Active;

    public long UpdateTarget(GroupView view) => view.SettledBelowHead;
}
