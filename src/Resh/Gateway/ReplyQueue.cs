using System.Collections.Concurrent;
using Resh.Ordering;

namespace Resh.Gateway;

/// <summary>
/// A session's reply slots in output order, bounded (a session that fills it stops being read), with one reader: the
/// session's writer loop. Who queues decides where the writer goes on: the session's own read loop runs it on its
/// thread (no hand-off); a message pushed from elsewhere (pub/sub, MONITOR, delivered under the log's append lock)
/// wakes it on the thread pool, so no socket write ever happens under that lock. Not disposed: a push may still
/// come from another session after this one ended (it is then refused or dropped), and the semaphore holds no handle.
/// </summary>
internal sealed class ReplyQueue<T>
{
    private readonly ConcurrentQueue<T> _items = new();
    private readonly SemaphoreSlim _space;
    private readonly WakeSignal _signal = new();
    private volatile bool _completed;

    public ReplyQueue(int capacity)
    {
        Capacity = capacity;
        _space = new SemaphoreSlim(capacity, capacity);
    }

    /// <summary>Items that may wait at once (the session's max-pending when it connected).</summary>
    public int Capacity { get; }

    public int Count => _items.Count;

    /// <summary>Queues, waiting for space; the writer goes on on this thread.</summary>
    public async ValueTask EnqueueAsync(T item, CancellationToken cancellationToken)
    {
        if (!_space.Wait(0))
        {
            await _space.WaitAsync(cancellationToken);
        }

        _items.Enqueue(item);
        _signal.Set(inline: true);
    }

    /// <summary>Queues if there is space (false otherwise); the writer goes on on the thread pool.</summary>
    public bool TryEnqueue(T item)
    {
        if (!_space.Wait(0))
        {
            return false;
        }

        _items.Enqueue(item);
        _signal.Set(inline: false);
        return true;
    }

    /// <summary>Nothing more will be queued; the reader drains what is there and stops.</summary>
    public void Complete()
    {
        _completed = true;
        _signal.Set(inline: false);
    }

    /// <summary>For the reader: completes with true when a slot is queued, false once completed and drained.</summary>
    public async ValueTask<bool> WaitToReadAsync()
    {
        while (true)
        {
            if (!_items.IsEmpty)
            {
                return true;
            }

            if (_completed)
            {
                return !_items.IsEmpty;
            }

            await _signal.WaitAsync(CancellationToken.None);
        }
    }

    public bool TryRead(out T item)
    {
        if (!_items.TryDequeue(out item!))
        {
            return false;
        }

        _space.Release();
        return true;
    }
}
