using System.Globalization;
using Etcdserverpb;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Mvccpb;

namespace Resh.Dresh;

/// <summary>
/// Trimming the log in etcd. Batch keys are never rewritten, so without trimming etcd grows until its quota
/// (2 GiB by default) raises the NOSPACE alarm and refuses every put: the cluster would stop. Every member
/// publishes, with its run's lease, the revision its newest stored checkpoint goes on from
/// (/resh/CLUSTER/trim/RUN); after a checkpoint, the member that schedules checkpoints takes the lowest of
/// those over the live runs, deletes the batch keys older than it and compacts etcd's history up to it. A live
/// host that restarts then goes on from its own checkpoint and the log after it; a host that was down at the
/// time takes a peer's checkpoint (see <see cref="EtcdCompactedException"/>), so nothing is trimmed unless
/// every live host serves its checkpoints (ordering.peer-listen).
/// </summary>
public sealed partial class EtcdSequencer
{
    // etcd refuses a txn of more operations than --max-txn-ops (128 by default).
    private const int DeletesPerTxn = 100;

    private readonly SemaphoreSlim _trimming = new(1, 1);
    private long _published;
    private long _trimmedRevision;
    private long _trimmedBatches;
    private int _trimBlocked;

    private string TrimPrefix => Root + "trim/";

    /// <summary>Each host's digest of its stored checkpoints: digests/{position}/{member}, kept for the newest few.</summary>
    private string DigestPrefix => Root + "digests/";

    /// <summary>How many of its own checkpoint digests a host keeps in etcd (older ones are deleted as new ones come).</summary>
    private const int KeptDigests = 4;

    private readonly Queue<string> _digestKeys = new();

    /// <summary>The revision etcd was last trimmed and compacted to by this gateway, and the batch keys it deleted in all.</summary>
    public (long Revision, long Batches) TrimStats => (Interlocked.Read(ref _trimmedRevision), Interlocked.Read(ref _trimmedBatches));

    /// <summary>
    /// A checkpoint at <paramref name="sequence"/> with this cursor is stored: records its <paramref name="digest"/> for
    /// this member (when given), so a host that later takes a peer's checkpoint can check it against what the other hosts
    /// stored (<see cref="CheckpointDigestsAsync"/>); then publishes the revision it goes on from and, on the member that
    /// schedules checkpoints, trims. The record goes first: no host's history is trimmed before its digest is there.
    /// Failures are logged, never thrown: the log just stays longer in etcd.
    /// </summary>
    public Task CheckpointStoredAsync(EtcdCursor cursor, long sequence, string? digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cursor);
        return TrimStepAsync(
            async ct =>
            {
                MemberRun? member;
                lock (_lock)
                {
                    member = _current;
                }

                if (member is null)
                {
                    return;
                }

                if (digest is not null && sequence >= 0)
                {
                    await PublishDigestAsync(member, sequence, digest, ct);
                }

                if (cursor.Revision <= Interlocked.Read(ref _published))
                {
                    return;
                }

                var put = new PutRequest { Key = Utf8(TrimPrefix + member.Run), Value = Utf8(cursor.Revision.ToString(CultureInfo.InvariantCulture)), Lease = member.Lease };
                await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), ct);

                Interlocked.Exchange(ref _published, cursor.Revision);
                if (SchedulesCheckpoints)
                {
                    await TrimAsync(ct);
                }
            },
            cancellationToken);
    }

    /// <summary>
    /// Another run published its checkpoint's revision (seen by the watcher): the member that schedules checkpoints
    /// trims now rather than at its next checkpoint, since the last host to store a checkpoint is often not it.
    /// </summary>
    private void PeerPublished(string run)
    {
        bool own;
        lock (_lock)
        {
            own = _ownRuns.Contains(run);
        }

        if (_options.Trim && !own && SchedulesCheckpoints)
        {
            _ = TrimStepAsync(TrimAsync, CancellationToken.None);
        }
    }

    /// <summary>One step of trimming at a time; failures are logged, never thrown.</summary>
    private async Task TrimStepAsync(Func<CancellationToken, Task> step, CancellationToken cancellationToken)
    {
        if (!_options.Trim)
        {
            return;
        }

        CancellationTokenSource linked;
        try
        {
            // After the sequencer is disposed (a checkpoint stored during shutdown) there is nothing to trim.
            linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        using var _ = linked;
        var ct = linked.Token;
        try
        {
            await _trimming.WaitAsync(ct);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            return;
        }

        try
        {
            await step(ct);
        }
        catch (Exception e) when (e is RpcException or IOException or EtcdAuthException or FormatException or OperationCanceledException or ObjectDisposedException)
        {
            if (!ct.IsCancellationRequested)
            {
                TrimFailed(_logger, Describe(e));
            }
        }
        finally
        {
            _trimming.Release();
        }
    }

    /// <summary>Deletes the batches below the lowest published revision of the live runs and compacts up to it.</summary>
    private async Task TrimAsync(CancellationToken ct)
    {
        var members = await RangeAsync(MembersPrefix, keysOnly: false, maxModRevision: 0, ct);
        var live = members.Select(kv => Key(kv)[MembersPrefix.Length..]).ToHashSet(StringComparer.Ordinal);
        var unserved = members.Where(kv => !ServesCheckpoints(kv)).Select(kv => Key(kv)[MembersPrefix.Length..]).ToList();
        if (unserved.Count > 0)
        {
            // A host that is down while the others trim can only come back with a peer's checkpoint: without
            // ordering.peer-listen on every host there may be none to take, so the log stays.
            if (Interlocked.Exchange(ref _trimBlocked, 1) == 0)
            {
                TrimBlocked(_logger, string.Join(", ", unserved));
            }

            return;
        }

        Interlocked.Exchange(ref _trimBlocked, 0);
        var published = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var kv in await RangeAsync(TrimPrefix, keysOnly: false, maxModRevision: 0, ct))
        {
            published[Key(kv)[TrimPrefix.Length..]] = long.Parse(Text(kv), NumberStyles.None, CultureInfo.InvariantCulture);
        }

        if (live.Count == 0 || live.Any(run => !published.ContainsKey(run)))
        {
            // A live host without a published checkpoint still needs the log from where it started.
            return;
        }

        var upTo = live.Min(run => published[run]);
        if (upTo <= Interlocked.Read(ref _trimmedRevision))
        {
            return;
        }

        var deleted = 0;
        while (true)
        {
            var old = await RangeAsync(LogPrefix, keysOnly: true, maxModRevision: upTo - 1, ct, limit: 1000);
            if (old.Count == 0)
            {
                break;
            }

            foreach (var chunk in old.Chunk(DeletesPerTxn))
            {
                var txn = new TxnRequest { Success = { chunk.Select(kv => new RequestOp { RequestDeleteRange = new DeleteRangeRequest { Key = kv.Key } }) } };
                await _etcd.CallAsync(o => _etcd.Kv.TxnAsync(txn, o), ct);
                deleted += chunk.Length;
            }
        }

        try
        {
            await _etcd.CallAsync(o => _etcd.Kv.CompactAsync(new CompactionRequest { Revision = upTo }, o), ct);
        }
        catch (RpcException e) when (e.Status.Detail.Contains("compacted", StringComparison.Ordinal))
        {
            // "required revision has been compacted": another member or the operator compacted there or further.
        }

        Interlocked.Exchange(ref _trimmedRevision, upTo);
        Interlocked.Add(ref _trimmedBatches, deleted);
        Trimmed(_logger, deleted, upTo, live.Count);
    }

    private async Task PublishDigestAsync(MemberRun member, long sequence, string digest, CancellationToken ct)
    {
        var key = string.Create(CultureInfo.InvariantCulture, $"{DigestPrefix}{sequence:D20}/{_options.Member}");
        var put = new PutRequest { Key = Utf8(key), Value = Utf8(digest), Lease = member.Lease };
        await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), ct);
        _digestKeys.Enqueue(key);
        while (_digestKeys.Count > KeptDigests)
        {
            var delete = new DeleteRangeRequest { Key = Utf8(_digestKeys.Dequeue()) };
            await _etcd.CallAsync(o => _etcd.Kv.DeleteRangeAsync(delete, o), ct);
        }
    }

    /// <summary>The digests the hosts recorded for their checkpoint at <paramref name="sequence"/>, by member number.</summary>
    public async Task<IReadOnlyDictionary<int, string>> CheckpointDigestsAsync(long sequence, CancellationToken cancellationToken)
    {
        var prefix = string.Create(CultureInfo.InvariantCulture, $"{DigestPrefix}{sequence:D20}/");
        var digests = new Dictionary<int, string>();
        foreach (var kv in await RangeAsync(prefix, keysOnly: false, maxModRevision: 0, cancellationToken))
        {
            if (int.TryParse(Key(kv)[prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var member))
            {
                digests[member] = Text(kv);
            }
        }

        return digests;
    }

    private async Task<IReadOnlyList<KeyValue>> RangeAsync(string prefix, bool keysOnly, long maxModRevision, CancellationToken ct, long limit = 0)
    {
        var request = new RangeRequest { Key = Utf8(prefix), RangeEnd = Utf8(PrefixEnd(prefix)), Limit = limit, KeysOnly = keysOnly, MaxModRevision = maxModRevision };
        return (await _etcd.CallAsync(o => _etcd.Kv.RangeAsync(request, o), ct)).Kvs;
    }

    private static bool ServesCheckpoints(KeyValue kv) => ReadMemberInfo(kv.Value)?.Checkpoints is { Length: > 0 };

    private static string Key(KeyValue kv) => kv.Key.ToStringUtf8();

    private static string Text(KeyValue kv) => kv.Value.ToStringUtf8();

    [LoggerMessage(EventId = 1506, Level = LogLevel.Information, Message = "trimmed the log in etcd: deleted {Batches} batches before revision {Revision} (covered by the newest checkpoint of all {Runs} live hosts) and compacted up to it")]
    private static partial void Trimmed(ILogger logger, int batches, long revision, int runs);

    [LoggerMessage(EventId = 1508, Level = LogLevel.Warning, Message = "the log in etcd is not trimmed: gateway runs {Runs} advertise no ordering.peer-listen, and a host that returns after a trim needs a peer's checkpoint; give every host one (or set ordering.trim: false and compact etcd yourself)")]
    private static partial void TrimBlocked(ILogger logger, string runs);

    [LoggerMessage(EventId = 1507, Level = LogLevel.Warning, Message = "could not trim the log in etcd ({Reason}); it stays there until the next checkpoint")]
    private static partial void TrimFailed(ILogger logger, string reason);
}
