using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Diagnostics;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Composition;

/// <summary>
/// The running gateway as a mode's hosting sees it: its state, log, store, journal and metrics, its addresses, and
/// the few steps a mode may take on it (close sessions, ask for a shutdown, and for a standby: open the state, start
/// the group, open the admin endpoint, serve). It lets the modes' hostings live in their own folders without
/// importing the host that composes them.
/// </summary>
public interface IModeHost
{
    GroupOptions GroupOptions { get; }

    /// <summary>The admin token, also the one peers present.</summary>
    string? AdminToken { get; }

    ILoggerFactory LoggerFactory { get; }

    OrderedLog Log { get; }

    /// <summary>The checkpoint store, once the state is open and when checkpoints are configured.</summary>
    CheckpointStore? Store { get; }

    EventJournal Events { get; }

    ReshMetrics Metrics { get; }

    /// <summary>The group, once started.</summary>
    ReplicaGroup? ReplicaGroup { get; }

    /// <summary>The bound client address, once serving.</summary>
    IPEndPoint? ClientEndPoint { get; }

    /// <summary>The bound admin address, if any.</summary>
    IPEndPoint? AdminEndPoint { get; }

    /// <summary>Cancelled when a controlled shutdown was requested.</summary>
    CancellationToken ShutdownRequested { get; }

    /// <summary>The protocol's name (for the start line of a standby).</summary>
    string ProtocolName { get; }

    /// <summary>Drops this gateway's clients of these sessions with the reason.</summary>
    void CloseSessions(IEnumerable<long> sessions, string reason);

    void RequestShutdown();

    /// <summary>
    /// A controlled stop that hands the service to the mode's standby (<see cref="IHandover"/>); null when it was asked
    /// for, else why it cannot be made (and nothing changes).
    /// </summary>
    string? RequestSwitchover();

    /// <summary>The state directory, domains, checkpoint store and durable log; the newest checkpoint.</summary>
    Task<VerifiedCheckpoint?> OpenStateAsync(CancellationToken cancellationToken);

    /// <summary>Creates and starts the group with this policy on a log ordered here, from <paramref name="restored"/>.</summary>
    Task<ReplicaGroup> StartGroupAsync(IGroupPolicy policy, VerifiedCheckpoint? restored, CancellationToken cancellationToken);

    /// <summary>
    /// Readies a standby for the takeover. Opens an admin endpoint of its own (a standby's) at once, if given. The rest
    /// runs in the background, so that a takeover never waits for it: without an endpoint of its own, the configured one
    /// is readied (opened now when it is free, the standby having a host of its own; else its web stack is started once
    /// on a loopback port and stopped), and requests run through a gateway of the service's protocol on a loopback port
    /// (<see cref="Gateway.GatewayWarmUp"/>; stopped when the host serves). So the cold starts do not compete with the
    /// first clients after the takeover.
    /// </summary>
    Task PrepareTakeoverAsync(IPEndPoint? admin, CancellationToken cancellationToken);

    /// <summary>Completes (never faulted) when the background part of <see cref="PrepareTakeoverAsync"/> has ended.</summary>
    Task TakeoverPrepared { get; }

    /// <summary>Opens the client listener and the configured admin endpoint (one that cannot listen is left out).</summary>
    Task ServeAsync(long lastSession, CancellationToken cancellationToken);
}
