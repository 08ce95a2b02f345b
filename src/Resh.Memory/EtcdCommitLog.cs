using System.Runtime.CompilerServices;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Resh.Dresh;

namespace Resh.Memory;

/// <summary>
/// The memory's ordered log in etcd: every record is a put of one key (<c>/resh-memory/CLUSTER/log</c>), so etcd's
/// revisions are the order and a record's position is its revision; a reader watches the key from a revision and gets
/// every put since, and truncation is etcd's compaction. It talks to etcd through Resh's one etcd connection (gRPC,
/// TLS, auth, several endpoints), so everything the operator guide says about <c>ordering.*</c> holds here too.
/// </summary>
public sealed class EtcdCommitLog : ICommitLog
{
    private readonly EtcdConnection _etcd;
    private readonly ByteString _key;
    private readonly int _endpoints;

    /// <summary>A watch that has not delivered a record etcd confirmed for this long is made again on another endpoint.</summary>
    private const long StalledAfterMs = 5000;

    /// <summary>The newest position etcd confirmed to this log (an append's revision, a head read).</summary>
    private long _confirmed;

    public EtcdCommitLog(EtcdOrderingOptions options)
    {
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("the memory's etcd log needs at least one endpoint", nameof(options));
        }

        if (string.IsNullOrWhiteSpace(options.Cluster) || options.Cluster.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"the memory's cluster name must be non-empty and hold no '/' (got '{options.Cluster}')", nameof(options));
        }

        _etcd = new EtcdConnection(options);
        _endpoints = options.Endpoints.Count;
        _key = ByteString.CopyFrom(Encoding.UTF8.GetBytes($"/resh-memory/{options.Cluster}/log"));
    }

    public async Task<long> AppendAsync(byte[] record, CancellationToken cancellationToken)
    {
        var put = new PutRequest { Key = _key, Value = ByteString.CopyFrom(record) };
        var position = await WithFailoverAsync(async ct => (await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), ct)).Header.Revision, idempotent: false, cancellationToken);
        Confirmed(position);
        return position;
    }

    public async Task<long> HeadAsync(CancellationToken cancellationToken)
    {
        var range = new RangeRequest { Key = _key };
        var response = await WithFailoverAsync(ct => _etcd.CallAsync(o => _etcd.Kv.RangeAsync(range, o), ct), idempotent: true, cancellationToken);
        var head = response.Kvs.Count == 0 ? 0 : response.Kvs[0].ModRevision;
        Confirmed(head);
        return head;
    }

    private void Confirmed(long position)
    {
        var seen = Interlocked.Read(ref _confirmed);
        while (position > seen && Interlocked.CompareExchange(ref _confirmed, position, seen) != seen)
        {
            seen = Interlocked.Read(ref _confirmed);
        }
    }

    public async Task TruncateAsync(long upTo, CancellationToken cancellationToken)
    {
        try
        {
            await WithFailoverAsync(ct => _etcd.CallAsync(o => _etcd.Kv.CompactAsync(new CompactionRequest { Revision = upTo }, o), ct), idempotent: true, cancellationToken);
        }
        catch (InvalidOperationException e) when (e.InnerException is RpcException rpc && rpc.Status.Detail.Contains("compacted", StringComparison.Ordinal))
        {
            // Already compacted at or past it (by another compactor, or an earlier call): nothing left to do.
        }
    }

    public async IAsyncEnumerable<LogRecord> ReadAsync(long after, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var next = after + 1;
        var failures = 0;
        while (true)
        {
            var endpoint = _etcd.Endpoint;
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var call = _etcd.Watches.Watch(_etcd.Stream(attempt.Token));
            var records = new List<LogRecord>();
            Exception? failure = null;
            var lastProgress = Environment.TickCount64;
            using var watchdog = new Timer(_ =>
            {
                // A watch on a member that lost its cluster may stay open and silent: once etcd confirmed a record this
                // watch has not delivered for a while, it is made again elsewhere.
                if (Interlocked.Read(ref _confirmed) >= Volatile.Read(ref next) && Environment.TickCount64 - Interlocked.Read(ref lastProgress) > StalledAfterMs)
                {
                    try
                    {
                        attempt.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                        // The attempt ended meanwhile.
                    }
                }
            }, null, 1000, 1000);
            try
            {
                try
                {
                    await EtcdConnection.OpenAsync(call, new WatchRequest { CreateRequest = new WatchCreateRequest { Key = _key, StartRevision = next } }, attempt.Token);
                }
                catch (Exception e) when (e is RpcException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    failure = e;
                }

                while (failure is null)
                {
                    try
                    {
                        if (!await call.ResponseStream.MoveNext(attempt.Token))
                        {
                            failure = new IOException("etcd ended the watch");
                            break;
                        }
                    }
                    catch (Exception e) when (e is RpcException or OperationCanceledException or IOException && !cancellationToken.IsCancellationRequested)
                    {
                        failure = attempt.IsCancellationRequested ? new TimeoutException("the watch stalled") : e;
                        break;
                    }

                    Interlocked.Exchange(ref lastProgress, Environment.TickCount64);

                    var response = call.ResponseStream.Current;
                    if (response.CompactRevision > 0 && response.CompactRevision > next - 1)
                    {
                        // etcd compacts its whole history, other keys' included: only a record of this key that was
                        // compacted is lost. The key is never deleted, so when it is missing, or was created after the
                        // compaction, nothing was; the watch starts again past the compaction.
                        var compacted = response.CompactRevision;
                        var key = (await WithFailoverAsync(ct => _etcd.CallAsync(o => _etcd.Kv.RangeAsync(new RangeRequest { Key = _key }, o), ct), idempotent: true, cancellationToken)).Kvs;
                        if (key.Count > 0 && key[0].CreateRevision <= compacted)
                        {
                            throw new LogTruncatedException(next, compacted);
                        }

                        next = key.Count > 0 ? key[0].CreateRevision : compacted + 1;
                        failure = new RetryNowException();
                        break;
                    }

                    if (response.Canceled)
                    {
                        failure = new IOException($"etcd canceled the watch: {response.CancelReason}");
                        break;
                    }

                    failures = 0;
                    records.Clear();
                    foreach (var change in response.Events)
                    {
                        if (change.Type == Mvccpb.Event.Types.EventType.Put && change.Kv.ModRevision >= next)
                        {
                            records.Add(new LogRecord(change.Kv.ModRevision, change.Kv.Value.ToByteArray()));
                        }
                    }

                    foreach (var record in records)
                    {
                        yield return record;
                        next = record.Position + 1;
                    }
                }
            }
            finally
            {
                call.Dispose();
            }

            if (failure is RetryNowException)
            {
                continue;
            }

            // A broken watch is made again from the next position, on the next endpoint after a few failures in a row (or
            // at once when it stalled).
            if (++failures >= 3 || failure is TimeoutException)
            {
                _etcd.NextEndpoint(endpoint);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 100 * failures)), cancellationToken);
        }
    }

    /// <summary>
    /// Runs a call, on the next endpoint after a failure (a call that may have reached etcd only when it is idempotent).
    /// What is left is told apart for the caller: etcd refused (<see cref="InvalidOperationException"/>: auth, quota,
    /// a bad request; the same call fails again) or could not be reached or did not answer (<see cref="LogUnavailableException"/>:
    /// trying again later may work; an append may or may not have happened).
    /// </summary>
    private async Task<T> WithFailoverAsync<T>(Func<CancellationToken, Task<T>> call, bool idempotent, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var endpoint = _etcd.Endpoint;
            try
            {
                return await call(cancellationToken);
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested && attempt < 2 * _endpoints && (idempotent || EtcdConnection.NeverSent(e)) && !EtcdConnection.IsRefusal(e))
            {
                _etcd.NextEndpoint(endpoint);
                await Task.Delay(100, cancellationToken);
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested && EtcdConnection.IsRefusal(e))
            {
                throw new InvalidOperationException($"etcd ({endpoint}) refused the memory's log: {e.Status.Detail}", e);
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
            {
                _etcd.NextEndpoint(endpoint);
                throw new LogUnavailableException($"etcd ({endpoint}) did not answer: {e.Status.StatusCode} {e.Status.Detail}", e);
            }
            catch (EtcdAuthException e)
            {
                throw new InvalidOperationException(e.Message, e);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _etcd.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The watch is made again at once, from a new position.</summary>
file sealed class RetryNowException : Exception;
