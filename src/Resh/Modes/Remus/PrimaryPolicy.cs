using Resh.Group;

namespace Resh.Remus;

/// <summary>
/// Mode remus, the primary: one replica, active, its reply decides alone (no vote); output commit holds each reply
/// until the backup acknowledged its request. A replica that does not answer within reply-timeout is suspected and
/// rebuilt like any other (the core's silence rule judges a sole voter too).
/// </summary>
public sealed class PrimaryPolicy : IGroupPolicy
{
    internal const string ModeName = "remus";

    public string Name => ModeName;

    public int ReplicasFor(int faults) => 1;

    public string? ReplicaCountProblem(int faults, int count) => OneReplicaProblem(count);

    internal static string? OneReplicaProblem(int count) => count == 1 ? null
        : $"replicas: mode remus runs exactly one replica here (the backup runs the same command); got {count}";

    /// <summary>One replica, no vote: its own reply decides.</summary>
    public int VotingFaults(int faults) => 0;

    public void Attach(IGroupControl control)
    {
    }

    public ReplicaRole RoleOfNewGeneration(GroupView view, int replica, bool first) => ReplicaRole.Active;

    public long UpdateTarget(GroupView view) => view.SettledBelowHead;
}
