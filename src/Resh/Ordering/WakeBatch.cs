namespace Resh.Ordering;

/// <summary>Something to wake once a thread's <see cref="WakeBatch"/> ends (a client's reply writer, a replica's log writer).</summary>
public interface IDeferredWake
{
    void Wake();
}

/// <summary>
/// A thread's batch of wake-ups, for the work one read brings in. While a replica's reader decides the replies of one
/// read (many of them under pipelining), a client's reply writer is woken once at the end of that read, so the replies
/// leave in one send; while a client's reader appends the requests of one read, each replica's log writer is woken once
/// at its end, so they go to each replica in one send. Both without a hand-off per item. Outside a batch a wake happens
/// at once. A batch is per thread, so it must never span an await that may go on elsewhere: close it before one.
/// </summary>
public static class WakeBatch
{
    [ThreadStatic]
    private static List<IDeferredWake>? t_wakes;

    [ThreadStatic]
    private static bool t_open;

    /// <summary>True while this thread has a batch open: <see cref="Defer"/> is then allowed.</summary>
    public static bool IsOpen => t_open;

    [ThreadStatic]
    private static bool t_inline;

    [ThreadStatic]
    private static bool t_endingInline;

    /// <summary>
    /// True while the deferred wakes of a batch opened with <c>inline</c> run: a log writer woken now runs on this
    /// thread whatever its backlog, since the batch already gathered everything there is to send.
    /// </summary>
    public static bool EndingInline => t_endingInline;

    /// <summary>
    /// Opens a batch on this thread; disposing the scope runs the deferred wakes. Nested scopes are no-ops. With
    /// <paramref name="inline"/> (a thread that reads many clients per turn) the wakes ask to run on this thread.
    /// </summary>
    public static Scope Open(bool inline = false)
    {
        if (t_open)
        {
            return default;
        }

        t_open = true;
        t_inline = inline;
        return new Scope(owner: true);
    }

    /// <summary>Wakes <paramref name="wake"/> when this thread's batch ends; call only while <see cref="IsOpen"/>.</summary>
    public static void Defer(IDeferredWake wake)
    {
        if (!t_open)
        {
            throw new InvalidOperationException("no wake batch is open on this thread");
        }

        (t_wakes ??= []).Add(wake);
    }

    private static void End()
    {
        t_open = false;
        var wakes = t_wakes;
        if (wakes is null || wakes.Count == 0)
        {
            return;
        }

        // A wake runs a writer inline, which may in turn open a batch on this thread: it gets a list of its own.
        t_wakes = null;
        t_endingInline = t_inline;
        try
        {
            foreach (var wake in wakes)
            {
                wake.Wake();
            }
        }
        finally
        {
            t_endingInline = false;
            wakes.Clear();
            t_wakes ??= wakes;
        }
    }

    public readonly struct Scope : IDisposable
    {
        private readonly bool _owner;

        internal Scope(bool owner) => _owner = owner;

        public void Dispose()
        {
            if (_owner)
            {
                End();
            }
        }
    }
}
