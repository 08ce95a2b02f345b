using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Composition;
using Resh.Group;
using Resh.Migration;
using Resh.Ordering;

namespace Resh.Dresh;

/// <summary>
/// D-RESH on this host: the log's order comes from etcd (after the restored checkpoint; when etcd compacted that
/// history, a peer's newer checkpoint is fetched first), checkpoints carry the etcd cursor, this gateway joins the
/// cluster once it serves (and serves its checkpoints to its peers), and /status shows the etcd ordering. A host leaves
/// its part to another member with `resh migrate --to SERVICE` (<see cref="MigrateAsync"/>).
/// </summary>
public sealed partial class DreshHosting(IModeHost host, EtcdOrderingOptions etcd) : IModeHosting, IMigration, IHandover
{
    private readonly ILogger _logger = host.LoggerFactory.CreateLogger("Resh.Etcd");
    private string? _restoredCursor;
    private CheckpointPeerServer? _peerServer;
    private PinnedTls? _peerTls;
    private EtcdSequencer? _sequencer;
    private volatile EtcdPeer? _migrateTo;
    private volatile bool _handOver;

    public string? CheckpointLabel => EtcdCursor.Label;

    public bool Fenced => false;

    public IPEndPoint? StandbyEndPoint => null;

    public Task<bool> StandByAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("D-RESH has no standby gateway (every host serves); resh backup needs mode: remus");

    public async Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken)
    {
        _restoredCursor = label;
        (var sequencer, restored) = await StartOrderingAsync(etcd, restored, cancellationToken);
        _sequencer = sequencer;
        return (sequencer, restored, sequencer.LastSessionId);
    }

    public void Attach(ReplicaGroup group) => group.AddCheckpointHooks(new EtcdCheckpointHooks(_sequencer!));

    public async Task ServingAsync(CancellationToken cancellationToken)
    {
        await JoinClusterAsync(_sequencer!, cancellationToken);
        if (etcd.Replaces is { } replaced)
        {
            _replacing = ReplaceAsync(_sequencer!, replaced, _replaceStop.Token);
        }
    }

    private Task _replacing = Task.CompletedTask;
    private readonly CancellationTokenSource _replaceStop = new();

    /// <summary>How long a host started with --replaces waits for the member it replaces to leave.</summary>
    private static readonly TimeSpan ReplaceTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// `resh run --replaces MEMBER`, once this host serves: asks that member (through etcd) to leave its part to this
    /// host, as `resh migrate --to` on its host would, and waits until its run left the cluster.
    /// </summary>
    private async Task ReplaceAsync(EtcdSequencer sequencer, int member, CancellationToken ct)
    {
        try
        {
            if (!sequencer.Peers.Any(p => p.Member == member && !p.Self))
            {
                ReplaceEnded(_logger, member, "it is not in the cluster; nothing to replace");
                host.Events.Record("+replace-failed", null, $"member {member} is not in the cluster; nothing to replace");
                return;
            }

            host.Events.Record("+replacing", null, $"asked member {member} to leave its part to this host");
            await sequencer.RequestLeaveAsync(member, ct);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (sequencer.Peers.Any(p => p.Member == member && !p.Self))
            {
                if (waited.Elapsed > ReplaceTimeout)
                {
                    ReplaceEnded(_logger, member, $"it did not leave within {ReplaceTimeout.TotalSeconds:0} s (see its log: it may have refused)");
                    host.Events.Record("+replace-failed", null, $"member {member} did not leave within {ReplaceTimeout.TotalSeconds:0} s");
                    await sequencer.WithdrawLeaveAsync(member, ct);
                    return;
                }

                await Task.Delay(100, ct);
            }

            await sequencer.WithdrawLeaveAsync(member, ct);
            ReplaceEnded(_logger, member, $"it left in {waited.Elapsed.TotalSeconds:0.0} s; this host serves its part");
            host.Events.Record("+replaced", null, $"member {member} left the cluster to this host");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or IOException or InvalidOperationException)
        {
            ReplaceEnded(_logger, member, $"etcd: {e.Message}");
            host.Events.Record("+replace-failed", null, $"member {member}: {e.Message}");
        }
    }

    /// <summary>Another member asked this one to leave to it (it was started with --replaces): leaves as `resh migrate --to` it would.</summary>
    private void OnLeaveRequested(string service)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                if (!IPEndPoint.TryParse(service, out var target))
                {
                    throw new InvalidOperationException($"the asking member gave no service address ('{service}')");
                }

                LeaveAsked(_logger, service);
                await MigrateAsync(target, CancellationToken.None);
            }
            catch (InvalidOperationException e)
            {
                LeaveRefused(_logger, service, e.Message);
                host.Events.Record("+leave-refused", null, $"asked to leave to {service}: {e.Message}");
            }
        });
    }

    public Task StoppingAsync()
    {
        if (_handOver && _migrateTo is { } to)
        {
            HandedOverTo = to.Service;
            host.Events.Record("+handed-over", null, $"this host left the cluster; member {to.Member} ({to.Service}) serves on, and this host's clients reconnect there");
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Why this host cannot leave its part to <paramref name="target"/> now, or null. The target must be another member
    /// that serves now: a member joins only once it has caught up with the shared log (from a peer's checkpoint when
    /// etcd compacted what it lacked), so a serving member already holds everything this host ordered.
    /// </summary>
    public string? MigrationProblem(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (_sequencer is not { } sequencer || sequencer.CurrentRun is null)
        {
            return "this gateway has not joined its cluster yet";
        }

        if (_migrateTo is { } running)
        {
            return $"this host is already leaving to member {running.Member} ({running.Service})";
        }

        var peers = sequencer.Peers;
        if (peers.FirstOrDefault(p => p.Service is { } service && IPEndPoint.TryParse(service, out var at) && at.Equals(target)) is not { } peer)
        {
            var serving = peers.Where(p => !p.Self && p.Service is not null).Select(p => $"member {p.Member} at {p.Service}").ToList();
            return $"no other member of cluster {etcd.Cluster} serves at {target}: start resh run on the new host first (same ordering.cluster, a member number of its own) and give its service address; serving now: {(serving.Count == 0 ? "none" : string.Join(", ", serving))}";
        }

        return peer.Self ? $"{target} is this host" : null;
    }

    /// <summary>
    /// D-RESH host migration: nothing needs copying (the target applies the same etcd-ordered log and already serves), so
    /// this host only leaves in order: it drains its clients (each gets its pending replies, then its connection closes
    /// and it reconnects to another host), stops, and its lease is revoked, which closes its sessions at one log position
    /// on every member.
    /// </summary>
    public Task<ModeStatus> MigrateAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        if (MigrationProblem(target) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        var peer = _sequencer!.Peers.First(p => p.Service is { } service && IPEndPoint.TryParse(service, out var at) && at.Equals(target));
        _migrateTo = peer;
        host.Events.Record("+migration-started", null, $"to member {peer.Member} ({peer.Service}): it serves the same log; this host drains its clients and leaves");
        if (host.RequestSwitchover() is { } refused)
        {
            _migrateTo = null;
            throw new InvalidOperationException($"the host could not start leaving: {refused}");
        }

        return Task.FromResult<ModeStatus>(new MigrationStatus(target.ToString(), "leaving", [], $"no pre-copy: member {peer.Member} serves the same etcd-ordered log", null, 0));
    }

    public string? HandoverProblem => _migrateTo is null
        ? "D-RESH has no backup to hand over to (every host serves): resh migrate --to SERVICE leaves this host's part to another member"
        : null;

    public void HandOverOnStop() => _handOver = true;

    public string? HandedOverTo { get; private set; }

    public async ValueTask DisposeAsync()
    {
        await _replaceStop.CancelAsync();
        await _replacing;
        if (_peerServer is not null)
        {
            await _peerServer.DisposeAsync();
        }

        _peerTls?.Dispose();
    }

    /// <summary>
    /// D-RESH start: the log after the restored checkpoint comes from etcd. When etcd compacted that history, the
    /// newest checkpoint of a peer (one newer than the compaction) is fetched into this host's store and
    /// restored instead. Returns the checkpoint the replicas start from.
    /// </summary>
    private async Task<(EtcdSequencer Sequencer, VerifiedCheckpoint? Restored)> StartOrderingAsync(EtcdOrderingOptions etcd, VerifiedCheckpoint? restored, CancellationToken cancellationToken)
    {
        // The hosts trim etcd behind their checkpoints while this one starts (it is not a member yet, so they do not wait
        // for it): a peer's checkpoint fetched a moment ago may already be older than the next compaction. Then a newer one
        // is fetched, a few times.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return (await StartEtcdAsync(etcd, cancellationToken), restored);
            }
            catch (EtcdCompactedException compacted) when (attempt <= PeerCheckpointAttempts)
            {
                restored = await FetchPeerCheckpointAsync(etcd, compacted, cancellationToken);
            }
        }
    }

    /// <summary>How many times a starting host fetches a newer peer checkpoint when etcd compacted past the one before.</summary>
    private const int PeerCheckpointAttempts = 5;

    private async Task<VerifiedCheckpoint> FetchPeerCheckpointAsync(EtcdOrderingOptions etcd, EtcdCompactedException compacted, CancellationToken cancellationToken)
    {
        if (host.Store is null)
        {
            throw new InvalidOperationException($"{compacted.Message}; this host has no checkpoint: section, so it cannot take a peer's checkpoint. Add one (the same as the peers')");
        }

        await using var lister = new EtcdSequencer(new OrderedLog(), etcd, _logger);
        var members = await lister.ListMembersAsync(cancellationToken);

        using var http = CheckpointPeerServer.CreateClient(PeerTls(etcd), TimeSpan.FromMinutes(10));
        var tried = new List<string>();
        foreach (var peer in members.Where(m => m.Member != etcd.Member && m.Checkpoints is not null))
        {
            var dir = Path.Combine(host.GroupOptions.StateDirectory, "peer-checkpoint");
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }

            try
            {
                var labels = await CheckpointPeerServer.FetchAsync(http, new Uri(peer.Checkpoints!), EtcdCursor.Label, host.AdminToken, dir, cancellationToken);
                if (!labels.TryGetValue(EtcdCursor.Label, out var cursorText) || EtcdCursor.Parse(cursorText).Revision < compacted.Compacted
                    || !labels.TryGetValue(ReplicaGroup.SequenceLabel, out var seqText) || !long.TryParse(seqText, System.Globalization.CultureInfo.InvariantCulture, out var seq))
                {
                    tried.Add($"member {peer.Member}: its newest checkpoint is older than the compaction too");
                    continue;
                }

                // Verified before use: its digest against the hosts' records at that position (and its files, when voted on files).
                var computed = host.GroupOptions.Checkpoint is { VotesOnFiles: true } options ? CheckpointFiles.Digest(options.Digest, dir, options.Files) : null;
                var recorded = await lister.CheckpointDigestsAsync(seq, cancellationToken);
                if (PeerCheckpointCheck.Problem(labels.GetValueOrDefault(ReplicaGroup.DigestLabel), computed, recorded, out var backers) is { } problem)
                {
                    tried.Add($"member {peer.Member}: checkpoint #{seq} refused: {problem}");
                    host.Events.Record("+peer-checkpoint-refused", null, $"member {peer.Member} ({peer.Checkpoints}), checkpoint #{seq}: {problem}");
                    continue;
                }

                var info = await host.Store.SnapshotAsync(dir, labels, cancellationToken);
                var restored = new VerifiedCheckpoint(seq, info.Id, info.Time) { Labels = labels };
                _restoredCursor = cursorText;
                host.Log.StartAt(seq + 1);
                PeerCheckpoint(_logger, peer.Member, peer.Checkpoints!, seq, info.Id);
                host.Events.Record("+peer-checkpoint", null, $"etcd compacted the log up to revision {compacted.Compacted}; took checkpoint #{seq} of member {peer.Member} ({peer.Checkpoints}) as {info.Id}; its digest is the one members {string.Join(", ", backers)} recorded{(computed is null ? "" : ", and its files digest alike")}");
                return restored;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or InvalidDataException or TaskCanceledException or Grpc.Core.RpcException)
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

    /// <summary>The certificate this host shares with its checkpoint peers (loaded once, for fetching and serving), or null.</summary>
    private PinnedTls? PeerTls(EtcdOrderingOptions etcd) =>
        _peerTls ??= PinnedTls.Load(etcd.PeerTlsCertificate, etcd.PeerTlsKey, "ordering.peer-tls-certificate/ordering.peer-tls-key");

    /// <summary>Serves this host's checkpoints to its peers, when ordering.peer-listen is set.</summary>
    private async Task<string?> StartPeerServerAsync(EtcdOrderingOptions etcd, CancellationToken cancellationToken)
    {
        if (etcd.PeerListen is not { } listen || host.Store is null)
        {
            return null;
        }

        _peerServer = new CheckpointPeerServer(listen, () => host.AdminToken, host.Store, host.GroupOptions.StateDirectory, host.LoggerFactory, PeerTls(etcd));
        await _peerServer.StartAsync(cancellationToken);
        return _peerServer.Url;
    }

    /// <summary>Starts the etcd sequencer (after the restored checkpoint, if any) and waits until it has appended the log so far.</summary>
    private async Task<EtcdSequencer> StartEtcdAsync(EtcdOrderingOptions etcd, CancellationToken cancellationToken)
    {
        var cursor = _restoredCursor is null ? null : EtcdCursor.Parse(_restoredCursor);
        var sequencer = new EtcdSequencer(host.Log, etcd, _logger, cursor);
        sequencer.MemberLeft += OnMemberLeft;
        sequencer.LeaveRequested += OnLeaveRequested;
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
            EtcdResumed(_logger, host.Log.First - 1, cursor.Revision);
        }

        // A gateway that can no longer follow the log (etcd compacted what it needs) stops rather than diverge.
        _ = sequencer.Failed.ContinueWith(
            t =>
            {
                host.Events.Record("+etcd-compacted", null, t.Exception?.InnerException?.Message ?? "etcd compacted the log");
                host.RequestShutdown();
            },
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
        return sequencer;
    }

    /// <summary>Joins the cluster once this gateway serves, advertising its service and admin addresses in its member key.</summary>
    private async Task JoinClusterAsync(EtcdSequencer sequencer, CancellationToken cancellationToken)
    {
        var checkpoints = await StartPeerServerAsync(etcd, cancellationToken);
        await sequencer.JoinAsync(host.ClientEndPoint?.ToString(), host.AdminEndPoint?.ToString(), checkpoints, cancellationToken);
        host.Events.Record("+member-joined", null, $"run {sequencer.CurrentRun} of cluster {etcd.Cluster}");
    }

    /// <summary>A gateway run left: its open sessions are closed in the log; this gateway's own clients of it are dropped.</summary>
    private void OnMemberLeft(EtcdPeer peer, IReadOnlyList<long> sessions)
    {
        host.Events.Record("+member-left", null, $"member {peer.Member} (run {peer.Run}{(peer.Self ? ", this gateway" : "")}): its lease ended; {sessions.Count} open sessions closed in the log");
        if (peer.Self && sessions.Count > 0)
        {
            host.CloseSessions(sessions, "this gateway's etcd lease expired and the cluster closed the session; reconnect");
        }
    }

    public ModeStatus? Describe() => _sequencer is not { } sequencer ? null :
        new EtcdStatus(sequencer.Endpoint.ToString(), etcd.Cluster, etcd.Member, sequencer.AppliedRevision, sequencer.BatchStats.Batches, sequencer.BatchStats.Largest)
        {
            Run = sequencer.CurrentRun,
            LeasesLost = sequencer.RunsLost,
            Peers = sequencer.Peers,
            TrimmedRevision = sequencer.TrimStats.Revision,
            TrimmedBatches = sequencer.TrimStats.Batches,
        };

    [LoggerMessage(EventId = 1510, Level = LogLevel.Information, Message = "Member at {Service} asked this host to leave its part to it (it was started with --replaces); leaving")]
    private static partial void LeaveAsked(ILogger logger, string service);

    [LoggerMessage(EventId = 1511, Level = LogLevel.Warning, Message = "Member at {Service} asked this host to leave to it; refused: {Reason}")]
    private static partial void LeaveRefused(ILogger logger, string service, string reason);

    [LoggerMessage(EventId = 1512, Level = LogLevel.Information, Message = "Replacing member {Member}: {Outcome}")]
    private static partial void ReplaceEnded(ILogger logger, int member, string outcome);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Information, Message = "Going on from the checkpoint at #{Sequence}: the log after it comes from etcd revision {Revision} on")]
    private static partial void EtcdResumed(ILogger logger, long sequence, long revision);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Warning, Message = "etcd compacted the history this host needed: took the checkpoint at #{Sequence} from member {Member} ({Url}), stored as {Snapshot}")]
    private static partial void PeerCheckpoint(ILogger logger, int member, string url, long sequence, string snapshot);
}
