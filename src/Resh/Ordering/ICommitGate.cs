namespace Resh.Ordering;

/// <summary>
/// Output commit: something a decided reply waits for before it reaches the client. The ordered log on disk
/// (fsync always) is one: a reply waits until its request is on disk. A Remus backup link is another: a reply
/// waits until the backup acknowledged the epoch that holds its request.
/// </summary>
public interface ICommitGate
{
    /// <summary>Entries below this sequence number are committed; <see cref="long.MaxValue"/> when the gate holds nothing back.</summary>
    long CommittedCount { get; }

    /// <summary>Raised (on any thread) when <see cref="CommittedCount"/> grew, with the new count.</summary>
    event Action<long>? Committed;
}
