using System.Runtime.CompilerServices;

namespace Resh.Memory;

/// <summary>One record of the ordered log, at its position (positions grow; they need not be consecutive).</summary>
public readonly record struct LogRecord(long Position, byte[] Bytes);

/// <summary>
/// The total order the memory is built on: every node appends its records and reads everybody's in one order. On one
/// host an in-process log does (<see cref="InMemoryCommitLog"/>); across processes and hosts etcd does
/// (<see cref="EtcdCommitLog"/>). A contract suite runs against both.
/// </summary>
public interface ICommitLog : IAsyncDisposable
{
    /// <summary>Appends a record; completes with its position once it is in the order.</summary>
    /// <exception cref="LogUnavailableException">The log is unreachable: the record may or may not be in it.</exception>
    Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken);

    /// <summary>Every record after <paramref name="after"/>, in order, waiting for new ones until canceled.</summary>
    /// <exception cref="LogTruncatedException">The log no longer holds the records right after <paramref name="after"/>.</exception>
    IAsyncEnumerable<LogRecord> ReadAsync(long after, CancellationToken cancellationToken);

    /// <summary>The position of the newest record now (0 when there is none).</summary>
    Task<long> HeadAsync(CancellationToken cancellationToken);

    /// <summary>Lets go of the records at or before <paramref name="upTo"/> (a snapshot holds their effect).</summary>
    Task TruncateAsync(long upTo, CancellationToken cancellationToken);
}

/// <summary>The log could not be reached, or did not answer in time; an append may or may not have happened.</summary>
public sealed class LogUnavailableException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>The log was truncated past the position a reader needs: it must start again from a snapshot.</summary>
public sealed class LogTruncatedException(long wanted, long truncatedTo)
    : InvalidOperationException($"the memory's log no longer holds position {wanted}: it was truncated up to {truncatedTo}; restart from a snapshot at or after it")
{
    public long Wanted { get; } = wanted;

    public long TruncatedTo { get; } = truncatedTo;
}

/// <summary>The ordered log of nodes in one process: positions 1, 2, 3, ... in the order of appends.</summary>
public sealed class InMemoryCommitLog : ICommitLog
{
    private readonly Lock _sync = new();
    private readonly List<byte[]> _records = [];
    private long _first = 1;
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        TaskCompletionSource woken;
        long position;
        lock (_sync)
        {
            _records.Add(record);
            position = _first + _records.Count - 1;
            woken = _appended;
            _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        woken.SetResult();
        return Task.FromResult(position);
    }

    public async IAsyncEnumerable<LogRecord> ReadAsync(long after, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var next = after + 1;
        var batch = new List<LogRecord>();
        while (true)
        {
            Task wait;
            lock (_sync)
            {
                if (next < _first)
                {
                    throw new LogTruncatedException(next, _first - 1);
                }

                for (var p = next; p < _first + _records.Count; p++)
                {
                    batch.Add(new LogRecord(p, _records[(int)(p - _first)]));
                }

                wait = _appended.Task;
            }

            foreach (var record in batch)
            {
                yield return record;
                next = record.Position + 1;
            }

            if (batch.Count == 0)
            {
                await wait.WaitAsync(cancellationToken);
            }

            batch.Clear();
        }
    }

    public Task<long> HeadAsync(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            return Task.FromResult(_first + _records.Count - 1);
        }
    }

    public Task TruncateAsync(long upTo, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            var drop = (int)Math.Clamp(upTo - _first + 1, 0, _records.Count);
            _records.RemoveRange(0, drop);
            _first += drop;
        }

        return Task.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
