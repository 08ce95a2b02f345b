using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace Resh.Diagnostics;

/// <summary>
/// The gateway's own garbage-collection pauses, one by one: a stop-the-world collection holds every reply, so a long one
/// is a stall that clients see. The runtime's metrics give only the sum (dotnet_gc_pause_time_seconds_total); this
/// samples <see cref="GC.GetGCMemoryInfo(GCKind)"/> a few times a second, records each new collection's pause in the
/// histogram resh.gc.pause, and logs a warning for a pause of 100 ms or more with what the collection did.
/// (A collection that is followed by another of the same kind within one sampling period is not seen.)
/// </summary>
public sealed partial class GcPauses : IDisposable
{
    private static readonly TimeSpan Period = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Long = TimeSpan.FromMilliseconds(100);
    private static readonly GCKind[] Kinds = [GCKind.Ephemeral, GCKind.FullBlocking, GCKind.Background];

    private readonly Histogram<double> _pauses;
    private readonly ILogger _logger;
    private readonly long[] _seen = new long[Kinds.Length];
    private readonly ITimer _timer;
    private int _sampling;

    public GcPauses(Meter meter, ILogger logger, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
        _pauses = meter.CreateHistogram<double>("resh.gc.pause", "s", "The gateway's garbage-collection pauses (each one holds every reply), by generation.");
        for (var i = 0; i < Kinds.Length; i++)
        {
            _seen[i] = GC.GetGCMemoryInfo(Kinds[i]).Index;
        }

        _timer = (clock ?? TimeProvider.System).CreateTimer(_ => Sample(), null, Period, Period);
    }

    /// <summary>Records the collections since the last sample (also called by the timer).</summary>
    public void Sample()
    {
        if (Interlocked.Exchange(ref _sampling, 1) == 1)
        {
            return;
        }

        try
        {
            for (var i = 0; i < Kinds.Length; i++)
            {
                var info = GC.GetGCMemoryInfo(Kinds[i]);
                if (info.Index <= _seen[i])
                {
                    continue;
                }

                _seen[i] = info.Index;
                var pause = TimeSpan.Zero;
                foreach (var part in info.PauseDurations)
                {
                    pause += part;
                }

                _pauses.Record(pause.TotalSeconds, new KeyValuePair<string, object?>("generation", info.Generation));
                if (pause >= Long)
                {
                    LongPause(_logger, pause.TotalMilliseconds, info.Generation, Kinds[i], info.PromotedBytes / 1048576.0, info.HeapSizeBytes / 1048576.0, info.Compacted);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sampling, 0);
        }
    }

    public void Dispose() => _timer.Dispose();

    [LoggerMessage(EventId = 1220, Level = LogLevel.Warning, Message = "The gateway paused {Milliseconds:0} ms for a garbage collection of generation {Generation} ({Kind}): promoted {PromotedMiB:0.#} MiB, heap {HeapMiB:0} MiB, compacted: {Compacted}; every reply waited")]
    private static partial void LongPause(ILogger logger, double milliseconds, int generation, GCKind kind, double promotedMiB, double heapMiB, bool compacted);
}
