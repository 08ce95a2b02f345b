using Resh.Checkpoints;

namespace Resh.Group;

/// <summary>A checkpoint that f+1 replicas agreed on and that is committed to the store.</summary>
public sealed record VerifiedCheckpoint(long Sequence, string SnapshotId, DateTimeOffset Time)
{
    /// <summary>The labels stored with it (its sequence, the protocol's state that its files do not hold, ...); null when unknown.</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>The stored snapshot with the highest checkpoint position (and, if asked for, the label <paramref name="required"/>), or null.</summary>
    internal static async Task<(SnapshotInfo? Snapshot, long Sequence)> NewestSnapshotAsync(CheckpointStore store, string? required, CancellationToken ct)
    {
        (SnapshotInfo? Snapshot, long Sequence) newest = (null, -1);
        foreach (var snapshot in await store.ListAsync(ct))
        {
            if (snapshot.Labels.TryGetValue(ReplicaGroup.SequenceLabel, out var text)
                && long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seq)
                && seq > newest.Sequence
                && (required is null || snapshot.Labels.ContainsKey(required)))
            {
                newest = (snapshot, seq);
            }
        }

        return newest;
    }
}
