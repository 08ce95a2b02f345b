using System.Diagnostics;
using System.Globalization;
using System.Net;
using Resh.Ordering;
using Resh.Protocols;
using Resh.Replicas;

namespace Resh.Group;

/// <summary>
/// Passive replicas brought up to date by state instead of replay (<see cref="IStateTransfer"/>). The keys the writes
/// since the passive replicas' position changed are collected from the log; one read-only request reading them all is
/// appended (under the log's append lock, so no write slips in between the collection and the read) and voted like any
/// request, which makes its decided reply the state at that position that f+1 replicas agree on. That state is written
/// into each passive replica on a connection of its own, and its applier leaves out every entry up to the read. What
/// follows (a digest probe, new writes) is replayed as before. By how much it costs, measured on earlier updates, an
/// update chooses replay or state (<see cref="PassiveUpdateMethod.Auto"/>).
/// </summary>
public sealed partial class ReplicaGroup
{
    /// <summary>More keys than this in one update: replay (the read is one log entry, and held in memory).</summary>
    private const int MaxStateKeys = 100_000;

    /// <summary>Below this many units an update's duration says more about its fixed cost than about the unit's.</summary>
    private const int MinUnitsToMeasure = 100;

    /// <summary>The fixed cost of a state update beyond its keys (appending and voting the read, a connection per replica).</summary>
    private static readonly TimeSpan StateFixedCost = TimeSpan.FromMilliseconds(2);

    private readonly Lock _costLock = new();
    private double _replayMicrosPerEntry = 5;
    private double _stateMicrosPerKey = 50;
    private string? _stateUnavailable;
    private long _stateUpdates;

    /// <summary>Passive updates done by state transfer so far.</summary>
    public long StateUpdates => Interlocked.Read(ref _stateUpdates);

    /// <summary>The state at one log position, read and voted, ready to be written into passive replicas.</summary>
    private sealed record StateSnapshot(long Sequence, StateWrite Write, int Keys, TimeSpan ReadTime);

    /// <summary>
    /// Reads the state that the writes from <paramref name="from"/> on changed, when the method (or, for Auto, the
    /// measured cost) says so; null means replay: the protocol cannot, the stretch has a write it cannot name, it is
    /// too large, replay is cheaper, or the read was not decided.
    /// </summary>
    private async Task<StateSnapshot?> ReadStateAsync(long from, PassiveUpdateMethod method, CancellationToken ct)
    {
        if (method == PassiveUpdateMethod.Replay || _protocol.StateTransfer is not { } transfer || _sequencer is not LocalSequencer
            || Volatile.Read(ref _stateUnavailable) is not null)
        {
            return null;
        }

        var started = Stopwatch.GetTimestamp();
        var changes = transfer.NewChanges();
        var named = true;
        bool Collect(long first, long end) =>
            VisitWrites(first, end, entry => named = changes.Add(entry.Context, entry.Payload.Span) && changes.Count <= MaxStateKeys) == end && named;

        var scanned = _log.Count;
        var why = from < _log.First ? "entries before it are no longer held"
            : !Collect(from, scanned) ? (changes.Count > MaxStateKeys ? $"more than {MaxStateKeys} keys changed" : "a write there changes more than keys it names")
            : changes.Count == 0 ? "no key changed" : null;
        if (why is not null)
        {
            GroupLog.PassiveUpdateByReplay(_logger, from, scanned - 1, why);
            return null;
        }

        if (method == PassiveUpdateMethod.Auto)
        {
            double perEntry, perKey;
            lock (_costLock)
            {
                (perEntry, perKey) = (_replayMicrosPerEntry, _stateMicrosPerKey);
            }

            if ((StateFixedCost.TotalMicroseconds + (changes.Count * perKey)) >= (scanned - from) * perEntry)
            {
                GroupLog.PassiveUpdateByReplay(_logger, from, scanned - 1, string.Create(CultureInfo.InvariantCulture, $"{changes.Count} keys at {perKey:0.#} µs cost more than {scanned - from} entries at {perEntry:0.#} µs"));
                return null;
            }
        }

        var sink = new StateReadSink();
        var sequence = _log.Append(at =>
        {
            // Under the append lock: the writes appended since the scan join the read, or the update replays.
            if (!Collect(scanned, at))
            {
                return null;
            }

            var read = changes.Read();
            return new LogEntry(LogEventKind.Request, 0, 0, read.Payload, read.ReplyCount, origin: sink, replyHint: read.ReplyHint) { ReadOnly = true };
        });
        if (sequence < 0)
        {
            GroupLog.PassiveUpdateByReplay(_logger, from, scanned - 1, "a write appended meanwhile changes more than keys it names");
            return null;
        }

        byte[] reply;
        try
        {
            reply = await sink.Reply.WaitAsync(2 * _options.ReplyTimeout, _clock, ct);
        }
        catch (TimeoutException)
        {
            GroupLog.PassiveUpdateFailed(_logger, $"the state read #{sequence} was not decided within {2 * _options.ReplyTimeout.TotalSeconds:0.#}s; the passive replicas replay instead");
            return null;
        }

        if (_protocol.IsErrorReply(reply))
        {
            GroupLog.PassiveUpdateFailed(_logger, $"the state read #{sequence} was not decided ({System.Text.Encoding.UTF8.GetString(reply).Trim()}); the passive replicas replay instead");
            return null;
        }

        try
        {
            return new StateSnapshot(sequence, changes.Write(reply), changes.Count, Stopwatch.GetElapsedTime(started));
        }
        catch (InvalidDataException e)
        {
            // The replicas agree, but refuse to read their state this way (a service without DUMP): replay from now on.
            if (Interlocked.CompareExchange(ref _stateUnavailable, e.Message, null) is null)
            {
                _events.Record("+state-transfer-unavailable", null, $"{e.Message}; passive replicas are brought up to date by replay from now on");
            }

            return null;
        }
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for each write (a request that is not read-only) logged in [<paramref name="from"/>,
    /// <paramref name="end"/>), in order, until it returns false. Returns the position after the last entry looked at
    /// (<paramref name="end"/> when the range was gone through), or -1 when the log no longer holds part of the range.
    /// </summary>
    private long VisitWrites(long from, long end, Func<LogEntry, bool> visit)
    {
        var batch = new LogEntry[512];
        try
        {
            for (var at = from; at < end;)
            {
                var n = _log.Read(at, batch.AsSpan(0, (int)Math.Min(batch.Length, end - at)));
                if (n == 0)
                {
                    return -1;
                }

                for (var i = 0; i < n; i++)
                {
                    var entry = batch[i];
                    if (entry.Kind == LogEventKind.Request && !entry.ReadOnly && !visit(entry))
                    {
                        return at + i + 1;
                    }
                }

                at += n;
            }

            return end;
        }
        finally
        {
            Array.Clear(batch);
        }
    }

    /// <summary>Writes <paramref name="state"/> into a thawed passive replica and has its applier leave out the entries it covers.</summary>
    private async Task WriteStateAsync(Replica replica, ReplicaApplier applier, StateSnapshot state, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.StartupTimeout);
        using var client = await WireClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, replica.Port), _protocol.CreateReplyFramer(), timeout.Token);
        var replies = await client.PipelineAsync(state.Write.Payload, state.Write.ReplyCount, timeout.Token);
        if (replies.FirstOrDefault(r => _protocol.IsErrorReply(r)) is { } refused)
        {
            throw new InvalidDataException($"it refused the state of #{state.Sequence}: {System.Text.Encoding.UTF8.GetString(refused).Trim()}");
        }

        applier.SkipThrough(state.Sequence);
    }

    /// <summary>
    /// Learns from one update's wall time what a replayed entry, or a transferred key, costs: what
    /// <see cref="PassiveUpdateMethod.Auto"/> chooses by (moving averages; updates too small to say are left out).
    /// </summary>
    private void MeasureUpdate(StateSnapshot? state, long entries, TimeSpan elapsed)
    {
        lock (_costLock)
        {
            if (state is not null && state.Keys >= MinUnitsToMeasure)
            {
                _stateMicrosPerKey = (0.7 * _stateMicrosPerKey) + (0.3 * (elapsed + state.ReadTime - StateFixedCost).TotalMicroseconds / state.Keys);
            }
            else if (state is null && entries >= MinUnitsToMeasure)
            {
                _replayMicrosPerEntry = (0.7 * _replayMicrosPerEntry) + (0.3 * elapsed.TotalMicroseconds / entries);
            }
        }
    }

    /// <summary>Receives the decided reply of a state read.</summary>
    private sealed class StateReadSink : IReplySink
    {
        private readonly TaskCompletionSource<byte[]> _reply = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<byte[]> Reply => _reply.Task;

        public void Complete(ReadOnlyMemory<byte> reply) => _reply.TrySetResult(reply.ToArray());
    }
}
