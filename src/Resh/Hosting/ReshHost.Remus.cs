using System.Diagnostics;
using System.Net;
using Resh.Group;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Hosting;

/// <summary>
/// `resh backup`, the host's second entry point (mode remus): the backup appends what the primary ships to its own
/// log and applies it in batches to a frozen domain; when the primary falls silent it raises the term, applies
/// everything it holds, opens the service address and serves. The primary's side (the <see cref="BackupLink"/>,
/// output commit, fencing, its status) is <see cref="RemusHosting"/>, which this uses too after a takeover.
/// </summary>
public sealed partial class ReshHost
{
    private StandbyPolicy? _standby;

    /// <summary>True when a backup refused this primary's term: another primary took over, and this one must not serve.</summary>
    public bool IsFenced => _mode.Fenced;

    private RemusHosting Remus => _mode as RemusHosting ?? throw new InvalidOperationException("resh backup needs mode: remus");

    /// <summary>
    /// `resh backup`: waits for the primary, keeps a frozen replica up to date with what it ships, and on its
    /// loss takes over (returns true, serving); returns false when the primary stopped in a controlled way.
    /// </summary>
    /// <param name="admin">This backup's own admin endpoint (optional; the configured one belongs to the primary until a takeover).</param>
    public async Task<bool> RunBackupAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken)
    {
        var remusHosting = Remus;
        remusHosting.Role = "backup";
        HostLog.Starting(_logger, "remus (backup)", _options.Group.Faults, _options.Group.Replicas.Count, Protocol.Name, Path.GetFullPath(_options.Group.StateDirectory));
        var (restored, _, _) = await OpenStateAsync(null, cancellationToken);
        var remus = _options.Replication.Remus;
        var backupServer = new BackupServer(listen, remus, Log, _store, new TermFile(remusHosting.TermPath), Path.Combine(_options.Group.StateDirectory, "transfer"), _loggerFactory.CreateLogger("Resh.Remus"));
        remusHosting.Server = backupServer;
        backupServer.Start();
        BackupEndPoint = backupServer.EndPoint;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, ShutdownRequested);
        await Task.WhenAny(backupServer.Synced, backupServer.Outcome).WaitAsync(stop.Token);
        if (!backupServer.Synced.IsCompleted)
        {
            return false;
        }

        restored = backupServer.Received ?? restored;
        _sequencer = new LocalSequencer(Log);
        _standby = new StandbyPolicy(_options.Replication.Remus);
        _group = new ReplicaGroup(_options.Group, _standby, Protocol, _sequencer, _domains!.Create, Metrics, Events, _loggerFactory.CreateLogger("Resh.Group"), _store, restored);
        await _group.StartAsync(cancellationToken);
        await StartAdminAsync(admin, optional: false, cancellationToken);
        HostLog.BackupReady(_logger, backupServer.Primary ?? "?", Log.First, remus.ApplyInterval);
        Events.Record("+backup-ready", null, $"holding the log of {backupServer.Primary} from #{Log.First}");

        var outcome = await backupServer.Outcome.WaitAsync(stop.Token);
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
        var remusHosting = Remus;
        var server = remusHosting.Server!;
        var term = server.BeginTerm();
        var lastSession = server.LastSession;
        var detail = $"nothing from {server.Primary} for {_options.Replication.Remus.FailoverTimeout.TotalMilliseconds:0} ms; the backup holds #{Log.First}..#{Log.Head}";
        HostLog.TakingOver(_logger, term, detail);
        Events.Record("+takeover", null, $"term {term}: {detail}");

        // No old primary can attach any more; it is fenced by the term should it reach a backup again.
        await server.DisposeAsync();
        remusHosting.Server = null;
        await RunTakeoverCommandAsync(cancellationToken);
        await _standby!.PromoteAsync(cancellationToken);
        remusHosting.Role = "primary";

        // Unprotected until a new backup attaches (`resh backup` at one of the other remus.backup addresses).
        remusHosting.AttachLink(_group!, term, unprotected: true, exclude: listen);
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
}
