using System.Buffers.Binary;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Resh.Ordering;

/// <summary>Ordering through etcd (D-RESH): where the cluster is, and who this gateway is in it.</summary>
public sealed class EtcdOrderingOptions
{
    /// <summary>etcd client URLs (its HTTP/JSON gateway), e.g. http://127.0.0.1:2379; the first that answers is used.</summary>
    public IReadOnlyList<Uri> Endpoints { get; set; } = [];

    /// <summary>The replicated service's name: the log lives under /resh/NAME/log/.</summary>
    public string Cluster { get; set; } = "";

    /// <summary>This gateway's number in the cluster (1..1023): its batch keys and session ids are its own.</summary>
    public int Member { get; set; } = 1;

    /// <summary>At most this many entries go into one batch (one etcd key).</summary>
    public int MaxBatch { get; set; } = 1024;

    /// <summary>Batches of this gateway being written to etcd at once (each waits for etcd's commit).</summary>
    public int MaxInFlight { get; set; } = 8;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Endpoints.Count == 0)
        {
            errors.Add("ordering.etcd: needs at least one etcd client URL, e.g. [http://127.0.0.1:2379]");
        }

        foreach (var endpoint in Endpoints)
        {
            if (endpoint.Scheme is not ("http" or "https"))
            {
                errors.Add($"ordering.etcd: '{endpoint}' is not an http(s) URL");
            }
        }

        if (string.IsNullOrWhiteSpace(Cluster) || Cluster.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            errors.Add($"ordering.cluster: '{Cluster}' must be a name of letters, digits, '-' and '_'");
        }

        if (Member is < 1 or > 1023)
        {
            errors.Add($"ordering.member: must be 1 to 1023 (got {Member}); every gateway of the cluster needs its own");
        }

        if (MaxBatch < 1)
        {
            errors.Add("ordering.max-batch: must be at least 1");
        }

        if (MaxInFlight is < 1 or > 1024)
        {
            errors.Add("ordering.max-in-flight: must be 1 to 1024");
        }

        return errors;
    }

    /// <summary>Session ids of this member start here, so that they never collide with another member's.</summary>
    public long FirstSessionId => (long)Member << 40;
}

/// <summary>
/// D-RESH ordering: every gateway appends its sessions' events to etcd in batches, one key per batch under
/// /resh/CLUSTER/log/ (MEMBER-INCARNATION-NUMBER), and every gateway watches that prefix from the start and
/// appends the batches to its local log in etcd's revision order, except that a batch waits for the batches
/// before it of the same gateway run: several batches of one gateway may be in flight at once, and etcd may
/// commit them in any order, but a session's events stay in the order they were submitted. Every gateway
/// applies the same rule to the same revisions, so every log holds the same entries at the same positions; a
/// gateway's own entries come back with their reply sinks. etcd (its Raft) does the agreement; this class only
/// moves bytes, through etcd's HTTP/JSON gateway.
/// </summary>
public sealed partial class EtcdSequencer : ISequencer
{
    private readonly EtcdOrderingOptions _options;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly Channel<(LogEntry Entry, TaskCompletionSource<long> Done)> _submitted = Channel.CreateUnbounded<(LogEntry, TaskCompletionSource<long>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<long, List<(LogEntry Entry, TaskCompletionSource<long> Done)>> _inFlight = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _writer = Task.CompletedTask;
    private Task _watcher = Task.CompletedTask;
    private readonly Dictionary<string, Run> _runs = new(StringComparer.Ordinal);
    private readonly string _incarnation = DateTime.UtcNow.Ticks.ToString("x16", CultureInfo.InvariantCulture);
    private long _batch;
    private long _appliedRevision;
    private long _batches;
    private long _largestBatch;
    private Uri _endpoint;

    public EtcdSequencer(OrderedLog log, EtcdOrderingOptions options, ILogger logger)
    {
        Log = log;
        _options = options;
        _logger = logger;
        _endpoint = options.Endpoints[0];
        // No overall timeout (the watch is a stream that lasts), but an unreachable member must not hold a put for minutes.
        _http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2) }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public OrderedLog Log { get; }

    /// <summary>The etcd endpoint in use.</summary>
    public Uri Endpoint => Volatile.Read(ref _endpoint);

    /// <summary>The last etcd revision appended to the local log.</summary>
    public long AppliedRevision => Interlocked.Read(ref _appliedRevision);

    /// <summary>Batches this gateway wrote, and the largest one (entries).</summary>
    public (long Batches, long Largest) BatchStats => (Interlocked.Read(ref _batches), Interlocked.Read(ref _largestBatch));

    private string Prefix => $"/resh/{_options.Cluster}/log/";

    /// <summary>Starts watching (from the first revision) and writing; completes when the existing log has been appended.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var head = await NewestBatchRevisionAsync(cancellationToken);
        _watcher = Task.Run(() => WatchLoopAsync(head, _stop.Token), CancellationToken.None);
        _writer = Task.Run(() => WriteLoopAsync(_stop.Token), CancellationToken.None);
        await _caughtUp.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    public async ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_submitted.Writer.TryWrite((entry, done)))
        {
            throw new InvalidOperationException("the etcd sequencer is stopped");
        }

        return await done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Writes batches, up to max-in-flight at once; numbered in submission order, which the watcher restores.
    /// The key names this gateway run (an incarnation of its own), so a restarted gateway never rewrites an old key.
    /// </summary>
    private async Task WriteLoopAsync(CancellationToken ct)
    {
        var reader = _submitted.Reader;
        using var slots = new SemaphoreSlim(_options.MaxInFlight);
        var writes = new List<Task>();
        try
        {
            while (await reader.WaitToReadAsync(ct))
            {
                await slots.WaitAsync(ct);
                var batch = new List<(LogEntry Entry, TaskCompletionSource<long> Done)>();
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                var number = ++_batch;
                var key = $"{Prefix}{_options.Member:D4}-{_incarnation}-{number:D16}";
                lock (_lock)
                {
                    _inFlight[number] = batch;
                }

                Interlocked.Increment(ref _batches);
                if (batch.Count > Interlocked.Read(ref _largestBatch))
                {
                    Interlocked.Exchange(ref _largestBatch, batch.Count);
                }

                var entries = batch.ConvertAll(b => b.Entry);
                var value = new byte[LogEntryCodec.BatchLength(entries)];
                LogEntryCodec.EncodeBatch(entries, value);
                writes.RemoveAll(t => t.IsCompleted);
                writes.Add(Task.Run(
                    async () =>
                    {
                        try
                        {
                            await PutWithRetryAsync(key, value, ct);
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

    private async Task PutWithRetryAsync(string key, byte[] value, CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            try
            {
                using var response = await _http.PostAsJsonAsync(new Uri(Endpoint, "/v3/kv/put"), new PutRequest(B64(key), Convert.ToBase64String(value)), EtcdJson.Default.PutRequest, ct);
                response.EnsureSuccessStatusCode();
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                // The same key again is harmless: the watcher applies a key once, at its creation.
                EtcdUnavailable(_logger, Endpoint.ToString(), e.Message);
                NextEndpoint();
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
            }
        }
    }

    private async Task<long> NewestBatchRevisionAsync(CancellationToken ct)
    {
        while (true)
        {
            try
            {
                // The newest batch key: the log is read when the watch has applied its revision.
                using var response = await _http.PostAsJsonAsync(new Uri(Endpoint, "/v3/kv/range"), new RangeRequest(B64(Prefix), B64(PrefixEnd(Prefix)), 1, "DESCEND", "MOD", true), EtcdJson.Default.RangeRequest, ct);
                response.EnsureSuccessStatusCode();
                var body = await response.Content.ReadFromJsonAsync(EtcdJson.Default.RangeResponse, ct);
                return long.Parse(body?.Kvs?.FirstOrDefault()?.ModRevision ?? "0", CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested)
            {
                EtcdUnavailable(_logger, Endpoint.ToString(), e.Message);
                NextEndpoint();
                await Task.Delay(200, ct);
            }
        }
    }

    /// <summary>Watches the log prefix from the revision after the last one applied; reconnects on errors.</summary>
    private async Task WatchLoopAsync(long headAtStart, CancellationToken ct)
    {
        if (headAtStart <= 0)
        {
            _caughtUp.TrySetResult();
        }

        while (!ct.IsCancellationRequested)
        {
            try
            {
                var request = new WatchRequest(new WatchCreate(B64(Prefix), B64(PrefixEnd(Prefix)), (AppliedRevision + 1).ToString(CultureInfo.InvariantCulture)));
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

    /// <summary>
    /// Takes one batch at its creation revision (once), and appends it to the local log when every earlier batch
    /// of the same gateway run has been appended; then whatever waited for it.
    /// </summary>
    private void Apply(WatchEvent change)
    {
        var kv = change.Kv;
        if (change.Type == "DELETE" || kv?.Key is null || kv.Value is null)
        {
            return;
        }

        var created = long.Parse(kv.CreateRevision ?? "0", CultureInfo.InvariantCulture);
        var modified = long.Parse(kv.ModRevision ?? "0", CultureInfo.InvariantCulture);
        if (created != modified || modified <= AppliedRevision)
        {
            // A retried put of a key that exists already, or a revision seen before a reconnect: applied once only.
            return;
        }

        Interlocked.Exchange(ref _appliedRevision, modified);
        var name = Encoding.UTF8.GetString(Convert.FromBase64String(kv.Key))[Prefix.Length..];
        var dash = name.LastIndexOf('-');
        if (dash < 0 || !long.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return;
        }

        var runName = name[..dash];
        if (!_runs.TryGetValue(runName, out var run))
        {
            run = new Run();
            _runs[runName] = run;
        }

        if (number < run.Next)
        {
            return;
        }

        run.Waiting[number] = kv.Value;
        while (run.Waiting.Remove(run.Next, out var value))
        {
            AppendBatch(runName, run.Next, value);
            run.Next++;
        }
    }

    private void AppendBatch(string runName, long number, string value)
    {
        var own = runName == $"{_options.Member:D4}-{_incarnation}" ? TakeInFlight(number) : null;
        if (own is not null)
        {
            foreach (var (entry, done) in own)
            {
                done.TrySetResult(Log.Append(entry));
            }

            return;
        }

        foreach (var entry in LogEntryCodec.DecodeBatch(Convert.FromBase64String(value)))
        {
            Log.Append(entry);
        }
    }

    /// <summary>One gateway run's batches: the next number to append, and those that arrived before it.</summary>
    private sealed class Run
    {
        public long Next { get; set; } = 1;

        public Dictionary<long, string> Waiting { get; } = [];
    }

    private List<(LogEntry Entry, TaskCompletionSource<long> Done)>? TakeInFlight(long number)
    {
        lock (_lock)
        {
            return _inFlight.Remove(number, out var batch) ? batch : null;
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
            await Task.WhenAll(_writer, _watcher).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        _http.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "etcd at {Endpoint}: {Reason}; trying again")]
    private static partial void EtcdUnavailable(ILogger logger, string endpoint, string reason);

    internal sealed record PutRequest([property: JsonPropertyName("key")] string Key, [property: JsonPropertyName("value")] string Value);

    internal sealed record RangeRequest(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("range_end")] string RangeEnd,
        [property: JsonPropertyName("limit")] long Limit,
        [property: JsonPropertyName("sort_order")] string SortOrder,
        [property: JsonPropertyName("sort_target")] string SortTarget,
        [property: JsonPropertyName("keys_only")] bool KeysOnly);

    internal sealed record RangeResponse([property: JsonPropertyName("header")] Header? Header, [property: JsonPropertyName("kvs")] List<KeyValue>? Kvs);

    internal sealed record Header([property: JsonPropertyName("revision")] string? Revision);

    internal sealed record WatchRequest([property: JsonPropertyName("create_request")] WatchCreate CreateRequest);

    internal sealed record WatchCreate([property: JsonPropertyName("key")] string Key, [property: JsonPropertyName("range_end")] string RangeEnd, [property: JsonPropertyName("start_revision")] string StartRevision);

    internal sealed record WatchResponse([property: JsonPropertyName("result")] WatchResult? Result);

    internal sealed record WatchResult([property: JsonPropertyName("header")] Header? Header, [property: JsonPropertyName("events")] List<WatchEvent>? Events);

    internal sealed record WatchEvent([property: JsonPropertyName("type")] string? Type, [property: JsonPropertyName("kv")] KeyValue? Kv);

    internal sealed record KeyValue(
        [property: JsonPropertyName("key")] string? Key,
        [property: JsonPropertyName("value")] string? Value,
        [property: JsonPropertyName("create_revision")] string? CreateRevision,
        [property: JsonPropertyName("mod_revision")] string? ModRevision);
}

[JsonSerializable(typeof(EtcdSequencer.PutRequest))]
[JsonSerializable(typeof(EtcdSequencer.RangeRequest))]
[JsonSerializable(typeof(EtcdSequencer.RangeResponse))]
[JsonSerializable(typeof(EtcdSequencer.WatchRequest))]
[JsonSerializable(typeof(EtcdSequencer.WatchResponse))]
internal sealed partial class EtcdJson : JsonSerializerContext;
