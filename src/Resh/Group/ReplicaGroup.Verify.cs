using Resh.Ordering;

namespace Resh.Group;

/// <summary>
/// Verification between checkpoints (group option <c>verify-every</c>). The pieces of state (RESP: keys) that the
/// writes since the last round changed, read from the log through the protocol's <see cref="Protocols.IStateTransfer"/>,
/// are read on every voting replica by one read-only request appended to the log and voted like any request; the
/// replies are compared by content (RESP: each DUMP by the digest of the value it holds, so equal data encoded
/// differently compares equal). A replica whose state of such a key differs from the others' answers differently, is
/// outvoted and is suspected and rebuilt as for any wrong reply. Without this, a write that a replica applied wrongly
/// but answered like the others (an HSET's count, a SET's OK) is found only by the next checkpoint's digest, or never
/// where no checkpoints are taken. Writes whose effect the keys they name do not cover (a client's script, FLUSHDB,
/// CONFIG SET) are left to the checkpoints. A round compares at most <see cref="MaxVerifyKeys"/> keys and the next
/// one goes on from where it stopped; keys the log no longer holds (a checkpoint covered them) are not compared.
/// </summary>
public sealed partial class ReplicaGroup
{
    /// <summary>Keys compared by one round at most (one log entry, held in memory with its replies).</summary>
    internal const int MaxVerifyKeys = 10_000;

    private long _verifyFrom = -1;
    private long _verifiedKeys;
    private string? _verifyUnavailable;
    private Task _verifier = Task.CompletedTask;

    /// <summary>Keys compared across the replicas between checkpoints so far.</summary>
    public long VerifiedKeys => Interlocked.Read(ref _verifiedKeys);

    private void StartVerifier()
    {
        Volatile.Write(ref _verifyFrom, _log.Count);
        if (_options.VerifyEvery > TimeSpan.Zero && _protocol.StateTransfer is not null && _sequencer is LocalSequencer)
        {
            _verifier = Task.Run(() => VerifyLoopAsync(_stopping.Token), CancellationToken.None);
        }
    }

    private async Task VerifyLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.VerifyEvery, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await VerifyChangedStateAsync(ct);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or InvalidDataException)
                {
                    // The log cannot take the read now (a full disk): its keys are left to the next checkpoint, like an undecided one.
                    GroupLog.VerifyNotDecided(_logger, -1, 0, $"was not appended ({e.Message})");
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// One round: compares the keys changed since the last round across the voting replicas. Returns how many keys
    /// the decided read covered (0: nothing changed, the group cannot compare now, or the read was not decided).
    /// </summary>
    internal async Task<int> VerifyChangedStateAsync(CancellationToken ct)
    {
        if (_protocol.StateTransfer is not { } transfer || _sequencer is not LocalSequencer || !_policy.Serving
            || Volatile.Read(ref _verifyUnavailable) is not null)
        {
            return 0;
        }

        lock (_lock)
        {
            // One voter (mode remus, f = 0) has nobody to be compared with; a group short of a quorum decides nothing.
            if (_voter.Quorum < 2 || _voter.VoterCount < _voter.Quorum)
            {
                return 0;
            }
        }

        var changes = transfer.NewChanges();
        var end = _log.Count;
        var at = VisitWrites(Math.Max(Volatile.Read(ref _verifyFrom), _log.First), end, entry =>
        {
            // False: a write whose effect its keys do not cover; what it named so far is compared, the rest is the checkpoints'.
            _ = changes.Add(entry.Context, entry.Payload.Span);
            return changes.Count < MaxVerifyKeys;
        });

        if (at < 0)
        {
            // A checkpoint truncated the log meanwhile (what it covered is its own to verify): the next round starts
            // again from the first entry still held.
            return 0;
        }

        Volatile.Write(ref _verifyFrom, at);
        if (changes.Count == 0)
        {
            return 0;
        }

        var read = changes.Read();
        var sink = new StateReadSink();
        var sequence = _log.Append(new LogEntry(LogEventKind.Request, 0, 0, read.Payload, read.ReplyCount, origin: sink, replyHint: read.ReplyHint) { ReadOnly = true });
        byte[] reply;
        try
        {
            reply = await sink.Reply.WaitAsync(2 * _options.ReplyTimeout, _clock, ct);
        }
        catch (TimeoutException)
        {
            GroupLog.VerifyNotDecided(_logger, sequence, changes.Count, $"not decided within {2 * _options.ReplyTimeout.TotalSeconds:0.#}s");
            return 0;
        }

        if (_protocol.IsErrorReply(reply))
        {
            // The replicas agree on refusing the read (a service without DUMP): nothing to compare this way, ever.
            var why = System.Text.Encoding.UTF8.GetString(reply).Trim();
            if (Interlocked.CompareExchange(ref _verifyUnavailable, why, null) is null)
            {
                _events.Record("+verify-unavailable", null, $"the replicas refused to read their state by keys ({why}); changed keys are compared at checkpoints only from now on");
            }

            return 0;
        }

        Interlocked.Add(ref _verifiedKeys, changes.Count);
        GroupLog.Verified(_logger, sequence, changes.Count, at - 1);
        _metrics.VerifiedKeys(changes.Count);
        return changes.Count;
    }
}
