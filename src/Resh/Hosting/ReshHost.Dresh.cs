using Resh.Dresh;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Hosting;

/// <summary>D-RESH: the etcd sequencer of this gateway, its membership in the cluster, and its status.</summary>
public sealed partial class ReshHost
{
    private string? _restoredCursor;
    private CheckpointPeerServer? _peerServer;

    /// <summary>
    /// D-RESH start: the log after the restored checkpoint comes from etcd. When etcd compacted that history, the
    /// newest checkpoint of a peer (one newer than the compaction) is fetched into this host's store and
    /// restored instead. Returns the checkpoint the replicas start from.
    /// </summary>
    private async Task<(EtcdSequencer Sequencer, VerifiedCheckpoint? Restored)> StartOrderingAsync(EtcdOrderingOptions etcd, VerifiedCheckpoint? restored, CancellationToken cancellationToken)
    {
        try
        {
            return (await StartEtcdAsync(etcd, cancellationToken), restored);
        }
        catch (EtcdCompactedException compacted)
        {
            var fetched = await FetchPeerCheckpointAsync(etcd, compacted, cancellationToken);
            return (await StartEtcdAsync(etcd, cancellationToken), fetched);
        }
    }

    private async Task<VerifiedCheckpoint> FetchPeerCheckpointAsync(EtcdOrderingOptions etcd, EtcdCompactedException compacted, CancellationToken cancellationToken)
    {
        if (_store is null)
        {
            throw new InvalidOperationException($"{compacted.Message}; this host has no checkpoint: section, so it cannot take a peer's checkpoint. Add one (the same as the peers')");
        }

        IReadOnlyList<MemberInfo> members;
        await using (var lister = new EtcdSequencer(new OrderedLog(), etcd, _loggerFactory.CreateLogger("Resh.Etcd")))
        {
            members = await lister.ListMembersAsync(cancellationToken);
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(10) };
        var tried = new List<string>();
        foreach (var peer in members.Where(m => m.Member != etcd.Member && m.Checkpoints is not null))
        {
            var dir = Path.Combine(_options.Group.StateDirectory, "peer-checkpoint");
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            try
            {
                var labels = await CheckpointPeerServer.FetchAsync(http, new Uri(peer.Checkpoints!), EtcdCursor.Label, _options.AdminToken, dir, cancellationToken);
                if (!labels.TryGetValue(EtcdCursor.Label, out var cursorText) || EtcdCursor.Parse(cursorText).Revision < compacted.Compacted
                    || !labels.TryGetValue(ReplicaGroup.SequenceLabel, out var seqText) || !long.TryParse(seqText, System.Globalization.CultureInfo.InvariantCulture, out var seq))
                {
                    tried.Add($"member {peer.Member}: its newest checkpoint is older than the compaction too");
                    continue;
                }

                var info = await _store.SnapshotAsync(dir, labels, cancellationToken);
                var restored = new VerifiedCheckpoint(seq, info.Id, info.Time) { Labels = labels };
                _restoredCursor = cursorText;
                Log.StartAt(seq + 1);
                HostLog.PeerCheckpoint(_logger, peer.Member, peer.Checkpoints!, seq, info.Id);
                Events.Record("+peer-checkpoint", null, $"etcd compacted the log up to revision {compacted.Compacted}; took checkpoint #{seq} of member {peer.Member} ({peer.Checkpoints}) as {info.Id}");
                return restored;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or InvalidDataException or TaskCanceledException)
            {
                tried.Add($"member {peer.Member} ({peer.Checkpoints}): {e.Message}");
            }
            finally
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        }

        throw new InvalidOperationException($"{compacted.Message}; no peer could give a newer checkpoint ({(tried.Count == 0 ? "no member advertises ordering.peer-listen" : string.Join("; ", tried))})");
    }

    /// <summary>Serves this host's checkpoints to its peers, when ordering.peer-listen is set.</summary>
    private async Task<string?> StartPeerServerAsync(EtcdOrderingOptions etcd, CancellationToken cancellationToken)
    {
        if (etcd.PeerListen is not { } listen || _store is null)
        {
            return null;
        }

        _peerServer = new CheckpointPeerServer(listen, _options.AdminToken, _store, _options.Group.StateDirectory, _loggerFactory);
        await _peerServer.StartAsync(cancellationToken);
        return _peerServer.Url;
    }

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
        var checkpoints = await StartPeerServerAsync(_options.Ordering!, cancellationToken);
        await sequencer.JoinAsync(_gateway?.EndPoint.ToString(), AdminEndPoint?.ToString(), checkpoints, cancellationToken);
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
            TrimmedRevision = etcd.TrimStats.Revision,
            TrimmedBatches = etcd.TrimStats.Batches,
        }
        : null;
}
