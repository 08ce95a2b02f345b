using Resh.Composition;
using Resh.Dresh;
using Resh.Group;
using Resh.Remus;

namespace Resh.Admin;

/// <summary>What /status shows: the group, and beside it what the configured mode adds (the Remus link, the etcd ordering).</summary>
public sealed record ReshStatus : GroupStatus
{
    public ReshStatus(GroupStatus group)
        : base(group)
    {
    }

    /// <summary>For reading /status back (the CLI).</summary>
    [System.Text.Json.Serialization.JsonConstructor]
    public ReshStatus(string mode, int faults, long head, long decided, int voting, bool ready, IReadOnlyList<ReplicaStatus> replicas)
        : base(mode, faults, head, decided, voting, ready, replicas)
    {
    }

    /// <summary>Mode remus: the link between primary and backup.</summary>
    public RemusStatus? Remus { get; init; }

    /// <summary>D-RESH: the etcd ordering.</summary>
    public EtcdStatus? Etcd { get; init; }

    /// <summary>`resh migrate`: the target and its pre-copy rounds.</summary>
    public Migration.MigrationStatus? Migration { get; init; }

    /// <summary>The status with what the mode shows beside the group, each mode's record under its own name.</summary>
    public ReshStatus With(ModeStatus? mode) => mode switch
    {
        RemusStatus remus => this with { Remus = remus },
        EtcdStatus etcd => this with { Etcd = etcd },
        Migration.MigrationStatus migration => this with { Migration = migration },
        null => this,
        _ => throw new ArgumentException($"/status has no place for {mode.GetType().Name}", nameof(mode)),
    };
}
