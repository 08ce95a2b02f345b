namespace Resh.SampleKv.Engine;

/// <summary>The state one connection carries between requests.</summary>
internal sealed class ClientSession
{
    private readonly List<QueuedCommand> _queue = [];

    /// <summary>The selected database (SELECT).</summary>
    public int Database { get; set; }

    /// <summary>The protocol version replies are written in: 2 or 3 (HELLO).</summary>
    public int Protocol { get; set; } = 2;

    /// <summary>Whether MULTI has been called and EXEC/DISCARD not yet.</summary>
    public bool InTransaction { get; private set; }

    /// <summary>Whether a command was rejected while queuing, so EXEC must abort.</summary>
    public bool TransactionFailed { get; set; }

    /// <summary>The commands queued since MULTI.</summary>
    public IReadOnlyList<QueuedCommand> Queue => _queue;

    public void BeginTransaction() => InTransaction = true;

    public void Enqueue(QueuedCommand command) => _queue.Add(command);

    /// <summary>Leaves the transaction and hands back what was queued.</summary>
    public QueuedCommand[] EndTransaction()
    {
        QueuedCommand[] queued = [.. _queue];
        _queue.Clear();
        InTransaction = false;
        TransactionFailed = false;
        return queued;
    }
}

/// <summary>A command accepted between MULTI and EXEC.</summary>
internal sealed record QueuedCommand(CommandSpec Spec, byte[][] Args);
