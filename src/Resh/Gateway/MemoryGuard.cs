using Microsoft.Extensions.Logging;

namespace Resh.Gateway;

/// <summary>
/// service.limits.memory: watches the gateway's managed heap and says when new requests must be refused. Over the limit it
/// forces a collection (at most once a second) before deciding, so garbage does not count; it asks for relief
/// (<see cref="Pressure"/>: a checkpoint cuts the log, the largest part of the heap) and lifts the refusal once the
/// heap is below the limit again.
/// </summary>
public sealed class MemoryGuard(long limit, ILogger logger)
{
    private static readonly TimeSpan CollectEvery = TimeSpan.FromSeconds(1);
    private long _lastCollect;
    private long _afterCollect;
    private volatile bool _exceeded;

    /// <summary>The heap size beyond which requests are refused (0: none); tests set it once the host is up.</summary>
    public long Limit { get; internal set; } = limit;

    /// <summary>True while the heap is over the limit: new requests are refused.</summary>
    public bool Exceeded => _exceeded;

    /// <summary>Raised (on the watcher's thread) each time a check finds the heap over the limit.</summary>
    public event Action<long>? Pressure;

    /// <summary>
    /// One check; <paramref name="heap"/> reads the heap (tests give their own). Below the limit is decided at once; over
    /// it only by a measurement after a collection (the newest, at most a second old), so garbage never refuses a request.
    /// </summary>
    public void Check(Func<long>? heap = null)
    {
        var limit = Limit;
        if (limit <= 0)
        {
            return;
        }

        heap ??= static () => GC.GetTotalMemory(forceFullCollection: false);
        var bytes = heap();
        if (bytes > limit)
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastCollect)) > CollectEvery)
            {
                GC.Collect();
                Interlocked.Exchange(ref _lastCollect, System.Diagnostics.Stopwatch.GetTimestamp());
                Interlocked.Exchange(ref _afterCollect, heap());
            }

            bytes = Math.Min(bytes, Interlocked.Read(ref _afterCollect));
        }

        var over = bytes > limit;
        if (over != _exceeded)
        {
            _exceeded = over;
            if (over)
            {
                GatewayLog.MemoryOverLimit(logger, bytes >> 20, limit >> 20);
            }
            else
            {
                GatewayLog.MemoryBelowLimit(logger, bytes >> 20, limit >> 20);
            }
        }

        if (over)
        {
            Pressure?.Invoke(bytes);
        }
    }
}
