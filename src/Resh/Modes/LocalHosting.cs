using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Composition;
using Resh.Group;
using Resh.Migration;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Modes;

/// <summary>
/// Modes resh and spare on one host: the log is ordered here. Either can also move to another host while it runs:
/// as the source of `resh migrate` (<see cref="MigrateAsync"/>: pre-copy rounds, then the stop-and-copy as a
/// switchover) and as its target, `resh receive` (<see cref="StandByAsync"/>: the group stands by with every replica
/// passive, fed what arrives, until the source hands the service over).
/// </summary>
public sealed partial class LocalHosting(IModeHost host, ModeOptions mode) : IModeHosting, IHandover, IMigration
{
    private readonly ILogger _logger = host.LoggerFactory.CreateLogger("Resh.Migration");
    private ReplicaGroup? _group;
    private MigrationSource? _migration;
    private MigrationStatus? _lastMigration;
    private BackupServer? _server;
    private volatile bool _handOver;

    public string? CheckpointLabel => null;

    public bool Fenced => false;

    public IPEndPoint? StandbyEndPoint => _server?.EndPoint;

    public Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken) =>
        Task.FromResult<(ISequencer, VerifiedCheckpoint?, long)>((new LocalSequencer(host.Log), restored, lastSession));

    public void Attach(ReplicaGroup group) => _group = group;

    public Task ServingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ModeStatus? Describe() => _migration?.Describe() ?? _lastMigration;

    public string? MigrationProblem(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return _group is null ? "the group has not started"
            : _server is not null ? "this gateway is itself a migration target"
            : _migration is { } running ? $"a migration to {running.Target} is already running"
            : !_group.Ready ? "fewer than f+1 replicas vote now; see resh status"
            : mode.Migration.TargetProblem(target);
    }

    public async Task<ModeStatus> MigrateAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        if (MigrationProblem(target) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        var source = new MigrationSource(host, _group!, mode.Migration, target, _logger);
        if (Interlocked.CompareExchange(ref _migration, source, null) is not null)
        {
            await source.DisposeAsync();
            throw new InvalidOperationException("a migration is already running");
        }

        return await source.RunAsync(
            status =>
            {
                _lastMigration = status;
                _migration = null;
            },
            cancellationToken);
    }

    public string? HandoverProblem => _migration is { Converged: true } ? null
        : $"mode {mode.Name} has no backup to hand its service to (a switchover needs mode: remus; resh migrate --to HOST:PORT moves a mode resh service to another host)";

    public void HandOverOnStop() => _handOver = true;

    public string? HandedOverTo { get; private set; }

    /// <summary>The stop-and-copy's end: the clients are drained; the rest of the log goes to the target, which is told to take over.</summary>
    public async Task StoppingAsync()
    {
        if (!_handOver || _migration is not { Converged: true } source)
        {
            return;
        }

        HandedOverTo = await source.HandOverAsync(TimeSpan.FromSeconds(30)) ? source.TargetAddress : null;
    }

    /// <summary>
    /// `resh receive`: waits for the source of a migration, keeps every replica passive and fed with what it ships, and
    /// takes the service over when the source hands it over (true, serving). False when the source stopped the
    /// migration in a controlled way; an error when the source fell silent before the handover (it is still the service).
    /// </summary>
    public async Task<bool> StandByAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var restored = await host.OpenStateAsync(cancellationToken);
        var options = mode.Migration.Link(listen);
        // Its heartbeats tell the source how far the replicas here have applied: the stop-and-copy waits until they are close.
        var server = new BackupServer(listen, options, host.Log, host.Store, new TermFile(Path.Combine(host.GroupOptions.StateDirectory, "term")), Path.Combine(host.GroupOptions.StateDirectory, "transfer"), _logger, applied: Applied);
        _server = server;
        server.Start();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, host.ShutdownRequested);
        await Task.WhenAny(server.Synced, server.Outcome).WaitAsync(stop.Token);
        if (!server.Synced.IsCompleted)
        {
            return false;
        }

        var standby = new StandbyPolicy(ModePolicies.For(mode), mode.Migration.ApplyInterval);
        var group = await host.StartGroupAsync(standby, server.Received ?? restored, cancellationToken);
        _group = group;
        await host.PrepareTakeoverAsync(admin, cancellationToken);
        _prepared = host.TakeoverPrepared;
        host.Events.Record("+migration-receiving", null, $"from {server.Primary}, holding the log from #{host.Log.First}");
        var outcome = await server.Outcome.WaitAsync(stop.Token);
        switch (outcome)
        {
            case BackupOutcome.PrimaryStopped:
                return false;
            case BackupOutcome.PrimaryLost:
                throw new InvalidOperationException($"the source {server.Primary} fell silent before it handed the service over; it may still be serving, so this target does not (start resh receive again with an empty state directory and migrate again)");
        }

        // Timed from the source's handover frame. The link's listener winds down beside the takeover (the link itself
        // ended with that frame); the gateway listens while the replicas thaw and catch up, so that clients reconnect
        // at once and their first requests are ordered while the replicas replay.
        var started = server.HandedOverAt;
        var lastSession = server.LastSession;
        var closing = server.DisposeAsync().AsTask();
        _server = null;
        await CommandRunner.RunAsync(mode.Migration.TakeoverCommand, "migration.takeover-command", _logger, cancellationToken);
        var moved = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var listening = 0.0;
        standby.EndStandby();
        var promoting = Task.Run(() => standby.PromoteAsync(cancellationToken), CancellationToken.None);
        await Task.WhenAll(promoting, ListenAsync());
        var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        await closing;
        TookOver(_logger, elapsed, host.Log.Head, moved, listening);
        host.Events.Record("+serving", null, string.Create(CultureInfo.InvariantCulture, $"migrated here: took over at #{host.Log.Count} in {elapsed:0} ms"));
        return true;

        async Task ListenAsync()
        {
            await host.ServeAsync(lastSession, cancellationToken);
            listening = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }
    }

    /// <summary>
    /// On a target: the count of log entries every replica has applied; 0 before the group runs and until the takeover is
    /// prepared (its admin endpoint and gateway warmed up), so that the source's first round, which waits for this, does
    /// not end before the target is ready to take over.
    /// </summary>
    private long Applied() => _prepared is { IsCompleted: true } && (_group as IGroupControl)?.View() is { Replicas.Count: > 0 } view ? view.Replicas.Min(r => r.Applied) + 1 : 0;

    private Task? _prepared;

    public async ValueTask DisposeAsync()
    {
        if (_migration is { } source)
        {
            await source.DisposeAsync();
        }

        if (_server is { } server)
        {
            await server.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 1605, Level = LogLevel.Information, Message = "Took the migrated service over in {Milliseconds:0} ms after the handover, at #{Head}; serving (takeover command done after {Moved:0.0} ms, listener and admin endpoint started after {Listening:0.0} ms, the replicas voting after {Milliseconds:0.0} ms)")]
    private static partial void TookOver(ILogger logger, double milliseconds, long head, double moved, double listening);
}
