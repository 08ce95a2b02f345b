using System.Net;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Composition;

/// <summary>
/// What a mode adds to a running gateway beside its group policy: where the log's order comes from, what it attaches
/// to the group, what it does once clients are served, what /status shows of it, how it stops, and (mode remus) a
/// second entry point that stands by for another gateway. The host picks one (<c>ModeHostings.For</c>) and calls it
/// at fixed points; it names no mode itself, and a mode's hosting reaches the host only through <see cref="IModeHost"/>.
/// </summary>
public interface IModeHosting : IAsyncDisposable
{
    /// <summary>The label a stored checkpoint must carry for this mode to go on from it (D-RESH: the etcd cursor), or null.</summary>
    string? CheckpointLabel { get; }

    /// <summary>True when this gateway must not serve or release anything any more (a Remus primary fenced by a newer term).</summary>
    bool Fenced { get; }

    /// <summary>Where a standing-by gateway listens for the one it stands by for (after <see cref="StandByAsync"/> started), or null.</summary>
    IPEndPoint? StandbyEndPoint { get; }

    /// <summary>
    /// The sequencer of the log, started; the checkpoint the replicas start from (the mode may replace it, D-RESH with a
    /// peer's) and the highest session id seen. <paramref name="label"/> is the restored checkpoint's <see cref="CheckpointLabel"/>.
    /// </summary>
    Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken);

    /// <summary>The group exists and has not started: commit gates, checkpoint hooks.</summary>
    void Attach(ReplicaGroup group);

    /// <summary>Clients are served.</summary>
    Task ServingAsync(CancellationToken cancellationToken);

    /// <summary>What /status shows of the mode beside the group, or null.</summary>
    ModeStatus? Describe();

    /// <summary>A controlled stop, after the clients were drained and before the group stops.</summary>
    Task StoppingAsync();

    /// <summary>
    /// The second entry point (mode remus: `resh backup`): stand by for another gateway, listening on <paramref name="listen"/>;
    /// true once this one took over and serves, false when the other stopped in a controlled way.
    /// </summary>
    Task<bool> StandByAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken);

    /// <summary>
    /// `resh receive`: stand by as the target of a migration (a source that falls silent is an error here, not a reason
    /// to take over); true once the source handed the service over and this one serves. Modes resh and spare stand by
    /// that way anyway; mode remus has a backup's standby beside it.
    /// </summary>
    Task<bool> ReceiveAsync(IPEndPoint listen, IPEndPoint? admin, CancellationToken cancellationToken) => StandByAsync(listen, admin, cancellationToken);
}

/// <summary>
/// A mode that can hand its service to another gateway in a planned switchover (mode remus: the primary to its backup).
/// </summary>
public interface IHandover
{
    /// <summary>Why a switchover cannot be made now (no backup up to date, not the primary), or null.</summary>
    string? HandoverProblem { get; }

    /// <summary>The coming controlled stop hands the service over instead of ending it.</summary>
    void HandOverOnStop();

    /// <summary>After the stop: the gateway the service was handed to (HOST:PORT), or null when it was not.</summary>
    string? HandedOverTo { get; }

    /// <summary>
    /// After a handover: true when this host then stands by as the new primary's backup (a Remus switchover), false when
    /// it retires (a migration: the service, and a backup that follows it, are elsewhere now).
    /// </summary>
    bool StandsByAfterHandover => false;

    /// <summary>
    /// How long the handover's drain may wait for pending replies, when shorter than the configured drain-timeout
    /// (a replica that died will not answer the rest: its clients reconnect to the new primary instead); null: as configured.
    /// </summary>
    TimeSpan? HandoverDrain => null;
}

/// <summary>
/// A mode whose service can be moved to another host while it runs (`resh migrate`): the target is brought up to date in
/// pre-copy rounds, then the host stops as in a switchover and the target takes over at the next log position.
/// </summary>
public interface IMigration
{
    /// <summary>Why the service cannot be migrated to <paramref name="target"/> now, or null.</summary>
    string? MigrationProblem(IPEndPoint target);

    /// <summary>
    /// Runs the pre-copy rounds to <paramref name="target"/> and, once they converged, asks the host for the stop-and-copy
    /// (a switchover); returns the rounds. Throws <see cref="InvalidOperationException"/> or <see cref="TimeoutException"/>
    /// when the target cannot be brought up to date; the service then goes on here, untouched.
    /// </summary>
    Task<ModeStatus> MigrateAsync(IPEndPoint target, CancellationToken cancellationToken);
}

/// <summary>What a mode shows in /status beside the group (its own record derives from this).</summary>
public abstract record ModeStatus;
