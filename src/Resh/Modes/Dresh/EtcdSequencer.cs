// Over 600 lines: the sequencer's batching and its watch loop (applying each change once, in revision order), which together define the order every gateway appends and share the runs' state and one lock; membership, cursor and trimming are its other partial files.
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
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
/// through etcd's HTTP/JSON gateway. Membership (leases, lost gateways) is in EtcdSequencer.Members.cs, the
/// resume point of a checkpoint in EtcdSequencer.Cursor.cs.
/// </summary>
public sealed partial class EtcdSequencer : ISequencer
{
    private readonly EtcdOrderingOptions _options;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
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
    private Uri _endpoint;
    private readonly EtcdAuthHandler? _auth;

    public EtcdSequencer(OrderedLog log, EtcdOrderingOptions options, ILogger logger, EtcdCursor? resume = null)
    {
        Log = log;
        _options = options;
        _logger = logger;
        _endpoint = options.Endpoints[0];
        // No overall timeout (the watch is a stream that lasts), but an unreachable member must not hold a put for minutes.
        HttpMessageHandler handler = EtcdTls.Handler(options);
        if (options.User is { } user && options.PasswordFile is { } passwordFile)
        {
            handler = _auth = new EtcdAuthHandler(user, passwordFile, handler);
        }

        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        if (resume is not null)
        {
            Restore(resume);
        }
    }

    public OrderedLog Log { get; }

    /// <summary>The etcd endpoint in use.</summary>
    public Uri Endpoint => Volatile.Read(ref _endpoint);

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
        if (_auth is null)
        {
            return;
        }

        try
        {
            await _auth.AuthenticateAsync(Endpoint, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException(e is EtcdAuthException ? e.Message : $"etcd at {Endpoint} could not be reached to authenticate ordering.user: {e.Message}", e);
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
                var value = new byte[LogEntryCodec.BatchLength(entries)];
                LogEntryCodec.EncodeBatch(entries, value);
                writes.RemoveAll(t => t.IsCompleted);
                writes.Add(Task.Run(
                    async () =>
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
                    },
                    CancellationToken.None));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }

        try
        {
            await Task.WhenAll(writes);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Puts a batch key if the run's member key still exists; false when it does not (the lease expired). etcd
    /// refusing the put outright (out of space: the NOSPACE alarm; a request too large) while no earlier attempt
    /// may have been applied fails the batch's requests at once with etcd's reason, and the key is put empty
    /// instead once etcd takes puts again: every later batch of the run waits for this number, and nothing of
    /// the refused requests is applied anywhere.
    /// </summary>
    private async Task<bool> PutWithRetryAsync(MemberRun member, long number, string key, byte[] value, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        var ambiguous = false;
        var emptied = false;
        var txn = Txn(member, key, value);
        while (true)
        {
            try
            {
                using var response = await _http.PostAsJsonAsync(new Uri(Endpoint, "/v3/kv/txn"), txn, EtcdJson.Default.TxnRequest, ct);
                if (response.IsSuccessStatusCode)
                {
                    var body = await response.Content.ReadFromJsonAsync(EtcdJson.Default.TxnResponse, ct);
                    return body?.Succeeded == true;
                }

                var reason = $"{(int)response.StatusCode} {(await response.Content.ReadAsStringAsync(ct)).Trim()}";
                EtcdUnavailable(_logger, Endpoint.ToString(), reason);
                if (!ambiguous && !emptied && (int)response.StatusCode is 400 or 413 or 429)
                {
                    // Refused, not applied: say so to the clients now rather than keep them waiting.
                    FailInFlight(member.Run, number, $"etcd refused to order the request ({reason}); it was not applied");
                    txn = Txn(member, key, EmptyBatch);
                    emptied = true;
                }
                else if ((int)response.StatusCode >= 500)
                {
                    ambiguous = true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or JsonException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                // The put may have been applied (unless the connection was never made): the same key again is
                // harmless, the watcher applies a key once, at its creation; but the batch is no longer given up.
                ambiguous |= e is not HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError };
                EtcdUnavailable(_logger, Endpoint.ToString(), e.Message);
                NextEndpoint();
            }

            await Task.Delay(delay, ct);
            delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
        }
    }

    /// <summary>The put of a batch key, guarded by the run's member key.</summary>
    private static TxnRequest Txn(MemberRun member, string key, byte[] value) => new(
        [new TxnCompare(B64(member.Key), "CREATE", "GREATER", "0")],
        [new TxnOp(new PutRequest(B64(key), Convert.ToBase64String(value)))]);

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
        while (true)
        {
            try
            {
                using var response = await _http.PostAsJsonAsync(new Uri(Endpoint, "/v3/kv/range"), new RangeRequest(B64(Root), B64(PrefixEnd(Root)), 1, "DESCEND", "MOD", true), EtcdJson.Default.RangeRequest, ct);
                if (_auth is null && (int)response.StatusCode is >= 400 and < 500)
                {
                    // Reached, but refused: an etcd with authentication on (or a proxy that says no) will not change its mind.
                    var refusal = (await response.Content.ReadAsStringAsync(ct)).Trim();
                    throw new InvalidOperationException($"etcd at {Endpoint} refused to read the log ({(int)response.StatusCode} {refusal}); if its authentication is on, set ordering.user and ordering.password-file");
                }

                response.EnsureSuccessStatusCode();
                var body = await response.Content.ReadFromJsonAsync(EtcdJson.Default.RangeResponse, ct);
                return long.Parse(body?.Kvs?.FirstOrDefault()?.ModRevision ?? "0", CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException e) when (EtcdTls.IsTlsFailure(e))
            {
                // Reached, but TLS failed (an untrusted server certificate, or no client certificate where etcd wants one).
                throw new InvalidOperationException($"etcd at {Endpoint}: the TLS handshake failed ({e.InnerException?.Message ?? e.Message}); check ordering.ca-certificate, ordering.client-certificate and ordering.client-key", e);
            }
            catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
            {
                EtcdUnavailable(_logger, Endpoint.ToString(), e.Message);
                NextEndpoint();
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
            try
            {
                var from = AppliedRevision + 1;
                var request = new WatchRequest(new WatchCreate(B64(Root), B64(PrefixEnd(Root)), from.ToString(CultureInfo.InvariantCulture)));
                using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(Endpoint, "/v3/watch")) { Content = JsonContent.Create(request, EtcdJson.Default.WatchRequest) };
                using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct);
                response.EnsureSuccessStatusCode();
                await using var stream = await response.Content.ReadAsStreamAsync(ct);
                using var lines = new StreamReader(stream, Encoding.UTF8);
                while (await lines.ReadLineAsync(ct) is { } line)
                {
                    if (line.Length == 0)
                    {
                        continue;
                    }

                    var result = JsonSerializer.Deserialize(line, EtcdJson.Default.WatchResponse)?.Result;
                    if (result is null)
                    {
                        continue;
                    }

                    if (result.Canceled == true && long.TryParse(result.CompactRevision, NumberStyles.None, CultureInfo.InvariantCulture, out var compacted) && compacted > 0)
                    {
                        // etcd no longer holds the revisions this gateway needs next: it cannot follow, so it stops.
                        var failure = new EtcdCompactedException(_options.Cluster, from, compacted);
                        EtcdCompacted(_logger, from, compacted);
                        _caughtUp.TrySetException(failure);
                        _failed.TrySetException(failure);
                        return;
                    }

                    foreach (var change in result.Events ?? [])
                    {
                        Apply(change);
                    }

                    if (AppliedRevision >= headAtStart)
                    {
                        _caughtUp.TrySetResult();
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or JsonException or FormatException)
            {
                EtcdUnavailable(_logger, Endpoint.ToString(), e.Message);
                NextEndpoint();
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
    private void Apply(WatchEvent change)
    {
        var kv = change.Kv;
        if (kv?.Key is null)
        {
            return;
        }

        var modified = long.Parse(kv.ModRevision ?? "0", CultureInfo.InvariantCulture);
        var key = Encoding.UTF8.GetString(Convert.FromBase64String(kv.Key));
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

        var deleted = change.Type == "DELETE";
        if (key.StartsWith(MembersPrefix, StringComparison.Ordinal))
        {
            var run = key[MembersPrefix.Length..];
            if (deleted)
            {
                RunLeft(run);
            }
            else if (kv.Value is not null)
            {
                MemberJoined(run, kv.Value);
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

        var created = long.Parse(kv.CreateRevision ?? "0", CultureInfo.InvariantCulture);
        if (!key.StartsWith(LogPrefix, StringComparison.Ordinal) || deleted || kv.Value is null || created != modified)
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

    private void AppendBatch(string runName, long number, long revision, string value)
    {
        var own = TakeInFlight(runName, number);
        var entries = own?.ConvertAll(o => o.Entry) ?? LogEntryCodec.DecodeBatch(Convert.FromBase64String(value));
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

        public Dictionary<long, (long Revision, string Value)> Waiting { get; } = [];
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

    private void NextEndpoint()
    {
        var endpoints = _options.Endpoints;
        var i = endpoints.ToList().IndexOf(Endpoint);
        Volatile.Write(ref _endpoint, endpoints[(i + 1) % endpoints.Count]);
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

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
        _http.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "etcd at {Endpoint}: {Reason}; trying again")]
    private static partial void EtcdUnavailable(ILogger logger, string endpoint, string reason);

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
