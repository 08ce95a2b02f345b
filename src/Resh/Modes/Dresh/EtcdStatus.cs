using Resh.Composition;

namespace Resh.Dresh;

/// <summary>
/// D-RESH as /status shows it: the etcd endpoint in use, the last revision applied, this gateway's batches, its
/// current run, how often its lease was lost, and the gateway runs of the cluster with their leases.
/// </summary>
public sealed record EtcdStatus(string Endpoint, string Cluster, int Member, long AppliedRevision, long Batches, long LargestBatch) : ModeStatus
{
    public string? Run { get; init; }

    public long LeasesLost { get; init; }

    public IReadOnlyList<EtcdPeer> Peers { get; init; } = [];

    /// <summary>The revision this gateway last trimmed and compacted etcd to (0: not yet, or ordering.trim is off).</summary>
    public long TrimmedRevision { get; init; }

    /// <summary>Batch keys this gateway deleted from etcd, covered by every live host's newest checkpoint.</summary>
    public long TrimmedBatches { get; init; }
}
