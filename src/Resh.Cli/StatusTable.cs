using System.Globalization;
using System.Text;
using Resh.Admin;

namespace Resh.Cli;

/// <summary>Renders /status as a plain text table.</summary>
public static class StatusTable
{
    public static string Render(ReshStatus status)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"mode {status.Mode}  f={status.Faults}  head #{status.Head}  decided #{status.Decided}  voting {status.Voting}  {(status.Ready ? "ready" : "NOT READY")}\n");
        if (status.Mode == "spare")
        {
            sb.Append(CultureInfo.InvariantCulture, $"activations {status.Activations}  rejuvenations {status.Rejuvenations}\n");
        }

        if (status.Checkpoint is { } checkpoint)
        {
            sb.Append(CultureInfo.InvariantCulture, $"checkpoint #{checkpoint.Sequence} {checkpoint.SnapshotId} at {checkpoint.Time:u}  log held from #{status.LogFirst}\n");
        }

        if (status.Remus is { } remus)
        {
            sb.Append(CultureInfo.InvariantCulture, $"remus {remus.Role}  term {remus.Term}  {(remus.Role == "backup" ? $"primary {remus.Primary ?? "-"}" : $"backup {remus.Backup ?? "-"}")}  epoch {remus.Epoch} (acked {remus.AckedEpoch}, #{remus.AckedCount})  held replies {remus.HeldReplies}{(remus.Protected ? "" : "  UNPROTECTED")}{(remus.Fenced ? "  FENCED" : "")}\n");
        }

        if (status.Etcd is { } etcd)
        {
            sb.Append(CultureInfo.InvariantCulture, $"etcd {etcd.Endpoint}  cluster {etcd.Cluster}  member {etcd.Member}  run {etcd.Run ?? "(joining)"}  revision {etcd.AppliedRevision}  batches {etcd.Batches} (largest {etcd.LargestBatch})  leases lost {etcd.LeasesLost}\n");
            sb.Append(CultureInfo.InvariantCulture, $"etcd log {(etcd.TrimmedRevision > 0 ? $"trimmed to revision {etcd.TrimmedRevision} ({etcd.TrimmedBatches} batches deleted)" : "not trimmed by this host")}\n");
            foreach (var peer in etcd.Peers)
            {
                sb.Append(CultureInfo.InvariantCulture, $"  peer member {peer.Member}  run {peer.Run}  lease ttl {(peer.TtlSeconds >= 0 ? $"{peer.TtlSeconds}s" : "-")}  service {peer.Service ?? "-"}{(peer.Self ? "  (this host)" : "")}\n");
            }
        }

        string[] header = ["replica", "role", "state", "pid", "port", "applied", "mismatches", "recoveries", "gen", "replayed", "cpu s", "last suspicion"];
        var rows = new List<string[]> { header };
        foreach (var r in status.Replicas)
        {
            rows.Add([
                r.Id, r.Role, r.State, r.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-", r.Port.ToString(CultureInfo.InvariantCulture),
                r.Applied.ToString(CultureInfo.InvariantCulture), r.Mismatches.ToString(CultureInfo.InvariantCulture),
                r.Recoveries.ToString(CultureInfo.InvariantCulture), r.Generation.ToString(CultureInfo.InvariantCulture),
                r.LastReplay?.ToString(CultureInfo.InvariantCulture) ?? "-", r.CpuSeconds.ToString("0.00", CultureInfo.InvariantCulture), r.LastSuspicion ?? "",
            ]);
        }

        var widths = Enumerable.Range(0, header.Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            sb.Append(string.Join("  ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }

        return sb.ToString();
    }
}
