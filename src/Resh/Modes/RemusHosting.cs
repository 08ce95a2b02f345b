using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Composition;
using Resh.Group;
using Resh.Migration;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Modes;

/// <summary>
/// Mode remus on this host. As the primary: the log is ordered here and shipped to the backup through a
/// <see cref="BackupLink"/>, an output-commit gate of the group (a reply waits until the backup holds its request); a
/// primary that a backup fences stops. As the backup (`resh backup`, <see cref="StandByAsync"/>): it appends what the
/// primary ships to its own log and applies it in batches to a frozen replica; when the primary falls silent it raises
/// the term, applies everything it holds, opens the service address and serves as the primary. /status shows the link.
/// A primary moves to a third host with `resh migrate` (<see cref="MigrateAsync"/>): pre-copy rounds to a `resh receive`
/// target there (<see cref="ReceiveAsync"/>) while the backup still gates every reply, then the backup is told that the
/// service moves (it keeps its log and waits), the target takes over as the primary in the next term and attaches that
/// backup again from its own remus.backup list, and this host retires.
/// </summary>
public sealed partial class RemusHosting(IModeHost host, RemusOptions remus, MigrationOptions migration) : IModeHosting, IHandover, IMigration
{
    private volatile bool _handOver;
    private ReplicaGroup? _group;
    private MigrationSource? _migration;

    private readonly ILogger _logger = host.LoggerFactory.CreateLogger("Resh.Remus");
    private BackupLink? _link;
    private BackupServer? _server;
    private StandbyPolicy? _standby;

    /// <summary>"primary"; "backup" (`resh backup`) or "target" (`resh receive`) until a takeover.</summary>
    public string Role { get; private set; } = "primary";

    private string TermPath => Path.Combine(host.GroupOptions.StateDirectory, "term");

    public string? CheckpointLabel => null;

    /// <summary>True when a backup refused this primary's term: another primary took over, and this one must not serve.</summary>
    public bool Fenced => _link?.Fenced.IsCompleted == true;

    public IPEndPoint? StandbyEndPoint { get; private set; }

    public Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken) =>
        Task.FromResult<(ISequencer, VerifiedCheckpoint?, long)>((new LocalSequencer(host.Log), restored, lastSession));

    /// <summary>Output commit to the backup from the first request on: a reply waits until the backup holds its request.</summary>
    public void Attach(ReplicaGroup group)
    {
        _group = group;
        group.ReplicaSuspected += OnReplicaSuspected;
        AttachLink(group, PrimaryTerm(), unprotected: false, exclude: null);
    }

    /// <summary>1 once this primary's replica failed and the service is being handed to the backup (remus.on-replica-failure: failover).</summary>
    private int _failingOver;

    /// <summary>
    /// The primary's replica failed. With remus.on-replica-failure: failover and an up-to-date backup, the service is
    /// handed to the backup at once (a switchover) instead of waiting here for the rebuild; otherwise the group rebuilds.
    /// </summary>
    private void OnReplicaSuspected(ReplicaSuspicion suspicion)
    {
        if (remus.OnReplicaFailure != ReplicaFailureAction.Failover || Role != "primary" || _handOver || Interlocked.Exchange(ref _failingOver, 1) != 0)
        {
            return;
        }

        // Not on the group's thread: the switchover stops this gateway.
        _ = Task.Run(() =>
        {
            if (host.RequestSwitchover() is { } problem)
            {
                Interlocked.Exchange(ref _failingOver, 0);
                ReplicaFailedRebuilding(_logger, suspicion.Replica, problem);
                host.Events.Record("+replica-failover-refused", suspicion.Replica, $"rebuilt here instead: {problem}");
                return;
            }

            ReplicaFailedHandingOver(_logger, suspicion.Replica, $"{suspicion.Kind}: {suspicion.Reason}");
            host.Events.Record("+replica-failover", suspicion.Replica, $"{suspicion.Kind}: {suspicion.Reason}; the backup takes the service");
        });
    }

    /// <summary>After a replica failure only the replies about to be committed are waited for: the rest will not come here.</summary>
    public TimeSpan? HandoverDrain => Volatile.Read(ref _failingOver) == 1 ? (2 * remus.Epoch) + TimeSpan.FromMilliseconds(100) : null;

    public Task ServingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The primary's term: the one on disk (from a takeover), at least 1.</summary>
    private ulong PrimaryTerm()
    {
        var terms = new TermFile(TermPath);
        var term = Math.Max(1, terms.Read());
        terms.Write(term);
        return term;
    }

    /// <summary>Ships the log to a backup (after a takeover: <paramref name="unprotected"/> until one attaches, never to <paramref name="exclude"/>).</summary>
    private void AttachLink(ReplicaGroup group, ulong term, bool unprotected, IPEndPoint? exclude)
    {
        var link = new BackupLink(remus, term, host.Log, () => group.NewestCheckpoint, host.Store, host.Metrics, _logger, unprotected, exclude);
        link.BackupChanged += backup => host.Events.Record(backup is null ? "+backup-lost" : "+backup-attached", null, backup is null ? "replies wait until a backup acknowledges" : $"{backup}, term {term}");
        _ = link.Fenced.ContinueWith(
            t =>
            {
                host.Events.Record("+fenced", null, t.Result);
                host.RequestShutdown();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        group.AddCommitGate(link);
        group.AddCheckpointHooks(link);
        _link = link;
        link.Start();
    }

    /// <summary>
    /// `resh backup`: waits for the primary, keeps a frozen replica up to date with what it ships, and on its
    /// loss takes over (returns true, serving); returns false when the primary stopped in a controlled way.
    /// </summary>
    /// <param name="admin">This backup's own admin endpoint (optional; the configured one belongs to the primary until a takeover).</param>
    public Task<bool> StandByAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) =>
        StandByAsync(listen, admin, receiving: false, cancellationToken);

    /// <summary>
    /// `resh receive` with a mode remus configuration: the target of a primary's `resh migrate`. Stands by like a backup,
    /// but on the migration link's terms: a source that falls silent before it handed the service over is an error
    /// here (it may still serve, with its own backup), never a reason to take over. Once handed over it takes over as
    /// the primary in a newer term, as a backup would, and attaches a backup from remus.backup.
    /// </summary>
    public Task<bool> ReceiveAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) =>
        StandByAsync(listen, admin, receiving: true, cancellationToken);

    private async Task<bool> StandByAsync(IPEndPoint listen, IPEndPoint? admin, bool receiving, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listen);
        Role = receiving ? "target" : "backup";
        Starting(_logger, host.GroupOptions.Faults, host.GroupOptions.Replicas.Count, host.ProtocolName, Path.GetFullPath(host.GroupOptions.StateDirectory));
        var restored = await host.OpenStateAsync(cancellationToken);
        Task? prepared = null;
        ReplicaGroup? group = null;

        // A migration target's heartbeats tell the source how far its replicas applied (nothing until the takeover is
        // prepared): the stop-and-copy waits until they are close. A backup must be able to take over at any time.
        long Applied() => prepared is { IsCompleted: true } && (group as IGroupControl)?.View() is { Replicas.Count: > 0 } view ? view.Replicas.Min(r => r.Applied) + 1 : 0;
        var server = new BackupServer(listen, receiving ? migration.Link(listen) : remus, host.Log, host.Store, new TermFile(TermPath), Path.Combine(host.GroupOptions.StateDirectory, "transfer"), _logger, applied: receiving ? Applied : null);
        _server = server;
        server.Start();
        StandbyEndPoint = server.EndPoint;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, host.ShutdownRequested);
        await Task.WhenAny(server.Synced, server.Outcome).WaitAsync(stop.Token);
        if (!server.Synced.IsCompleted)
        {
            return false;
        }

        _standby = new StandbyPolicy(new PrimaryPolicy(), receiving ? migration.ApplyInterval : remus.ApplyInterval);
        group = await host.StartGroupAsync(_standby, server.Received ?? restored, cancellationToken);
        await host.PrepareTakeoverAsync(admin, cancellationToken);
        prepared = host.TakeoverPrepared;
        if (receiving)
        {
            host.Events.Record("+migration-receiving", null, $"from {server.Primary}, holding the log from #{host.Log.First}");
        }
        else
        {
            BackupReady(_logger, server.Primary ?? "?", host.Log.First, remus.ApplyInterval);
            host.Events.Record("+backup-ready", null, $"holding the log of {server.Primary} from #{host.Log.First}");
        }

        switch (await server.Outcome.WaitAsync(stop.Token))
        {
            case BackupOutcome.PrimaryStopped:
                return false;
            case BackupOutcome.PrimaryLost when receiving:
                throw new InvalidOperationException($"the source {server.Primary} fell silent before it handed the service over; it may still be serving, so this target does not (start resh receive again with an empty state directory and migrate again)");
            case var outcome:
                await TakeOverAsync(group, server, listen, outcome == BackupOutcome.HandedOver, cancellationToken, receiving ? migration.TakeoverCommand : remus.TakeoverCommand, receiving ? "migration.takeover-command" : "remus.takeover-command");
                return true;
        }
    }

    private async Task TakeOverAsync(ReplicaGroup group, BackupServer server, IPEndPoint listen, bool handedOver, CancellationToken cancellationToken, string? takeoverCommand, string takeoverSetting)
    {
        var started = Stopwatch.GetTimestamp();
        var term = server.BeginTerm();
        var lastSession = server.LastSession;
        var detail = handedOver
            ? $"{server.Primary} handed the service over; the backup holds #{host.Log.First}..#{host.Log.Head}"
            : $"nothing from {server.Primary} for {remus.FailoverTimeout.TotalMilliseconds:0} ms; the backup holds #{host.Log.First}..#{host.Log.Head}";
        TakingOver(_logger, term, detail);
        host.Events.Record("+takeover", null, $"term {term}: {detail}");

        // No old primary can attach any more; it is fenced by the term should it reach a backup again.
        await server.DisposeAsync();
        _server = null;
        await CommandRunner.RunAsync(takeoverCommand, takeoverSetting, _logger, cancellationToken);

        // The replica thaws and catches up beside the listener's start: clients reconnect at once, and their first
        // requests are ordered (and shipped to a backup, once one attaches) while it replays.
        var standby = _standby!;
        standby.EndStandby();
        var promoting = Task.Run(() => standby.PromoteAsync(cancellationToken), CancellationToken.None);
        Role = "primary";

        // Unprotected until a new backup attaches (`resh backup` at one of the other remus.backup addresses).
        AttachLink(group, term, unprotected: true, exclude: listen);
        // On one host the configured admin address may still be the dead primary's for a moment.
        await Task.WhenAll(promoting, host.ServeAsync(lastSession, cancellationToken));
        group.ReplicaSuspected += OnReplicaSuspected;
        host.Metrics.Failover();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        TookOver(_logger, elapsed);
        host.Events.Record("+serving", null, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"took over in {elapsed:0} ms; unprotected until a backup attaches"));
    }

    /// <summary>Mode remus as /status shows it.</summary>
    public ModeStatus? Describe()
    {
        if (_migration is { } running)
        {
            return running.Describe();
        }

        var link = _link;
        var server = _server;
        return new RemusStatus(
            Role,
            link?.Term ?? server?.Term ?? 0,
            link?.Backup,
            server?.Primary,
            link?.EpochsShipped ?? 0,
            link?.EpochsAcked ?? 0,
            link?.AckedCount ?? host.Log.Count,
            host.ReplicaGroup?.HeldReplies ?? 0,
            link?.Protected ?? false,
            Fenced);
    }

    public string? HandoverProblem =>
        _migration is { Converged: true } ? null
        : Role != "primary" ? "this gateway is a backup; switch over on the primary"
        : Fenced ? "this primary is fenced"
        : _link is not { Protected: true } ? "no backup is attached and up to date (the primary serves unprotected); start resh backup at a remus.backup address first"
        : null;

    public void HandOverOnStop() => _handOver = true;

    private bool _migrated;

    /// <summary>
    /// After a switchover the old primary stands by as the new one's backup. After a migration it retires: its backup was
    /// told to follow the target (or, if it could not be told, this host must not compete for the backup's address).
    /// </summary>
    public bool StandsByAfterHandover => !_migrated;

    public string? HandedOverTo { get; private set; }

    /// <summary>
    /// A controlled stop: the backup is told, so it does not take over; in a switchover (<see cref="HandOverOnStop"/>) it
    /// is told to take over at once instead, once it acknowledged the whole log and the release command ran.
    /// </summary>
    public async Task StoppingAsync()
    {
        if (_link is null || Fenced)
        {
            return;
        }

        if (!_handOver)
        {
            await _link.SayGoodbyeAsync(TimeSpan.FromSeconds(2));
            return;
        }

        if (_migration is { Converged: true } source)
        {
            // The service moves to the migration's target: the backup is told first (it must not take over once this
            // primary is gone); it keeps its log and waits for the target, which attaches it as its backup in the next
            // term. Then the target gets the rest of the log and takes over, and this host retires.
            var follower = _link.Backup;
            _migrated = true;
            var told = await _link.SayMovingAsync(TimeSpan.FromSeconds(2));
            host.Events.Record(told ? "+backup-follows" : "+backup-not-told", follower, told
                ? $"the service migrates to {source.TargetAddress}; the backup keeps its log and waits for it to attach in term {_link.Term + 1}"
                : $"the backup could not be told; it takes over after remus.failover-timeout unless it is stopped (the migration's target takes over too)");
            HandedOverTo = await source.HandOverAsync(TimeSpan.FromSeconds(30)) ? source.TargetAddress : null;
            return;
        }

        await CommandRunner.RunAsync(remus.ReleaseCommand, "remus.release-command", _logger);
        var backup = await _link.HandOverAsync(TimeSpan.FromSeconds(5));
        HandedOverTo = backup;
        host.Events.Record(backup is not null ? "+handed-over" : "+handover-failed", null, backup is not null ? $"to {backup}; it takes over now" : "the backup could not be told; it takes over after remus.failover-timeout");
        HandedOver(_logger, backup ?? "?", backup is not null);
    }

    public string? MigrationProblem(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return Role != "primary" ? "this gateway is not the primary; migrate on the primary"
            : _group is null ? "the group has not started"
            : Fenced ? "this primary is fenced"
            : _migration is { } running ? $"a migration to {running.Target} is already running"
            : _link is not { Protected: true } ? "no backup is attached and up to date; a primary migrates with its backup gating every reply until the handover (start resh backup at a remus.backup address first)"
            : _link.Backup == target.ToString() ? $"{target} is this primary's backup already; hand the service to it with resh switchover"
            : !_group.Ready ? "the primary's replica does not vote now; see resh status"
            : migration.TargetProblem(target);
    }

    /// <summary>
    /// Pre-copy rounds to a `resh receive` target while the backup still gates every reply; once they converged, the
    /// stop-and-copy as a switchover whose <see cref="StoppingAsync"/> stops the backup and hands over to the target.
    /// </summary>
    public async Task<ModeStatus> MigrateAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        if (MigrationProblem(target) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        var source = new MigrationSource(host, _group!, migration, target, _logger, _link!.Term);
        if (Interlocked.CompareExchange(ref _migration, source, null) is not null)
        {
            await source.DisposeAsync();
            throw new InvalidOperationException("a migration is already running");
        }

        return await source.RunAsync(_ => _migration = null, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_migration is { } source)
        {
            await source.DisposeAsync();
        }

        if (_link is not null)
        {
            await _link.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Mode remus (backup): f={Faults}, {Replicas} replicas of {Protocol}, state in {StateDirectory}")]
    private static partial void Starting(ILogger logger, int faults, int replicas, string protocol, string stateDirectory);

    [LoggerMessage(EventId = 1208, Level = LogLevel.Information, Message = "Backup of {Primary} ready: its replica holds the log from #{First}, applied every {Interval}")]
    private static partial void BackupReady(ILogger logger, string primary, long first, TimeSpan interval);

    [LoggerMessage(EventId = 1209, Level = LogLevel.Warning, Message = "Taking over as primary in term {Term}: {Detail}")]
    private static partial void TakingOver(ILogger logger, ulong term, string detail);

    [LoggerMessage(EventId = 1217, Level = LogLevel.Information, Message = "Switchover: handed the service to the backup {Backup} (told: {Told})")]
    private static partial void HandedOver(ILogger logger, string backup, bool told);

    [LoggerMessage(EventId = 1218, Level = LogLevel.Warning, Message = "The primary's replica {Replica} failed ({Reason}): handing the service to the backup (remus.on-replica-failure: failover)")]
    private static partial void ReplicaFailedHandingOver(ILogger logger, string replica, string reason);

    [LoggerMessage(EventId = 1219, Level = LogLevel.Warning, Message = "The primary's replica {Replica} failed, and the service cannot be handed over ({Problem}): rebuilding it here")]
    private static partial void ReplicaFailedRebuilding(ILogger logger, string replica, string problem);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Information, Message = "Took over in {Milliseconds:0} ms; serving")]
    private static partial void TookOver(ILogger logger, double milliseconds);
}
