using Resh.Admin;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Hosting;

/// <summary>
/// What a mode adds to a running gateway beside its group policy: where the log's order comes from, what it attaches
/// to the group, what it does once clients are served, what /status shows of it, and how it stops. The host picks one
/// (<see cref="ModeHostings.For"/>) and calls it at fixed points; it names no mode itself.
/// </summary>
internal interface IModeHosting : IAsyncDisposable
{
    /// <summary>The label a stored checkpoint must carry for this mode to go on from it (D-RESH: the etcd cursor), or null.</summary>
    string? CheckpointLabel { get; }

    /// <summary>True when this gateway must not serve or release anything any more (a Remus primary fenced by a newer term).</summary>
    bool Fenced { get; }

    /// <summary>
    /// The sequencer of the log, started; the checkpoint the replicas start from (the mode may replace it, D-RESH with a
    /// peer's) and the highest session id seen. <paramref name="label"/> is the restored checkpoint's <see cref="CheckpointLabel"/>.
    /// </summary>
    Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken);

    /// <summary>The group exists and has not started: commit gates, checkpoint hooks.</summary>
    void Attach(ReplicaGroup group);

    /// <summary>Clients are served.</summary>
    Task ServingAsync(CancellationToken cancellationToken);

    /// <summary>/status with what the mode shows beside the group.</summary>
    ReshStatus Describe(ReshStatus status);

    /// <summary>A controlled stop, after the clients were drained and before the group stops.</summary>
    Task StoppingAsync();
}

/// <summary>The one place the host picks what a mode adds (the group's policy is picked by <c>ModePolicies</c>).</summary>
internal static class ModeHostings
{
    public static IModeHosting For(ReshHost host, ReshOptions options) => options switch
    {
        { Ordering: { } etcd } => new DreshHosting(host, etcd),
        { Replication.Mode: Modes.ReplicationMode.Remus } => new RemusHosting(host),
        _ => new LocalHosting(host.Log),
    };
}

/// <summary>Modes resh and spare on one host: the log is ordered here, and nothing else is added.</summary>
internal sealed class LocalHosting(OrderedLog log) : IModeHosting
{
    public string? CheckpointLabel => null;

    public bool Fenced => false;

    public Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken) =>
        Task.FromResult<(ISequencer, VerifiedCheckpoint?, long)>((new LocalSequencer(log), restored, lastSession));

    public void Attach(ReplicaGroup group)
    {
    }

    public Task ServingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public ReshStatus Describe(ReshStatus status) => status;

    public Task StoppingAsync() => Task.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
