// Over 600 lines: the sequencer's batching and its watch loop (applying each change once, in revision order; made again when it falls behind what etcd confirmed), which together define the order every gateway appends and share the runs' state and one lock; membership, cursor and trimming are its other partial files, the calls to etcd EtcdConnection.
using System.Globalization;
using System.Threading.Channels;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Mvccpb;
using Resh.Ordering;

namespace Resh.Dresh;

/// <summary>
/// D-RESH ordering: every gateway appends its sessions' events to etcd in batches, one key per batch under
/// /resh/CLUSTER/log/ (MEMBER-INCARNATION-NUMBER), and every gateway watches /resh/CLUSTER/ and appends the
/// batches to its local log in etcd's revision order, except that a batch waits for the batches before it of
/// the same gateway run: several batches of one gateway may be in flight at once, and etcd may commit them in
/// any order, but a session's events stay in the order they were submitted. Every gateway applies the same
/// rule to the same revisions, so every log holds the same entries at the same positions; a gateway's own
/// entries come back with their reply sinks. etcd (its Raft) does the agreement; this class only moves bytes,
/// through etcd's gRPC API (<see cref="EtcdConnection"/>). Membership (leases, lost gateways) is in EtcdSequencer.Members.cs, the
/// resume point of a checkpoint in EtcdSequencer.Cursor.cs.
/// </summary>
public sealed partial class EtcdSequencer : ISequencer
{
    private readonly EtcdOrderingOptions _options;
    private readonly ILogger _logger;
    private readonly EtcdConnection _etcd;
    private readonly Channel<(LogEntry Entry, TaskCompletionSource<long> Done)> _submitted = Channel.CreateUnbounded<(LogEntry, TaskCompletionSource<long>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<(string Run, long Number), List<(LogEntry Entry, TaskCompletionSource<long> Done)>> _inFlight = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _writer = Task.CompletedTask;
    private Task _watcher = Task.CompletedTask;

    // Applied state: only the watcher's loop changes it; the same log gives every gateway the same state.
    private readonly Dictionary<string, Run> _runs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _closedRuns = new(StringComparer.Ordinal);
    private readonly Dictionary<long, string> _openSessions = [];
    private readonly Dictionary<int, long> _lastSessions = [];
    private long _appliedRevision;

    /// <summary>The keys applied at <see cref="_appliedRevision"/>: one revision can change several (a lease's keys all go at once).</summary>
    private readonly HashSet<string> _appliedKeys = new(StringComparer.Ordinal);
    private long _ownLastSession;

    private long _batches;
    private long _largestBatch;

    // The watch's liveness: the highest revision etcd confirmed for this gateway's writes, the one the last check found
    // unapplied (0: none), and the current watch, to cancel when it fell behind.
    private long _confirmedRevision;
    private long _lagSeen;
    private CancellationTokenSource? _watchAttempt;

    public EtcdSequencer(OrderedLog log, EtcdOrderingOptions options, ILogger logger, EtcdCursor? resume = null)
    {
        Log = log;
        _options = options;
        _logger = logger;
        _etcd = new EtcdConnection(options);
        if (resume is not null)
        {
            Restore(resume);
        }
    }

    public OrderedLog Log { get; }

    /// <summary>The etcd endpoint in use.</summary>
    public Uri Endpoint => _etcd.Endpoint;

    /// <summary>The last etcd revision appended to the local log.</summary>
    public long AppliedRevision => Interlocked.Read(ref _appliedRevision);

    /// <summary>Batches this gateway wrote, and the largest one (entries).</summary>
    public (long Batches, long Largest) BatchStats => (Interlocked.Read(ref _batches), Interlocked.Read(ref _largestBatch));

    /// <summary>Faults when this gateway can no longer follow the log (etcd compacted what it still needs): it must stop.</summary>
    public Task Failed => _failed.Task;

    private string Root => $"/resh/{_options.Cluster}/";

    private string LogPrefix => Root + "log/";

    /// <summary>
    /// Starts watching (from the first revision, or from a checkpoint's cursor) and completes when the existing
    /// log has been appended. Writing starts with <see cref="JoinAsync"/>, once this gateway can be reached.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await AuthenticateAsync(cancellationToken);
        var head = await NewestRevisionAsync(cancellationToken);
        _watcher = Task.Run(() => WatchLoopAsync(head, _stop.Token), CancellationToken.None);
        await _caughtUp.Task.WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
    }

    /// <summary>With ordering.user: a token now, so that wrong credentials stop the start with their own message.</summary>
    /// <exception cref="InvalidOperationException">etcd refused the user or password, or does not answer.</exception>
    public async Task AuthenticateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _etcd.AuthenticateAsync(cancellationToken);
        }
        catch (RpcException e)
        {
            throw TlsFailure(e) ?? new InvalidOperationException($"etcd at {Endpoint} could not be reached to authenticate ordering.user: {e.Status.Detail}", e);
        }
    }

    public async ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!entry.TryClaimSubmission())
        {
            throw new InvalidOperationException(entry.Sequence >= 0 ? $"entry already appended at #{entry.Sequence}" : "entry already submitted");
        }

        var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_submitted.Writer.TryWrite((entry, done)))
        {
            throw new InvalidOperationException("the etcd sequencer is stopped");
        }

        return await done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Writes batches, up to max-in-flight at once; numbered in submission order, which the watcher restores.
    /// The key names this gateway run (an incarnation of its own, with its lease), so a restarted gateway never
    /// rewrites an old key, and a put is refused once the run's lease expired.
    /// </summary>
    private async Task WriteLoopAsync(CancellationToken ct)
    {
        var reader = _submitted.Reader;
        using var slots = new SemaphoreSlim(_options.MaxInFlight);
        var writes = new List<Task>();

        // The entry that did not fit into the last batch: it opens the next one.
        (LogEntry Entry, TaskCompletionSource<long> Done)? carried = null;
        try
        {
            while (carried is not null || await reader.WaitToReadAsync(ct))
            {
                await slots.WaitAsync(ct);
                var member = await CurrentRunAsync(ct);
                var batch = new List<(LogEntry Entry, TaskCompletionSource<long> Done)>();
                var bytes = 4;
                while (batch.Count < _options.MaxBatch && (carried ?? (reader.TryRead(out var read) ? read : null)) is { } item)
                {
                    carried = null;
                    if (item.Entry.Kind != LogEventKind.Close && IsLostSession(item.Entry.SessionId))
                    {
                        // The cluster closed this session (its run's lease expired): nothing more of it is ordered.
                        item.Done.TrySetException(new InvalidOperationException(LeaseLostReason));
                        continue;
                    }

                    var size = 4 + LogEntryCodec.EncodedLength(item.Entry);
                    if (4 + size > _options.MaxBatchBytes)
                    {
                        // etcd would refuse the put, and every later batch of this run would wait for it.
                        item.Done.TrySetException(new InvalidOperationException($"the request is {size} bytes, more than one etcd batch may hold (ordering.max-batch-bytes {_options.MaxBatchBytes}; raise it together with etcd's --max-request-bytes)"));
                        continue;
                    }

                    if (bytes + size > _options.MaxBatchBytes)
                    {
                        carried = item;
                        break;
                    }

                    batch.Add(item);
                    bytes += size;
                }

                if (batch.Count == 0)
                {
                    slots.Release();
                    continue;
                }

                long number;
                lock (_lock)
                {
                    number = ++member.Batches;
                    _inFlight[(member.Run, number)] = batch;
                }

                Interlocked.Increment(ref _batches);
                if (batch.Count > Interlocked.Read(ref _largestBatch))
                {
                    Interlocked.Exchange(ref _largestBatch, batch.Count);
                }

                var key = $"{LogPrefix}{member.Run}-{number:D16}";
                var entries = batch.ConvertAll(b => b.Entry);
                var encoded = new byte[LogEntryCodec.BatchLength(entries)];
                LogEntryCodec.EncodeBatch(entries, encoded);

                // The array is not touched again: the put may send it as it is.
                var value = UnsafeByteOperations.UnsafeWrap(encoded);
                writes.RemoveAll(t => t.IsCompleted);
                // Started here, not on the thread pool: the put goes out before this loop waits again (one hand-off
                // less per batch, which a lone client feels in its latency).
                writes.Add(PutBatchAsync(member, number, key, value, slots, ct));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        try
        {
            await Task.WhenAll(writes);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            // Stopping: a put canceled in flight may end as gRPC's "request aborted" rather than as a cancellation.
        }
    }

    private async Task PutBatchAsync(MemberRun member, long number, string key, ByteString value, SemaphoreSlim slots, CancellationToken ct)
    {
        try
        {
            if (!await PutWithRetryAsync(member, number, key, value, ct))
            {
                // The run's member key is gone: its lease expired, and every gateway closes its sessions.
                FailInFlight(member.Run, number, LeaseLostReason);
                LeaseLost(member);
            }
        }
        finally
        {
            slots.Release();
        }
    }

    /// <summary>
    /// Puts a batch key if the run's member key still exists; false when it does not (the lease expired). etcd
    /// refusing the put outright (out of space: the NOSPACE alarm; a request too large) while no earlier attempt
    /// may have been applied fails the batch's requests at once with etcd's reason, and the key is put empty
    /// instead once etcd takes puts again: every later batch of the run waits for this number, and nothing of
    /// the refused requests is applied anywhere.
    /// </summary>
    private async Task<bool> PutWithRetryAsync(MemberRun member, long number, string key, ByteString value, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        var ambiguous = false;
        var emptied = false;
        var txn = Txn(member, key, value);
        while (true)
        {
            var endpoint = Endpoint;
            try
            {
                var response = await _etcd.CallAsync(o => _etcd.Kv.TxnAsync(txn, o), ct);
                Confirmed(response.Header);
                return response.Succeeded;
            }
            catch (RpcException e) when (EtcdConnection.IsRefusal(e) && !ct.IsCancellationRequested)
            {
                // etcd answered no (out of space: the NOSPACE alarm; a request too large; too many requests).
                EtcdUnavailable(_logger, endpoint.ToString(), $"{e.StatusCode}: {e.Status.Detail}");
                if (!ambiguous && !emptied)
                {
                    // Refused, not applied: say so to the clients now rather than keep them waiting.
                    FailInFlight(member.Run, number, $"etcd refused to order the request ({e.Status.Detail}); it was not applied");
                    txn = Txn(member, key, ByteString.CopyFrom(EmptyBatch));
                    emptied = true;
                }
            }
            catch (Exception e) when (e is RpcException or IOException or EtcdAuthException && !ct.IsCancellationRequested)
            {
                // The put may have been applied (unless the connection was never made): the same key again is
                // harmless, the watcher applies a key once, at its creation; but the batch is no longer given up.
                ambiguous |= e is not RpcException rpc || !EtcdConnection.NeverSent(rpc);
                EtcdUnavailable(_logger, endpoint.ToString(), Describe(e));
                NextEndpoint(endpoint);
            }

            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
        }
    }

    /// <summary>The put of a batch key, guarded by the run's member key.</summary>
    private static TxnRequest Txn(MemberRun member, string key, ByteString value) => new()
    {
        Compare = { new Compare { Key = Utf8(member.Key), Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Greater, CreateRevision = 0 } },
        Success = { new RequestOp { RequestPut = new PutRequest { Key = Utf8(key), Value = value } } },
    };

    private static readonly byte[] EmptyBatch = EncodeEmptyBatch();

    private static byte[] EncodeEmptyBatch()
    {
        var empty = new byte[LogEntryCodec.BatchLength([])];
        LogEntryCodec.EncodeBatch([], empty);
        return empty;
    }

    /// <summary>The newest revision of a key under the cluster's prefix: the log is read when the watch has applied it.</summary>
    private async Task<long> NewestRevisionAsync(CancellationToken ct)
    {
        var newest = new RangeRequest { Key = Utf8(Root), RangeEnd = Utf8(PrefixEnd(Root)), Limit = 1, SortOrder = RangeRequest.Types.SortOrder.Descend, SortTarget = RangeRequest.Types.SortTarget.Mod, KeysOnly = true };
        while (true)
        {
            var endpoint = Endpoint;
            try
            {
                var response = await _etcd.CallAsync(o => _etcd.Kv.RangeAsync(newest, o), ct);
                return response.Kvs.Count > 0 ? response.Kvs[0].ModRevision : 0;
            }
            catch (RpcException e) when (TlsFailure(e) is { } tls)
            {
                throw tls;
            }
            catch (RpcException e) when (EtcdConnection.IsRefusal(e) || e.StatusCode == StatusCode.Unauthenticated)
            {
                // Reached, but refused: an etcd with authentication on (or a user without rights there) will not change its mind.
                throw new InvalidOperationException(_options.User is null
                    ? $"etcd at {endpoint} refused to read the log ({e.Status.Detail}); if its authentication is on, set ordering.user and ordering.password-file"
                    : $"etcd at {endpoint} refused user '{_options.User}' to read the log ({e.Status.Detail}); grant it read and write on {Root}", e);
            }
            catch (RpcException e) when (!ct.IsCancellationRequested)
            {
                EtcdUnavailable(_logger, endpoint.ToString(), Describe(e));
                NextEndpoint(endpoint);
                await Task.Delay(200, ct);
            }
        }
    }

    /// <summary>Watches the cluster's prefix from the revision after the last one applied; reconnects on errors.</summary>
    private async Task WatchLoopAsync(long headAtStart, CancellationToken ct)
    {
        if (headAtStart <= AppliedRevision)
        {
            _caughtUp.TrySetResult();
        }

        while (!ct.IsCancellationRequested)
        {
            var endpoint = Endpoint;
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            Volatile.Write(ref _watchAttempt, attempt);
            try
            {
                var from = AppliedRevision + 1;
                using var watch = _etcd.Watches.Watch(_etcd.Stream(attempt.Token));
                await EtcdConnection.OpenAsync(watch, new WatchRequest { CreateRequest = new WatchCreateRequest { Key = Utf8(Root), RangeEnd = Utf8(PrefixEnd(Root)), StartRevision = from } }, attempt.Token);
                while (await watch.ResponseStream.MoveNext(attempt.Token))
                {
                    var result = watch.ResponseStream.Current;
                    if (result.Canceled && result.CompactRevision > 0)
                    {
                        // etcd no longer holds the revisions this gateway needs next: it cannot follow, so it stops.
                        var failure = new EtcdCompactedException(_options.Cluster, from, result.CompactRevision);
                        EtcdCompacted(_logger, from, result.CompactRevision);
                        _caughtUp.TrySetException(failure);
                        _failed.TrySetException(failure);
                        return;
                    }

                    if (result.Canceled)
                    {
                        // Refused (an expired token, no permission): the watch is made again, with a fresh token.
                        throw new IOException($"etcd canceled the watch: {result.CancelReason}");
                    }

                    foreach (var change in result.Events)
                    {
                        Apply(change);
                    }

                    if (AppliedRevision >= headAtStart)
                    {
                        _caughtUp.TrySetResult();
                    }
                }

                throw new IOException("etcd ended the watch");
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                // Stopping: a call canceled mid-read may end as gRPC's "request aborted" rather than as a cancellation.
                return;
            }
            catch (OperationCanceledException)
            {
                // The watch fell behind what etcd confirmed (CheckWatchLag): made again, on the next endpoint.
                WatchStalled(_logger, endpoint.ToString(), AppliedRevision);
                NextEndpoint(endpoint);
                continue;
            }
            catch (Exception e) when (e is RpcException or IOException or EtcdAuthException && !ct.IsCancellationRequested)
            {
                EtcdUnavailable(_logger, endpoint.ToString(), Describe(e));
                if (e is IOException || (e is RpcException rpc && EtcdConnection.IsExpiredToken(rpc)))
                {
                    await RefreshTokenQuietlyAsync(ct);
                }
                else
                {
                    NextEndpoint(endpoint);
                }

                try
                {
                    await Task.Delay(200, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>One change under the cluster's prefix, in revision order: a batch of the log, or a member coming or going.</summary>
    private void Apply(Event change)
    {
        var kv = change.Kv;
        if (kv is null || kv.Key.IsEmpty)
        {
            return;
        }

        var modified = kv.ModRevision;
        var key = kv.Key.ToStringUtf8();
        if (modified < AppliedRevision || (modified == AppliedRevision && !_appliedKeys.Add(key)))
        {
            // A change seen before a reconnect: applied once only. One revision may change several keys (a revoked
            // lease deletes the member key, its trim key and its digest records at once), each applied once.
            return;
        }

        // Every change under the prefix moves the watch on, whatever it is: a start waits for the head revision,
        // which may be a trim key or a member key as well as a batch.
        if (modified > AppliedRevision)
        {
            _appliedKeys.Clear();
            _appliedKeys.Add(key);
            Interlocked.Exchange(ref _appliedRevision, modified);
        }

        var deleted = change.Type == Event.Types.EventType.Delete;
        if (key.StartsWith(MembersPrefix, StringComparison.Ordinal))
        {
            var run = key[MembersPrefix.Length..];
            if (deleted)
            {
                RunLeft(run);
            }
            else
            {
                MemberJoined(run, kv.Value);
            }

            return;
        }

        if (key.StartsWith(LeavePrefix, StringComparison.Ordinal))
        {
            if (!deleted)
            {
                LeaveAsked(key[LeavePrefix.Length..], kv.Value, modified);
            }

            return;
        }

        if (key.StartsWith(TrimPrefix, StringComparison.Ordinal))
        {
            if (!deleted)
            {
                PeerPublished(key[TrimPrefix.Length..]);
            }

            return;
        }

        if (!key.StartsWith(LogPrefix, StringComparison.Ordinal) || deleted || kv.Value.IsEmpty || kv.CreateRevision != modified)
        {
            // Not a batch, or a retried put of a key that exists already: applied once, at its creation.
            return;
        }

        var name = key[LogPrefix.Length..];
        var dash = name.LastIndexOf('-');
        if (dash < 0 || !long.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return;
        }

        var runName = name[..dash];
        if (_closedRuns.Contains(runName))
        {
            // The put checks the run's member key, so this cannot happen through this class; a foreign writer is ignored alike.
            return;
        }

        if (!_runs.TryGetValue(runName, out var state))
        {
            state = new Run();
            _runs[runName] = state;
        }

        if (number < state.Next)
        {
            return;
        }

        state.Waiting[number] = (modified, kv.Value);
        while (state.Waiting.Remove(state.Next, out var waiting))
        {
            AppendBatch(runName, state.Next, waiting.Revision, waiting.Value);
            state.Next++;
        }
    }

    private void AppendBatch(string runName, long number, long revision, ByteString value)
    {
        var own = TakeInFlight(runName, number);
        var entries = own?.ConvertAll(o => o.Entry) ?? LogEntryCodec.DecodeBatch(value.Memory);
        var skip = 0;
        if (_resume is { } resume && resume.Run == runName && resume.Number == number)
        {
            // The batch that holds the restored checkpoint: its entries up to the checkpoint are in the checkpoint.
            skip = resume.Skip;
            _resume = null;
        }

        for (var i = skip; i < entries.Count; i++)
        {
            var entry = entries[i];
            Track(entry, runName);
            var seq = Log.Append(entry);
            own?[i].Done.TrySetResult(seq);
            if (entry.Kind == LogEventKind.Checkpoint)
            {
                RememberCursor(seq, runName, number, i + 1, revision);
            }
        }
    }

    /// <summary>Which sessions are open and of which run, and the highest session id of every member.</summary>
    private void Track(LogEntry entry, string runName)
    {
        switch (entry.Kind)
        {
            case LogEventKind.Open:
                _openSessions[entry.SessionId] = runName;
                var member = (int)(entry.SessionId >> 40);
                if (!_lastSessions.TryGetValue(member, out var last) || entry.SessionId > last)
                {
                    _lastSessions[member] = entry.SessionId;
                    if (member == _options.Member)
                    {
                        Interlocked.Exchange(ref _ownLastSession, entry.SessionId);
                    }
                }

                break;
            case LogEventKind.Close:
                _openSessions.Remove(entry.SessionId);
                break;
        }
    }

    /// <summary>Session ids of this member are handed out above this one (the highest in the log, or the member's first).</summary>
    public long LastSessionId => Math.Max(Interlocked.Read(ref _ownLastSession), _options.FirstSessionId);

    /// <summary>One gateway run's batches: the next number to append, and those that arrived before it (with their revisions).</summary>
    private sealed class Run
    {
        public long Next { get; set; } = 1;

        public Dictionary<long, (long Revision, ByteString Value)> Waiting { get; } = [];
    }

    private List<(LogEntry Entry, TaskCompletionSource<long> Done)>? TakeInFlight(string run, long number)
    {
        lock (_lock)
        {
            return _inFlight.Remove((run, number), out var batch) ? batch : null;
        }
    }

    /// <summary>Fails a batch that etcd refused (and, with <paramref name="number"/> 0, every batch of the run still in flight).</summary>
    private void FailInFlight(string run, long number, string reason)
    {
        List<List<(LogEntry Entry, TaskCompletionSource<long> Done)>> failed = [];
        lock (_lock)
        {
            foreach (var key in _inFlight.Keys.Where(k => k.Run == run && (number == 0 || k.Number == number)).ToList())
            {
                failed.Add(_inFlight[key]);
                _inFlight.Remove(key);
            }
        }

        foreach (var (_, done) in failed.SelectMany(b => b))
        {
            done.TrySetException(new InvalidOperationException(reason));
        }
    }

    /// <summary>etcd confirmed a write of this gateway at the header's revision: the watch must come to it (<see cref="CheckWatchLag"/>).</summary>
    private void Confirmed(ResponseHeader? header)
    {
        var revision = header?.Revision ?? 0;
        long seen;
        while (revision > (seen = Interlocked.Read(ref _confirmedRevision)) && Interlocked.CompareExchange(ref _confirmedRevision, revision, seen) != seen)
        {
        }
    }

    /// <summary>
    /// A watch that is open but silent (seen once after a partition healed: the stream stayed, the events never came) would
    /// hold every request of this gateway forever. So a revision etcd confirmed for one of this gateway's writes that the
    /// watch has not reached at one check, and still not at the next (a keepalive period later), makes the watch again.
    /// </summary>
    private void CheckWatchLag()
    {
        var confirmed = Interlocked.Read(ref _confirmedRevision);
        var applied = AppliedRevision;
        if (confirmed <= applied)
        {
            _lagSeen = 0;
            return;
        }

        if (_lagSeen != 0 && applied < _lagSeen)
        {
            _lagSeen = 0;
            try
            {
                Volatile.Read(ref _watchAttempt)?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // That watch ended meanwhile; the next one starts from where the log stands.
            }

            return;
        }

        _lagSeen = confirmed;
    }

    /// <summary>Moves on from <paramref name="failed"/> (the endpoint a failed call used), once however many calls failed on it.</summary>
    private void NextEndpoint(Uri failed) => _etcd.NextEndpoint(failed);

    /// <summary>A fresh token after etcd refused a stream's; a failure shows on the next call.</summary>
    private async Task RefreshTokenQuietlyAsync(CancellationToken ct)
    {
        try
        {
            await _etcd.RefreshTokenAsync(ct);
        }
        catch (Exception e) when (e is RpcException or EtcdAuthException && !ct.IsCancellationRequested)
        {
            EtcdUnavailable(_logger, Endpoint.ToString(), Describe(e));
        }
    }

    /// <summary>A start that cannot work because TLS failed (an untrusted server certificate, or no client certificate where etcd wants one), or null.</summary>
    private InvalidOperationException? TlsFailure(RpcException e) =>
        EtcdConnection.Transport(e) is { } http && EtcdTls.IsTlsFailure(http)
            ? new InvalidOperationException($"etcd at {Endpoint}: the TLS handshake failed ({http.InnerException?.Message ?? http.Message}); check ordering.ca-certificate, ordering.client-certificate and ordering.client-key", e)
            : null;

    /// <summary>An etcd failure in one line: gRPC's status and detail, or the exception's message.</summary>
    private static string Describe(Exception e) => e is RpcException rpc
        ? $"{rpc.StatusCode}: {(EtcdConnection.Transport(rpc)?.Message ?? rpc.Status.Detail)}"
        : e.Message;

    private static ByteString Utf8(string text) => ByteString.CopyFromUtf8(text);

    private static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    public async ValueTask DisposeAsync()
    {
        _submitted.Writer.TryComplete();
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_writer, _watcher, _keepAlive).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        // A trim in progress ends at the cancellation; it must not use the client once disposed.
        if (await _trimming.WaitAsync(TimeSpan.FromSeconds(5)))
        {
            _trimming.Release();
        }

        await RevokeAsync();
        _etcd.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "etcd at {Endpoint}: {Reason}; trying again")]
    private static partial void EtcdUnavailable(ILogger logger, string endpoint, string reason);

    [LoggerMessage(EventId = 1509, Level = LogLevel.Warning, Message = "etcd at {Endpoint}: the watch stayed at revision {Applied} behind writes etcd confirmed; watching again")]
    private static partial void WatchStalled(ILogger logger, string endpoint, long applied);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Critical, Message = "etcd compacted the log: this gateway needs revision {Wanted}, etcd holds only {Compacted} and later; it stops (restart it: it rebuilds from a newer checkpoint)")]
    private static partial void EtcdCompacted(ILogger logger, long wanted, long compacted);
}

/// <summary>etcd compacted revisions a gateway still needs: it can only go on from a newer checkpoint.</summary>
public sealed class EtcdCompactedException(string cluster, long wanted, long compacted)
    : Exception($"etcd compacted the log of cluster '{cluster}' up to revision {compacted}, but this gateway needs revision {wanted} and later; it needs a checkpoint newer than the compaction (from its own store, or a peer's)")
{
    public long Wanted { get; } = wanted;

    public long Compacted { get; } = compacted;
}
