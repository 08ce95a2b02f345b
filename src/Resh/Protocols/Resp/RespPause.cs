namespace Resh.Protocols.Resp;

/// <summary>
/// CLIENT PAUSE of this gateway: until a deadline on the gateway's clock (or CLIENT UNPAUSE), sessions hold their
/// requests before submitting them, all of them or all but read-only ones. A later pause extends the deadline and
/// WRITE never narrows an ALL pause in effect, as in Redis. Local to the gateway: with D-RESH, other gateways'
/// clients go on.
/// </summary>
internal sealed class RespPause(TimeProvider clock)
{
    private readonly Lock _lock = new();
    private DateTimeOffset _until = DateTimeOffset.MinValue;
    private bool _all;
    private TaskCompletionSource _ended = NewSignal();
    private volatile bool _active;

    public void Start(DateTimeOffset until, bool all)
    {
        lock (_lock)
        {
            var active = _until > clock.GetUtcNow();
            _all = all || (active && _all);
            if (!active || until > _until)
            {
                _until = until;
            }

            _active = true;
        }
    }

    public void End()
    {
        TaskCompletionSource ended;
        lock (_lock)
        {
            _until = DateTimeOffset.MinValue;
            _active = false;
            ended = _ended;
            _ended = NewSignal();
        }

        ended.TrySetResult();
    }

    /// <summary>Whether a pause was started and not yet seen to end (one volatile read: the request path asks it first).</summary>
    public bool Active => _active;

    /// <summary>A task that completes when a request of this kind may go on, or null when it may now.</summary>
    public Task? Holding(bool readOnly)
    {
        if (!_active)
        {
            // The request path: no lock and no clock read unless a pause was started.
            return null;
        }

        lock (_lock)
        {
            if (_until <= clock.GetUtcNow())
            {
                _active = false;
                return null;
            }

            if (readOnly && !_all)
            {
                return null;
            }
        }

        return WaitAsync(readOnly);
    }

    private async Task WaitAsync(bool readOnly)
    {
        while (true)
        {
            DateTimeOffset until;
            Task ended;
            lock (_lock)
            {
                until = _until;
                ended = _ended.Task;
                if (until <= clock.GetUtcNow() || (readOnly && !_all))
                {
                    return;
                }
            }

            var wait = until - clock.GetUtcNow();
            wait = wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : wait;
            using var timer = new CancellationTokenSource();
            var delay = Task.Delay(wait, clock, timer.Token);
            await Task.WhenAny(ended, delay).ConfigureAwait(false);

            // An UNPAUSE ends the wait: its timer must not outlive it.
            await timer.CancelAsync().ConfigureAwait(false);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
