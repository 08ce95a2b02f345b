using System.Threading.Tasks.Sources;

namespace Resh.Ordering;

/// <summary>
/// A wake-up for one waiter, set by any number of threads: a set while nobody waits is kept for the next wait (several
/// sets count as one). The setter chooses where the waiter goes on: on the setter's own thread (<c>inline</c>: no
/// hand-off, the waiter runs up to its next wait before <see cref="Set"/> returns) or on the thread pool. One
/// allocation-free <see cref="IValueTaskSource"/> reused for every wait.
/// </summary>
public sealed class WakeSignal : IValueTaskSource
{
    private readonly Lock _lock = new();
    private ManualResetValueTaskSourceCore<bool> _core;
    private CancellationTokenRegistration _registration;
    private bool _set;
    private bool _waiting;

    /// <summary>Completes at the next <see cref="Set"/> (at once if one came since the last wait). One waiter at a time.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            if (_waiting)
            {
                throw new InvalidOperationException("a wake signal has one waiter at a time");
            }

            if (_set)
            {
                _set = false;
                return ValueTask.CompletedTask;
            }

            _core.Reset();
            _waiting = true;
        }

        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (state, token) => ((WakeSignal)state!).Cancel(token), this);
        }

        return new ValueTask(this, _core.Version);
    }

    /// <summary>Wakes the waiter, on this thread when <paramref name="inline"/>, else on the thread pool; remembered when nobody waits.</summary>
    public void Set(bool inline)
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                _set = true;
                return;
            }

            _waiting = false;
        }

        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(true);
    }

    private void Cancel(CancellationToken token)
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                return;
            }

            _waiting = false;
        }

        _core.RunContinuationsAsynchronously = true;
        _core.SetException(new OperationCanceledException(token));
    }

    void IValueTaskSource.GetResult(short token)
    {
        // Disposing the registration waits for a cancellation callback that is running; that callback completes the
        // source itself, so it has finished by the time GetResult can run.
        _registration.Dispose();
        _registration = default;
        _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
