namespace Resh.Ordering;

/// <summary>
/// Gives events their place in the total order. Whatever the implementation (a local counter, etcd),
/// a submitted event ends up appended to the local <see cref="OrderedLog"/> exactly once, with its
/// <see cref="LogEntry.Origin"/> intact, and every gateway sharing the order appends the same sequence.
/// </summary>
public interface ISequencer : IAsyncDisposable
{
    /// <summary>The log this sequencer appends to.</summary>
    OrderedLog Log { get; }

    /// <summary>
    /// Submits an event. Events of one session are appended in submission order. Completes when the entry
    /// is in the local log, with its sequence number.
    /// </summary>
    ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default);
}

/// <summary>Single-host ordering: the order of submission is the order of the log.</summary>
public sealed class LocalSequencer(OrderedLog log) : ISequencer
{
    public OrderedLog Log { get; } = log;

    public ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Log.Append(entry));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
