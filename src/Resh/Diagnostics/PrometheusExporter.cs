using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Resh.Diagnostics;

/// <summary>
/// Collects the measurements of one meter and renders them in the Prometheus text format
/// (version 0.0.4): counters get _total, histograms _bucket/_sum/_count, names get base-unit suffixes.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] Buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly MeterListener _listener = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<Instrument, Series> _series = [];
    private readonly Dictionary<(string?, object?, string?, object?), string> _labelCache = [];

    public PrometheusExporter(string meterName)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public string Render()
    {
        _listener.RecordObservableInstruments();
        var sb = new StringBuilder();
        lock (_lock)
        {
            foreach (var (instrument, series) in _series.OrderBy(p => p.Key.Name, StringComparer.Ordinal))
            {
                var name = MetricName(instrument);
                var type = instrument switch
                {
                    Histogram<double> or Histogram<long> => "histogram",
                    Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<double> => "counter",
                    _ => "gauge",
                };
                sb.Append("# HELP ").Append(name).Append(' ').Append(instrument.Description ?? "").Append('\n');
                sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
                foreach (var (labels, point) in series.Points.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (type == "histogram")
                    {
                        long cumulative = 0;
                        for (var b = 0; b < Buckets.Length; b++)
                        {
                            cumulative += point.Buckets![b];
                            AppendSample(sb, name + "_bucket", Join(labels, "le=\"" + Format(Buckets[b]) + "\""), cumulative);
                        }

                        AppendSample(sb, name + "_bucket", Join(labels, "le=\"+Inf\""), point.Count);
                        AppendSample(sb, name + "_sum", labels, point.Value);
                        AppendSample(sb, name + "_count", labels, point.Count);
                    }
                    else
                    {
                        AppendSample(sb, type == "counter" ? name + "_total" : name, labels, point.Value);
                    }
                }
            }
        }

        return sb.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        lock (_lock)
        {
            // Measurements come per request: the label text is built once per distinct tag set, not per call.
            string labels;
            if (tags.Length <= 2)
            {
                var key = (tags.Length > 0 ? tags[0].Key : null, tags.Length > 0 ? tags[0].Value : null, tags.Length > 1 ? tags[1].Key : null, tags.Length > 1 ? tags[1].Value : null);
                if (!_labelCache.TryGetValue(key, out labels!))
                {
                    labels = Labels(tags);
                    _labelCache.Add(key, labels);
                }
            }
            else
            {
                labels = Labels(tags);
            }

            if (!_series.TryGetValue(instrument, out var series))
            {
                series = new Series();
                _series.Add(instrument, series);
            }

            if (!series.Points.TryGetValue(labels, out var point))
            {
                point = new Point(instrument is Histogram<double> or Histogram<long> ? new long[Buckets.Length] : null);
                series.Points.Add(labels, point);
            }

            switch (instrument)
            {
                case Histogram<double> or Histogram<long>:
                    point.Value += value;
                    point.Count++;
                    var index = Array.FindIndex(Buckets, b => value <= b);
                    if (index >= 0)
                    {
                        point.Buckets![index]++;
                    }

                    break;
                case Counter<long> or Counter<int> or Counter<double> or UpDownCounter<long> or UpDownCounter<int>:
                    point.Value += value;
                    break;
                default:
                    point.Value = value;
                    break;
            }
        }
    }

    private static string MetricName(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_').Replace('-', '_');
        var suffix = instrument.Unit switch
        {
            "s" => "_seconds",
            "By" => "_bytes",
            _ => "",
        };
        return name.EndsWith(suffix, StringComparison.Ordinal) ? name : name + suffix;
    }

    private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0)
        {
            return "";
        }

        var parts = new List<string>(tags.Length);
        foreach (var tag in tags)
        {
            var value = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? "";
            parts.Add(tag.Key.Replace('.', '_') + "=\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n") + "\"");
        }

        parts.Sort(StringComparer.Ordinal);
        return string.Join(',', parts);
    }

    private static string Join(string labels, string extra) => labels.Length == 0 ? extra : labels + "," + extra;

    private static void AppendSample(StringBuilder sb, string name, string labels, double value)
    {
        sb.Append(name);
        if (labels.Length > 0)
        {
            sb.Append('{').Append(labels).Append('}');
        }

        sb.Append(' ').Append(Format(value)).Append('\n');
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class Series
    {
        public Dictionary<string, Point> Points { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Point(long[]? buckets)
    {
        public double Value { get; set; }

        public long Count { get; set; }

        public long[]? Buckets { get; } = buckets;
    }
}
