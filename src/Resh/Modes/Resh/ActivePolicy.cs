using Resh.Group;

namespace Resh.Modes;

/// <summary>
/// Mode resh: 2f+1 replicas, every one active and voting, f+1 equal replies decide; D-RESH runs the same on every host
/// of one etcd-ordered log. A silent or outvoted replica is suspected and rebuilt by the core; nothing is woken.
/// Everything else is the defaults of <see cref="IGroupPolicy"/>.
/// </summary>
public sealed class ActivePolicy : IGroupPolicy
{
    public string Name => "resh";

    public void Attach(IGroupControl control)
    {
    }

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => ReplicaRole.Active;

    public long UpdateTarget(GroupView view) => view.SettledBelowHead;
}
