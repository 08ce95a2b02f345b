namespace Resh.Modes;

/// <summary>A checkpoint that f+1 replicas agreed on and that is committed to the store.</summary>
public sealed record VerifiedCheckpoint(long Sequence, string SnapshotId, DateTimeOffset Time)
{
    /// <summary>The labels stored with it (its sequence, the protocol's state that its files do not hold, ...); null when unknown.</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
}
