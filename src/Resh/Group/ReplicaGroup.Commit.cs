using System.Diagnostics;
using Resh.Ordering;

namespace Resh.Group;

/// <summary>Output commit: a decided reply is released once every gate (the durable log, a Remus backup) holds its request.</summary>
public sealed partial class ReplicaGroup
{
    /// <summary>
    /// Adds an output-commit gate: from now on a decided reply is released only once its request is below the
    /// gate's committed count (the ordered log on disk with fsync always, a Remus backup's acknowledgement).
    /// </summary>
    public void AddCommitGate(ICommitGate gate)
    {
        ArgumentNullException.ThrowIfNull(gate);
        lock (_commitLock)
        {
            _gates.Add(gate);
        }

        gate.Committed += OnCommitted;
    }

    /// <summary>Replies held back for output commit (decided, waiting for a gate).</summary>
    public int HeldReplies
    {
        get
        {
            lock (_commitLock)
            {
                return _awaitingCommit.Count;
            }
        }
    }

    /// <summary>The lowest committed count of all gates. Call under the commit lock.</summary>
    private long CommittedCount()
    {
        var count = long.MaxValue;
        foreach (var gate in _gates)
        {
            count = Math.Min(count, gate.CommittedCount);
        }

        return count;
    }

    /// <summary>
    /// Releases a decided reply to its session, once every output-commit gate has committed its request.
    /// </summary>
    private void Complete(LogEntry entry, ReadOnlyMemory<byte> reply)
    {
        if (entry.Origin is null)
        {
            return;
        }

        if (_gates.Count > 0)
        {
            lock (_commitLock)
            {
                if (entry.Sequence >= CommittedCount())
                {
                    _awaitingCommit.Enqueue((entry, reply, Stopwatch.GetTimestamp()), entry.Sequence);
                    return;
                }
            }
        }

        CompleteNow(entry, reply);
    }

    private void OnCommitted(long count)
    {
        List<(LogEntry Entry, ReadOnlyMemory<byte> Reply, long Held)>? ready = null;
        lock (_commitLock)
        {
            var committed = CommittedCount();
            while (_awaitingCommit.TryPeek(out var item, out var seq) && seq < committed)
            {
                _awaitingCommit.Dequeue();
                (ready ??= []).Add(item);
            }
        }

        foreach (var (entry, reply, held) in ready ?? [])
        {
            _metrics.CommitDelay(Stopwatch.GetElapsedTime(held));
            CompleteNow(entry, reply);
        }
    }

    private static void CompleteNow(LogEntry entry, ReadOnlyMemory<byte> reply)
    {
        var origin = entry.Origin;
        if (origin is not null)
        {
            entry.Origin = null;
            origin.Complete(reply);
        }
    }
}
