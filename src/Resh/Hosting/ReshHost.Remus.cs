using System.Diagnostics;
using System.Net;
using Resh.Group;
using Resh.Modes;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Hosting;

/// <summary>
/// Mode remus. The primary (`resh run`) executes requests at once and ships the ordered log to the backup
/// every epoch through a <see cref="BackupLink"/>, which is an output-commit gate of its group. The backup
/// (`resh backup`, <see cref="RunBackupAsync"/>) appends what it receives to its own log and applies it in
/// batches to a frozen domain; when the primary falls silent it raises the term, applies everything it holds,
/// opens the service address and serves.
/// </summary>
public sealed partial class ReshHost
{
    private BackupLink? _link;
    private StandbyPolicy? _standby;
    private BackupServer? _backupServer;
    private string _remusRole = "primary";

    /// <summary>True when a backup refused this primary's term: another primary took over, and this one must not serve.</summary>
    public bool IsFenced => _link?.Fenced.IsCompleted == true;

    private string TermPath => Path.Combine(_options.Group.StateDirectory, "term");

    /// <summary>The primary's term: the one on disk (from a takeover), at least 1.</summary>
    private ulong PrimaryTerm()
    {
        var terms = new TermFile(TermPath);
        var term = Math.Max(1, terms.Read());
        terms.Write(term);
        return term;
    }

    private void AttachBackupLink(ulong term, bool unprotected, IPEndPoint? exclude)
    {
        var link = new BackupLink(_options.Replication.Remus, term, Log, () => _group?.NewestCheckpoint, _store, Metrics, _loggerFactory.CreateLogger("Resh.Remus"), unprotected, exclude);
        link.BackupChanged += backup => Events.Record(backup is null ? "+backup-lost" : "+backup-attached", null, backup is null ? "replies wait until a backup acknowledges" : $"{backup}, term {term}");
        _ = link.Fenced.ContinueWith(
            t =>
            {
                Events.Record("+fenced", null, t.Result);
                RequestShutdown();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _group!.AddCommitGate(link);
        _group.AddCheckpointHooks(link);
        _link = link;
        link.Start();
    }

    /// <summary>
    /// `resh backup`: waits for the primary, keeps a frozen replica up to date with what it ships, and on its
    /// loss takes over (returns true, serving); returns false when the primary stopped in a controlled way.
    /// </summary>
    /// <param name="admin">This backup's own admin endpoint (optional; the configured one belongs to the primary until a takeover).</param>
    public async Task<bool> RunBackupAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken)
    {
        _remusRole = "backup";
        HostLog.Starting(_logger, "remus (backup)", _options.Group.Faults, _options.Group.Replicas.Count, Protocol.Name, Path.GetFullPath(_options.Group.StateDirectory));
        var (restored, _) = await OpenStateAsync(cancellationToken);
        var remus = _options.Replication.Remus;
        _backupServer = new BackupServer(listen, remus, Log, _store, new TermFile(TermPath), Path.Combine(_options.Group.StateDirectory, "transfer"), _loggerFactory.CreateLogger("Resh.Remus"));
        _backupServer.Start();
        BackupEndPoint = _backupServer.EndPoint;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, ShutdownRequested);
        await Task.WhenAny(_backupServer.Synced, _backupServer.Outcome).WaitAsync(stop.Token);
        if (!_backupServer.Synced.IsCompleted)
        {
            return false;
        }

        restored = _backupServer.Received ?? restored;
        _sequencer = new LocalSequencer(Log);
        _standby = new StandbyPolicy(_options.Replication.Remus);
        _group = new ReplicaGroup(_options.Group, _standby, Protocol, _sequencer, _domains!.Create, Metrics, Events, _loggerFactory.CreateLogger("Resh.Group"), _store, restored);
        await _group.StartAsync(cancellationToken);
        await StartAdminAsync(admin, optional: false, cancellationToken);
        HostLog.BackupReady(_logger, _backupServer.Primary ?? "?", Log.First, remus.ApplyInterval);
        Events.Record("+backup-ready", null, $"holding the log of {_backupServer.Primary} from #{Log.First}");

        var outcome = await _backupServer.Outcome.WaitAsync(stop.Token);
        if (outcome == BackupOutcome.PrimaryStopped)
        {
            return false;
        }

        await TakeOverAsync(listen, cancellationToken);
        return true;
    }

    private async Task TakeOverAsync(IPEndPoint listen, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var server = _backupServer!;
        var term = server.BeginTerm();
        var lastSession = server.LastSession;
        var detail = $"nothing from {server.Primary} for {_options.Replication.Remus.FailoverTimeout.TotalMilliseconds:0} ms; the backup holds #{Log.First}..#{Log.Head}";
        HostLog.TakingOver(_logger, term, detail);
        Events.Record("+takeover", null, $"term {term}: {detail}");

        // No old primary can attach any more; it is fenced by the term should it reach a backup again.
        await server.DisposeAsync();
        _backupServer = null;
        await RunTakeoverCommandAsync(cancellationToken);
        await _standby!.PromoteAsync(cancellationToken);
        _remusRole = "primary";

        // Unprotected until a new backup attaches (`resh backup` at one of the other remus.backup addresses).
        AttachBackupLink(term, unprotected: true, exclude: listen);
        // On one host the configured admin address may still be the dead primary's for a moment.
        await ServeAsync(lastSession, optionalAdmin: true, cancellationToken);
        Metrics.Failover();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        HostLog.TookOver(_logger, elapsed);
        Events.Record("+serving", null, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"took over in {elapsed:0} ms; unprotected until a backup attaches"));
    }

    private async Task RunTakeoverCommandAsync(CancellationToken cancellationToken)
    {
        if (_options.Replication.Remus.TakeoverCommand is not { } command)
        {
            return;
        }

        try
        {
            using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var errors = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            if (process.ExitCode != 0)
            {
                HostLog.TakeoverCommandFailed(_logger, $"'{command}' exited with {process.ExitCode}: {(await errors).Trim()}");
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or OperationCanceledException or InvalidOperationException)
        {
            HostLog.TakeoverCommandFailed(_logger, $"'{command}': {e.Message}");
        }
    }

    /// <summary>Where `resh backup` listens for the primary (after <see cref="RunBackupAsync"/> started).</summary>
    public IPEndPoint? BackupEndPoint { get; private set; }

    /// <summary>Mode remus as /status shows it, or null in the other modes.</summary>
    private RemusStatus? RemusStatus()
    {
        if (_options.Replication.Mode != ReplicationMode.Remus)
        {
            return null;
        }

        var link = _link;
        var server = _backupServer;
        return new RemusStatus(
            _remusRole,
            link?.Term ?? server?.Term ?? 0,
            link?.Backup,
            server?.Primary,
            link?.EpochsShipped ?? 0,
            link?.EpochsAcked ?? 0,
            link?.AckedCount ?? Log.Count,
            _group?.HeldReplies ?? 0,
            link?.Protected ?? false,
            IsFenced);
    }

    private async Task StopRemusAsync()
    {
        if (_link is not null)
        {
            await _link.DisposeAsync();
        }

        if (_backupServer is not null)
        {
            await _backupServer.DisposeAsync();
        }
    }
}
