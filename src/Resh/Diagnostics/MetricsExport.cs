using System.Diagnostics.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Resh.Diagnostics;

/// <summary>
/// The gateway's <see cref="System.Diagnostics.Metrics"/> instruments in Prometheus's text format, through
/// OpenTelemetry's maintained exporter (served by the admin endpoint's /metrics). Names follow Prometheus's conventions
/// as before: dots become underscores, counters end in _total, a unit of seconds or bytes becomes a suffix. Every scrape
/// is fresh (no response cache), and only the instruments (the gateway's and the runtime's) are exported (no scope labels, no target_info series).
/// </summary>
public sealed class MetricsExport : IDisposable
{
    /// <summary>Latency buckets in seconds, from 100 µs to 10 s: replies, checkpoint pauses, epochs, activations.</summary>
    private static readonly double[] Buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public MetricsExport(string meterName)
    {
        Provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(meterName)
            // The runtime's own instruments (dotnet_gc_*, dotnet_thread_pool_*, dotnet_process_cpu_time_*): what the
            // gateway allocates and collects per request is read from them.
            .AddMeter("System.Runtime")
            .AddView(instrument => instrument is Histogram<double> or Histogram<long> ? new ExplicitBucketHistogramConfiguration { Boundaries = Buckets } : null)
            .AddPrometheusExporter(o =>
            {
                o.ScrapeResponseCacheDurationMilliseconds = 0;
                o.ScopeInfoEnabled = false;
                o.TargetInfoEnabled = false;
            })
            .Build();
    }

    /// <summary>The provider the admin endpoint scrapes.</summary>
    public MeterProvider Provider { get; }

    public void Dispose() => Provider.Dispose();
}
