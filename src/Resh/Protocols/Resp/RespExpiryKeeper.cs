using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Gateway-owned expiry (<see cref="ExpiryRewrite.Owned"/>). Each replica would expire keys by its own clock, so a
/// read racing a deadline would find the key on one replica and not on another, and the vote would split. Instead
/// the gateway writes every future deadline shifted by <see cref="Shift"/> (about 317 years), so no replica ever
/// expires a key by itself, and deletes expired keys through the ordered log: at a key's deadline by the gateway's
/// clock it orders one script that deletes, in every replica at the same log position, each checked key whose
/// shifted deadline has passed that clock reading. Keys, counts and reads are then the same on every replica.
/// </summary>
/// <remarks>
/// One check per key is kept (the earliest); the script answers the current deadline of every key it left alone,
/// and the check is moved there, so a key whose deadline was extended, or set by a request that failed, is neither
/// forgotten nor checked once per write. Keys whose deadline the gateway did not see being set (RENAME, MOVE,
/// COPY: the key keeps its deadline under a new name) get a check at once, which finds their deadline. At start
/// (a restored checkpoint, a replayed log) one sweep per database finds every key with a shifted deadline.
/// </remarks>
internal sealed class RespExpiryKeeper : IAsyncDisposable
{
    /// <summary>Added to every future deadline written to the replicas (10^13 ms); deadlines at or above it are shifted ones.</summary>
    public const long Shift = 10_000_000_000_000;

    /// <summary>Keys checked by one script.</summary>
    private const int BatchKeys = 512;

    private const string CheckScript = """
        local now = tonumber(ARGV[1])
        local out = {}
        for i, k in ipairs(KEYS) do
          local d = redis.call('PEXPIRETIME', k)
          if d >= SHIFT and d <= now then
            redis.call('DEL', k)
            out[i] = 0
          else
            out[i] = d
          end
        end
        return out
        """;

    // A database that Redis's INFO keyspace shows without keys that have a deadline (or does not show: it is empty) is
    // skipped: walking every key of a large data set without deadlines would hold the replicas for seconds at a start
    // or a takeover. A server whose INFO does not look like Redis's is walked as before. The keys are sorted: KEYS
    // lists them in hash-table order, which differs between replicas (each process seeds its hash), and the answer is voted.
    private const string SweepScript = """
        local out = {}
        local info = redis.pcall('INFO', 'keyspace')
        local known = type(info) == 'string' and string.find(info, '# Keyspace', 1, true) ~= nil
        for db = 0, tonumber(ARGV[1]) - 1 do
          local selected = redis.pcall('SELECT', db)
          if type(selected) == 'table' and selected.err then break end
          local expires = known and string.match(info, 'db' .. db .. ':keys=%d+,expires=(%d+)') or nil
          local keys = (known and (expires == nil or expires == '0')) and {} or redis.call('KEYS', '*')
          table.sort(keys)
          for _, k in ipairs(keys) do
            local d = redis.call('PEXPIRETIME', k)
            if d >= SHIFT then
              out[#out + 1] = tostring(db)
              out[#out + 1] = k
              out[#out + 1] = d
            end
          end
        end
        return out
        """;

    internal static readonly byte[] Check = Encoding.ASCII.GetBytes(CheckScript.Replace("SHIFT", Shift.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
    internal static readonly byte[] Sweep = Encoding.ASCII.GetBytes(SweepScript.Replace("SHIFT", Shift.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

    private readonly Lock _lock = new();
    private readonly Dictionary<(int Db, string Key), long> _due = [];
    private readonly PriorityQueue<(int Db, string Key), long> _queue = new();
    private readonly TimeProvider _clock;
    private readonly int _databases;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private IGatewayLink? _link;
    private Task _run = Task.CompletedTask;

    public RespExpiryKeeper(TimeProvider clock, int databases)
    {
        _clock = clock;
        _databases = databases;
    }

    /// <summary>Starts checking through <paramref name="link"/>, with one sweep per database first.</summary>
    public void Start(IGatewayLink link)
    {
        _link = link;
        _run = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>The deadline to write for <paramref name="deadline"/> (ms since the epoch): shifted when it lies in the future.</summary>
    public static long ShiftFuture(long deadline, long now) => deadline > now && deadline < long.MaxValue - Shift ? deadline + Shift : deadline;

    /// <summary>The client's view of a deadline read from a replica.</summary>
    public static long Unshift(long stored) => stored >= Shift ? stored - Shift : stored;

    /// <summary>Checks key <paramref name="key"/> of database <paramref name="db"/> at <paramref name="deadline"/> (gateway time, ms).</summary>
    public void Schedule(int db, ReadOnlySpan<byte> key, long deadline)
    {
        var name = Encoding.Latin1.GetString(key);
        var wake = false;
        lock (_lock)
        {
            if (_due.TryGetValue((db, name), out var current) && current <= deadline)
            {
                return;
            }

            _due[(db, name)] = deadline;
            _queue.Enqueue((db, name), deadline);
            wake = _queue.TryPeek(out _, out var first) && first == deadline;
        }

        if (wake)
        {
            Wake();
        }
    }

    private void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
        {
        }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        try
        {
            // Until it is decided: a sweep that is not (the log refused it, the replicas disagreed) would leave keys that
            // were written before this gateway started without a check, never to expire.
            while (!await SweepAsync(ct))
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _clock, ct);
            }

            while (!ct.IsCancellationRequested)
            {
                var batches = TakeDue(out var delay);
                foreach (var (db, keys) in batches)
                {
                    await CheckAsync(db, keys, ct);
                }

                if (batches.Count == 0)
                {
                    try
                    {
                        await _wake.WaitAsync(delay, ct);
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>The keys due now, grouped by database in batches; otherwise how long to wait.</summary>
    private List<(int Db, List<string> Keys)> TakeDue(out TimeSpan delay)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var byDb = new Dictionary<int, List<string>>();
        var batches = new List<(int, List<string>)>();
        delay = TimeSpan.FromSeconds(1);
        lock (_lock)
        {
            while (_queue.TryPeek(out var item, out var at))
            {
                if (at > now)
                {
                    delay = TimeSpan.FromMilliseconds(Math.Min(at - now, 1000));
                    break;
                }

                _queue.Dequeue();
                if (!_due.TryGetValue(item, out var current) || current != at)
                {
                    continue;
                }

                _due.Remove(item);
                if (!byDb.TryGetValue(item.Db, out var keys))
                {
                    byDb[item.Db] = keys = [];
                }

                keys.Add(item.Key);
                if (keys.Count == BatchKeys)
                {
                    batches.Add((item.Db, keys));
                    byDb[item.Db] = [];
                }

                if (batches.Count >= 8)
                {
                    break;
                }
            }
        }

        batches.AddRange(byDb.Where(p => p.Value.Count > 0).Select(p => (p.Key, p.Value)));
        return batches;
    }

    private async Task CheckAsync(int db, List<string> keys, CancellationToken ct)
    {
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var request = new ArrayBufferWriter<byte>();
        RespScripts.WriteEval(request, Check, keys.Count, args: 1);
        foreach (var key in keys)
        {
            RespEncoding.WriteBulk(request, Encoding.Latin1.GetBytes(key));
        }

        RespEncoding.WriteBulk(request, now + Shift);
        var reply = await RequestAsync(request.WrittenMemory, db, ct);
        if (reply is null || !RespReplyReader.TryReadStrings(reply, out var results) || results.Count != keys.Count)
        {
            // Not decided (replicas disagree, the log refused it): try these keys again a little later.
            foreach (var key in keys)
            {
                Schedule(db, Encoding.Latin1.GetBytes(key), now + 100);
            }

            return;
        }

        for (var i = 0; i < keys.Count; i++)
        {
            if (!RespEncoding.TryParseInteger(results[i], out var stored))
            {
                continue;
            }

            if (stored >= Shift)
            {
                Schedule(db, Encoding.Latin1.GetBytes(keys[i]), stored - Shift);
            }
        }
    }

    /// <summary>One script over every database: the keys with a shifted deadline (after a restored checkpoint or a replayed log). False when not decided.</summary>
    private async Task<bool> SweepAsync(CancellationToken ct)
    {
        var request = new ArrayBufferWriter<byte>();
        RespScripts.WriteEval(request, Sweep, keys: 0, args: 1);
        RespEncoding.WriteBulk(request, _databases);
        var reply = await RequestAsync(request.WrittenMemory, 0, ct);
        if (reply is null || !RespReplyReader.TryReadStrings(reply, out var found))
        {
            return false;
        }

        for (var i = 0; i + 2 < found.Count; i += 3)
        {
            if (RespEncoding.TryParseInteger(found[i], out var db) && RespEncoding.TryParseInteger(found[i + 2], out var stored))
            {
                Schedule((int)db, found[i + 1], Unshift(stored));
            }
        }

        return true;
    }

    private async Task<byte[]?> RequestAsync(ReadOnlyMemory<byte> payload, int db, CancellationToken ct)
    {
        try
        {
            var reply = await _link!.RequestAsync(payload, RespProtocol.MakeContext(db, resp3: false), RespReplyOrder.Ordered, ct);
            return RespReplyReader.IsError(reply.Span) ? null : reply.ToArray();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // The log cannot take it now (full disk, a fenced primary): later checks retry.
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        _stop.Dispose();
        _wake.Dispose();
    }
}
