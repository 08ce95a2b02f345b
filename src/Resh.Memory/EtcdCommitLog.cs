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
        return await WithFailoverAsync(async ct => (await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), ct)).Header.Revision, idempotent: false, cancellationToken);
    }

    public async Task<long> HeadAsync(CancellationToken cancellationToken)
    {
        var range = new RangeRequest { Key = _key };
        var response = await WithFailoverAsync(ct => _etcd.CallAsync(o => _etcd.Kv.RangeAsync(range, o), ct), idempotent: true, cancellationToken);
        return response.Kvs.Count == 0 ? 0 : response.Kvs[0].ModRevision;
    }

    public async Task TruncateAsync(long upTo, CancellationToken cancellationToken)
    {
        try
        {
            await WithFailoverAsync(ct => _etcd.CallAsync(o => _etcd.Kv.CompactAsync(new CompactionRequest { Revision = upTo }, o), ct), idempotent: true, cancellationToken);
        }
        catch (RpcException e) when (e.Status.Detail.Contains("compacted", StringComparison.Ordinal))
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
            var call = _etcd.Watches.Watch(_etcd.Stream(cancellationToken));
            var records = new List<LogRecord>();
            Exception? failure = null;
            try
            {
                try
                {
                    await EtcdConnection.OpenAsync(call, new WatchRequest { CreateRequest = new WatchCreateRequest { Key = _key, StartRevision = next } }, cancellationToken);
                }
                catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                {
                    failure = e;
                }

                while (failure is null)
                {
                    try
                    {
                        if (!await call.ResponseStream.MoveNext(cancellationToken))
                        {
                            failure = new IOException("etcd ended the watch");
                            break;
                        }
                    }
                    catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                    {
                        failure = e;
                        break;
                    }

                    var response = call.ResponseStream.Current;
                    if (response.CompactRevision > 0 && response.CompactRevision > next - 1)
                    {
                        throw new LogTruncatedException(next, response.CompactRevision);
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

            // A broken watch is made again from the next position, on the next endpoint after a few failures in a row.
            if (++failures >= 3)
            {
                _etcd.NextEndpoint(endpoint);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 100 * failures)), cancellationToken);
        }
    }

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
        }
    }

    public ValueTask DisposeAsync()
    {
        _etcd.Dispose();
        return ValueTask.CompletedTask;
    }
}
