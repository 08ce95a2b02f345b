using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Admin;
using Resh.Checkpoints;
using Resh.Composition;
using Resh.Diagnostics;
using Resh.Domains;
using Resh.Gateway;
using Resh.Group;
using Resh.Modes;
using Resh.Ordering;
using Resh.Protocols;

namespace Resh.Hosting;

/// <summary>
/// Composes one running gateway: domains, the ordered log and its sequencer, the replica group,
/// the client listener and the admin endpoint. Start, then wait for <see cref="Stopped"/> or call <see cref="StopAsync"/>.
/// </summary>
public sealed partial class ReshHost : IAdminTarget, IModeHost, IAsyncDisposable
{
    private readonly ReshOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _shutdownRequested = new();
    private IDomainFactory? _domains;
    private ReplicaGroup? _group;
    private GatewayServer? _gateway;
    private AdminServer? _admin;
    private ISequencer? _sequencer;
    private DurableLog? _durable;
    private int _relieving;

    /// <summary>The gateway's memory guard (service.limits.memory), once serving; for tests.</summary>
    internal MemoryGuard? Memory => _gateway?.Memory;
    private CheckpointStore? _store;
    private int _stopping;
    private readonly IModeHosting _mode;

    public ReshHost(ReshOptions options, ILoggerFactory? loggerFactory = null, DomainFactoryOptions? domainOptions = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("Resh.Host");
        DomainOptions = domainOptions ?? new DomainFactoryOptions();
        Protocol = options.CreateProtocol();
        _mode = ModeHostings.For(this, options.Replication, options.Ordering);
        if (Protocol.OrderObserver is { } observer)
        {
            Log.Observer = new ProtocolOrder(observer);
        }
    }

    public IProtocol Protocol { get; }

    internal ReshOptions Options => _options;

    internal ReplicaGroup? Group => _group;

    GroupOptions IModeHost.GroupOptions => _options.Group;

    string? IModeHost.AdminToken => _options.AdminToken;

    ILoggerFactory IModeHost.LoggerFactory => _loggerFactory;

    CheckpointStore? IModeHost.Store => _store;

    ReplicaGroup? IModeHost.ReplicaGroup => _group;

    IPEndPoint? IModeHost.ClientEndPoint => _gateway?.EndPoint;

    string IModeHost.ProtocolName => Protocol.Name;

    void IModeHost.CloseSessions(IEnumerable<long> sessions, string reason) => _gateway?.CloseSessions(sessions, reason);

    async Task<VerifiedCheckpoint?> IModeHost.OpenStateAsync(CancellationToken cancellationToken) => (await OpenStateAsync(null, cancellationToken)).Restored;

    async Task<ReplicaGroup> IModeHost.StartGroupAsync(IGroupPolicy policy, VerifiedCheckpoint? restored, CancellationToken cancellationToken)
    {
        _sequencer = new LocalSequencer(Log);
        _group = new ReplicaGroup(_options.Group, policy, Protocol, _sequencer, _domains!.Create, Metrics, Events, _loggerFactory.CreateLogger("Resh.Group"), _store, restored);
        await _group.StartAsync(cancellationToken);
        return _group;
    }

    async Task IModeHost.PrepareTakeoverAsync(IPEndPoint? admin, CancellationToken cancellationToken)
    {
        if (admin is not null)
        {
            // The standby's own endpoint: an address it cannot listen on is an error of the command, said at once.
            await StartAdminAsync(admin, optional: false, cancellationToken);
        }

        // In the background: a takeover that comes first must not wait for it. ServeAsync stops the gateway's warm-up;
        // an admin start under way finishes first (the takeover's own start of the admin endpoint waits for it).
        _warmUp = Task.Run(
            async () =>
            {
                try
                {
                    if (admin is null)
                    {
                        await PrepareAdminAsync(CancellationToken.None);
                    }

                    HostLog.GatewayWarmedUp(_logger, await Gateway.GatewayWarmUp.RunAsync(_options.CreateProtocol(), _options.Gateway, _warmUpStop.Token));
                }
                catch (Exception e)
                {
                    // Only a preparation: the takeover starts what it needs either way.
                    HostLog.PreparationFailed(_logger, e.Message);
                }
            },
            CancellationToken.None);
    }

    private readonly CancellationTokenSource _warmUpStop = new();
    private Task _warmUp = Task.CompletedTask;

    Task IModeHost.TakeoverPrepared => _warmUp;

    Task IModeHost.ServeAsync(long lastSession, CancellationToken cancellationToken) => ServeAsync(lastSession, optionalAdmin: true, cancellationToken);

    /// <summary>True when a backup refused this primary's term: another primary took over, and this one must not serve.</summary>
    public bool IsFenced => _mode.Fenced;

    /// <summary>
    /// The host's second entry point (mode remus: `resh backup`): stands by for the primary and, on its loss, takes
    /// over (returns true, serving); returns false when the primary stopped in a controlled way.
    /// </summary>
    /// <param name="admin">This backup's own admin endpoint (optional; the configured one belongs to the primary until a takeover).</param>
    public Task<bool> RunBackupAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) => _mode.StandByAsync(listen, admin, cancellationToken);

    /// <summary>`resh receive`: stands by as the target of `resh migrate` and serves once the service was handed over (true).</summary>
    public Task<bool> RunReceiveAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) => _mode.ReceiveAsync(listen, admin, cancellationToken);

    /// <summary>Where `resh backup` listens for the primary (after <see cref="RunBackupAsync"/> started).</summary>
    public IPEndPoint? BackupEndPoint => _mode.StandbyEndPoint;

    public DomainFactoryOptions DomainOptions { get; }

    public ReshMetrics Metrics { get; } = new();

    public EventJournal Events { get; } = new();

    public OrderedLog Log { get; } = new();

    /// <summary>The ordered log on disk, when configured.</summary>
    internal DurableLog? DurableLog => _durable;

    /// <summary>The bound client address (after start).</summary>
    public IPEndPoint ListenEndPoint => _gateway?.EndPoint ?? throw new InvalidOperationException("not started");

    /// <summary>The bound admin address, if any.</summary>
    public IPEndPoint? AdminEndPoint { get; private set; }

    /// <summary>Completes when the host has stopped.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Cancelled when a controlled shutdown was requested (admin POST /shutdown, or a signal routed here).</summary>
    public CancellationToken ShutdownRequested => _shutdownRequested.Token;

    public bool Ready => _group?.Ready ?? false;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        HostLog.Starting(_logger, _options.Replication.Name, _options.Group.Faults, _options.Group.Replicas.Count, Protocol.Name, Path.GetFullPath(_options.Group.StateDirectory));
        foreach (var warning in _options.Warnings())
        {
            HostLog.ConfigWarning(_logger, warning);
        }
        var (restored, label, lastSession) = await OpenStateAsync(_mode.CheckpointLabel, cancellationToken);

        // The log's order (D-RESH: the log so far comes from etcd before the replicas start), then what the mode adds.
        (_sequencer, restored, lastSession) = await _mode.OrderAsync(restored, label, lastSession, cancellationToken);
        _group = new ReplicaGroup(_options.Group, ModePolicies.For(_options.Replication), Protocol, _sequencer, _domains!.Create, Metrics, Events, _loggerFactory.CreateLogger("Resh.Group"), _store, restored);
        _mode.Attach(_group);
        await _group.StartAsync(cancellationToken);
        await ServeAsync(lastSession, optionalAdmin: false, cancellationToken);
        await _mode.ServingAsync(cancellationToken);
    }

    /// <summary>
    /// The state directory, domains, checkpoint store and durable log: the newest checkpoint (with <paramref name="required"/>
    /// when given, and that label's value) and the highest session id found.
    /// </summary>
    private async Task<(VerifiedCheckpoint? Restored, string? Label, long LastSession)> OpenStateAsync(string? required, CancellationToken cancellationToken)
    {
        string? label = null;
        Directory.CreateDirectory(_options.Group.StateDirectory);

        // The process's read loop starts here, so that a failure to start it is logged with the gateway's logger.
        _ = Ordering.SocketReadLoop.Shared(_loggerFactory.CreateLogger("Resh.Gateway"));
        _domains = new DomainFactory(DomainOptions, _loggerFactory.CreateLogger("Resh.Domains"));
        long lastSession = 0;
        VerifiedCheckpoint? restored = null;
        if (_options.Group.Checkpoint is { } checkpoint)
        {
            var storePath = LogMaintenance.StoreDirectory(_options, checkpoint);
            _store = await CheckpointStore.OpenAsync(storePath, new StoreOptions { Logger = _loggerFactory.CreateLogger("Resh.Store") }, cancellationToken);
            // D-RESH: only a checkpoint that says where in etcd's log it stands can be gone on from.
            (restored, label) = await NewestCheckpointAsync(_store, required, cancellationToken);
            if (restored is not null)
            {
                Log.StartAt(restored.Sequence + 1);
                HostLog.CheckpointRestored(_logger, restored.Sequence, restored.SnapshotId, restored.Time);
            }
        }

        if (_options.DurableLog is { } fsync)
        {
            _durable = Ordering.DurableLog.Open(new DurableLogOptions { Directory = LogMaintenance.LogDirectory(_options), Fsync = fsync }, _loggerFactory.CreateLogger("Resh.Log"), restored?.Sequence ?? -1);
            foreach (var entry in _durable.Recovered)
            {
                Log.Append(entry);
                lastSession = Math.Max(lastSession, entry.SessionId);
            }

            Log.AttachDurable(_durable);
            HostLog.Restored(_logger, _durable.Recovered.Count, fsync);
        }

        return (restored, label, lastSession);
    }

    /// <summary>Opens the client listener and the admin endpoint (<paramref name="optionalAdmin"/>: one that cannot listen is left out).</summary>
    private async Task ServeAsync(long lastSession, bool optionalAdmin, CancellationToken cancellationToken)
    {
        // A standby's warm-up still running has done what it could: the service's own clients come now.
        await _warmUpStop.CancelAsync();
        _gateway = new GatewayServer(_options.Gateway, Protocol, _sequencer!, Metrics, _loggerFactory.CreateLogger("Resh.Gateway"))
        {
            LastSessionId = lastSession,
            LastCheckpoint = () => _group?.NewestCheckpoint?.Time,
        };
        _gateway.Memory.Pressure += _ => RelieveMemory();
        _gateway.Start();

        // A backup that took over may find the configured admin address taken (the old primary's, on one host): it
        // opens once that gateway has let it go.
        await StartAdminAsync(_options.Admin, optionalAdmin, cancellationToken);
        HostLog.Serving(_logger, _gateway.EndPoint, AdminEndPoint?.ToString() ?? "(disabled)");
        if (optionalAdmin && _admin is null && _options.Admin is { } configured)
        {
            _adminOpener = OpenAdminWhenFreeAsync(configured, _adminOpenerStop.Token);
        }
    }

    /// <summary>
    /// Over service.limits.memory: asks for a checkpoint (one at a time), which lets the log, the gateway's largest use of
    /// memory, be cut. Without checkpoints nothing can be freed, and requests stay refused until clients go away.
    /// </summary>
    private void RelieveMemory()
    {
        if (_group is not { } group || _options.Group.Checkpoint is null || Interlocked.CompareExchange(ref _relieving, 1, 0) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await group.CheckpointNowAsync(_options.FinalCheckpointTimeout);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or OperationCanceledException)
            {
                HostLog.MemoryCheckpointFailed(_logger, e.Message);
            }
            finally
            {
                Volatile.Write(ref _relieving, 0);
            }
        });
    }

    /// <summary>
    /// The stored checkpoint with the highest log position (every stored one was verified by f+1 replicas), and
    /// the value of its label <paramref name="required"/>; with that label asked for, only checkpoints that have it count.
    /// </summary>
    private static async Task<(VerifiedCheckpoint? Newest, string? Label)> NewestCheckpointAsync(CheckpointStore store, string? required, CancellationToken ct)
    {
        var (snapshot, seq) = await VerifiedCheckpoint.NewestSnapshotAsync(store, required, ct);
        return snapshot is null ? (null, null) : (new VerifiedCheckpoint(seq, snapshot.Id, snapshot.Time) { Labels = snapshot.Labels }, required is null ? null : snapshot.Labels[required]);
    }

    private void RegisterObservables()
    {
        Metrics.Meter.CreateObservableGauge("resh.log.head", () => Log.Head, "{entry}", "Last position of the ordered log.");
        Metrics.Meter.CreateObservableGauge("resh.log.retained", () => Log.Retained, "{entry}", "Log entries held in memory (those before the newest checkpoint are truncated).");
        Metrics.Meter.CreateObservableGauge("resh.log.retained_bytes", () => Log.RetainedBytes, "By", "About how many bytes the log entries held in memory take (payloads and records).");
        Metrics.Meter.CreateObservableGauge("resh.checkpoint.sequence", () => _group?.NewestCheckpoint?.Sequence ?? -1, "{entry}", "Log position of the newest verified checkpoint, -1 when none.");
        Metrics.Meter.CreateObservableGauge("resh.replicas.voting", () => _group?.Status().Voting ?? 0, "{replica}", "Replicas that vote.");
        Metrics.Meter.CreateObservableGauge(
            "resh.replica.applied",
            () => (_group?.Status().Replicas ?? []).Select(r => new System.Diagnostics.Metrics.Measurement<long>(r.Applied, new KeyValuePair<string, object?>("replica", r.Id))),
            "{entry}",
            "Last log position each replica applied.");
        Metrics.Meter.CreateObservableCounter(
            "resh.replica.cpu",
            () => (_group?.Status().Replicas ?? []).Select(r => new System.Diagnostics.Metrics.Measurement<double>(r.CpuSeconds, new KeyValuePair<string, object?>("replica", r.Id))),
            "s",
            "CPU time of each replica's current domain.");
    }

    public ReshStatus Status() => new ReshStatus(_group?.Status() ?? new GroupStatus(_options.Replication.Name, _options.Group.Faults, Log.Head, -1, 0, false, [])).With(_mode.Describe());

    public Task<string> InjectAsync(string replica, FaultKind fault, CancellationToken cancellationToken) =>
        (_group ?? throw new InvalidOperationException("not started")).InjectAsync(replica, fault, cancellationToken);

    public async Task<VerifiedCheckpoint> CheckpointAsync(CancellationToken cancellationToken)
    {
        var group = _group ?? throw new InvalidOperationException("not started");
        if (_options.Group.Checkpoint is null)
        {
            throw new InvalidOperationException("checkpoints are not configured; add a checkpoint: section (flush, files, interval) to the configuration");
        }

        if (!group.Ready)
        {
            throw new InvalidOperationException("fewer than f+1 replicas vote now, so no checkpoint can be verified; see resh status");
        }

        var before = group.NewestCheckpoint;
        // Asked for explicitly, a checkpoint may take as long as its flush may (a large data set on a busy machine
        // writes for minutes), plus the store; the caller can give up sooner.
        var limit = _options.Group.Checkpoint.Background ? _options.Group.Checkpoint.FlushTimeout + _options.FinalCheckpointTimeout : _options.FinalCheckpointTimeout;
        var newest = await group.CheckpointNowAsync(limit).WaitAsync(cancellationToken);
        return newest ?? throw new InvalidOperationException($"the checkpoint failed or did not finish within {limit.TotalSeconds:0}s (see /events); the newest verified one is {(before is null ? "none" : $"#{before.Sequence}")}");
    }

    private volatile bool _handingOver;

    /// <summary>After a stop that was a switchover: the backup that took the service (HOST:PORT), or null.</summary>
    public string? HandedOverTo => (_mode as IHandover)?.HandedOverTo;

    /// <summary>After a handover: this host stands by as the new primary's backup (see <see cref="IHandover.StandsByAfterHandover"/>).</summary>
    public bool StandsByAfterHandover => (_mode as IHandover)?.StandsByAfterHandover ?? false;

    public string? RequestSwitchover()
    {
        if (_mode is not IHandover handover)
        {
            return $"mode {_options.Replication.Mode.ToString().ToLowerInvariant()} has no backup to hand its service to (a switchover needs mode: remus)";
        }

        if (handover.HandoverProblem is { } problem)
        {
            return problem;
        }

        handover.HandOverOnStop();
        _handingOver = true;
        RequestShutdown();
        return null;
    }

    /// <summary>`resh migrate`: pre-copy rounds to <paramref name="target"/>, then the stop-and-copy; returns the rounds.</summary>
    public Task<ModeStatus> MigrateAsync(IPEndPoint target, CancellationToken cancellationToken) =>
        _mode is IMigration migration
            ? migration.MigrateAsync(target, cancellationToken)
            : throw new InvalidOperationException($"mode {_options.Replication.Mode.ToString().ToLowerInvariant()} cannot be migrated (modes resh, spare and remus can; D-RESH hosts leave with resh migrate on the leaving host)");

    public void RequestShutdown()
    {
        try
        {
            _shutdownRequested.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Controlled shutdown: stop accepting, drain clients, stop replicas. Idempotent.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 1)
        {
            await _stopped.Task;
            return;
        }

        try
        {
            if (_gateway is not null)
            {
                // A fenced primary never releases its held replies: its clients are closed at once, without them.
                var drain = IsFenced ? TimeSpan.Zero
                    : _handingOver && (_mode as IHandover)?.HandoverDrain is { } limit ? TimeSpan.FromTicks(Math.Min(limit.Ticks, _options.DrainTimeout.Ticks))
                    : _options.DrainTimeout;
                HostLog.Draining(_logger, drain);
                await _gateway.DrainAsync(drain);
                await _gateway.DisposeAsync();
            }

            if (_group is not null)
            {
                if (_options.Group.Checkpoint is not null && !IsFenced && _group.Ready && !_group.Standby && !_handingOver)
                {
                    // The clients are drained: a final checkpoint lets the next run start without replay (not in a
                    // switchover: the backup serves next, and every moment here is the service's downtime).
                    var final = await _group.CheckpointNowAsync(_options.FinalCheckpointTimeout);
                    HostLog.FinalCheckpoint(_logger, final?.Sequence ?? -1, final?.SnapshotId ?? "(none; the ordered log keeps what it covers)");
                }

                // Controlled: e.g. a Remus backup must not take over.
                await _mode.StoppingAsync();
                await _group.DisposeAsync();
            }

            await _mode.DisposeAsync();
            if (_domains is not null)
            {
                await _domains.DisposeAsync();
            }

            await _warmUpStop.CancelAsync();
            await _warmUp;
            await _adminOpenerStop.CancelAsync();
            await _adminOpener;
            if (_admin is not null)
            {
                await _admin.DisposeAsync();
            }

            _gcPauses?.Dispose();
            _exporter?.Dispose();
            if (_sequencer is not null)
            {
                await _sequencer.DisposeAsync();
            }

            if (_durable is not null)
            {
                // Flushes and fsyncs whatever is queued.
                await _durable.DisposeAsync();
            }

            if (_store is not null)
            {
                await _store.DisposeAsync();
            }

            HostLog.Stopped(_logger);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Metrics.Dispose();
        _shutdownRequested.Dispose();
    }

    /// <summary>The protocol's order observer on the log: requests and session ends, nothing of the rest.</summary>
    private sealed class ProtocolOrder(IOrderObserver observer) : IAppendObserver
    {
        public ReadOnlyMemory<byte>? Appending(LogEntry entry)
        {
            switch (entry.Kind)
            {
                case LogEventKind.Request:
                    return observer.Request(entry.Sequence, entry.SessionId, entry.Context, entry.Payload);
                case LogEventKind.Close:
                    observer.SessionClosed(entry.SessionId);
                    break;
            }

            return null;
        }
    }
}
