using Resh.Group;

namespace Resh.Dresh;

/// <summary>
/// D-RESH's part in checkpoints: each carries where in etcd's log it stands (its cursor), only the host whose turn it
/// is schedules them (every host shares the log and so every checkpoint entry), and a stored one lets etcd's log
/// before its cursor be trimmed, once its digest is recorded for hosts that will take it from a peer.
/// </summary>
internal sealed class EtcdCheckpointHooks(EtcdSequencer sequencer) : ICheckpointHooks
{
    public IReadOnlyDictionary<string, string>? Labels(long sequence) =>
        sequencer.CursorFor(sequence) is { } cursor ? new Dictionary<string, string> { [EtcdCursor.Label] = cursor } : null;

    public bool SchedulesCheckpoints => sequencer.SchedulesCheckpoints;

    public void Stored(VerifiedCheckpoint checkpoint, IReadOnlyDictionary<string, string> labels)
    {
        if (labels.TryGetValue(EtcdCursor.Label, out var cursor))
        {
            _ = sequencer.CheckpointStoredAsync(EtcdCursor.Parse(cursor), checkpoint.Sequence, labels.GetValueOrDefault(ReplicaGroup.DigestLabel), CancellationToken.None);
        }
    }
}
