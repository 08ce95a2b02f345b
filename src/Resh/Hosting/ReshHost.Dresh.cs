using Microsoft.Extensions.Logging;
using Resh.Modes;
using Resh.Ordering;

namespace Resh.Hosting;

/// <summary>D-RESH: the etcd sequencer of this gateway, its membership in the cluster, and its status.</summary>
public sealed partial class ReshHost
{
    private string? _restoredCursor;

    /// <summary>Starts the etcd sequencer (after the restored checkpoint, if any) and waits until it has appended the log so far.</summary>
    private async Task<EtcdSequencer> StartEtcdAsync(EtcdOrderingOptions etcd, CancellationToken cancellationToken)
    {
        var cursor = _restoredCursor is null ? null : EtcdCursor.Parse(_restoredCursor);
        var sequencer = new EtcdSequencer(Log, etcd, _loggerFactory.CreateLogger("Resh.Etcd"), cursor);
        sequencer.MemberLeft += OnMemberLeft;
        try
        {
            await sequencer.StartAsync(cancellationToken);
        }
        catch
        {
            await sequencer.DisposeAsync();
            throw;
        }

        if (cursor is not null)
        {
            HostLog.EtcdResumed(_logger, Log.First - 1, cursor.Revision);
        }

        // A gateway that can no longer follow the log (etcd compacted what it needs) stops rather than diverge.
        _ = sequencer.Failed.ContinueWith(
            t =>
            {
                Events.Record("+etcd-compacted", null, t.Exception?.InnerException?.Message ?? "etcd compacted the log");
                RequestShutdown();
            },
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
        return sequencer;
    }

    /// <summary>Joins the cluster once this gateway serves, advertising its service and admin addresses in its member key.</summary>
    private async Task JoinClusterAsync(EtcdSequencer sequencer, CancellationToken cancellationToken)
    {
        await sequencer.JoinAsync(_gateway?.EndPoint.ToString(), AdminEndPoint?.ToString(), cancellationToken);
        Events.Record("+member-joined", null, $"run {sequencer.CurrentRun} of cluster {_options.Ordering!.Cluster}");
    }

    /// <summary>A gateway run left: its open sessions are closed in the log; this gateway's own clients of it are dropped.</summary>
    private void OnMemberLeft(EtcdPeer peer, IReadOnlyList<long> sessions)
    {
        Events.Record("+member-left", null, $"member {peer.Member} (run {peer.Run}{(peer.Self ? ", this gateway" : "")}): its lease ended; {sessions.Count} open sessions closed in the log");
        if (peer.Self && sessions.Count > 0)
        {
            _gateway?.CloseSessions(sessions, "this gateway's etcd lease expired and the cluster closed the session; reconnect");
        }
    }

    private EtcdStatus? EtcdStatus() => _sequencer is EtcdSequencer etcd
        ? new EtcdStatus(etcd.Endpoint.ToString(), _options.Ordering!.Cluster, _options.Ordering.Member, etcd.AppliedRevision, etcd.BatchStats.Batches, etcd.BatchStats.Largest)
        {
            Run = etcd.CurrentRun,
            LeasesLost = etcd.RunsLost,
            Peers = etcd.Peers,
        }
        : null;
}
