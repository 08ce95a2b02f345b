namespace Resh.Diagnostics;

/// <summary>A named event, Sentinel style: "+replica-suspected", "+replica-recovered", "+disagreement".</summary>
public sealed record ReshEvent(long Id, DateTimeOffset Time, string Name, string? Replica, string Detail);

/// <summary>The recent named events, newest last, bounded.</summary>
public sealed class EventJournal(int capacity = 1000, TimeProvider? clock = null)
{
    private readonly Queue<ReshEvent> _events = new();
    private readonly Lock _lock = new();
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _nextId;

    public ReshEvent Record(string name, string? replica, string detail)
    {
        ReshEvent e;
        lock (_lock)
        {
            e = new ReshEvent(++_nextId, _clock.GetUtcNow(), name, replica, detail);
            _events.Enqueue(e);
            while (_events.Count > capacity)
            {
                _events.Dequeue();
            }
        }

        return e;
    }

    /// <summary>Events with an id greater than <paramref name="afterId"/>, oldest first.</summary>
    public IReadOnlyList<ReshEvent> Since(long afterId = 0)
    {
        lock (_lock)
        {
            return [.. _events.Where(e => e.Id > afterId)];
        }
    }
}
