using System.Diagnostics;
using System.Globalization;
using Etcdserverpb;
using Google.Protobuf;
using HdrHistogram;
using Resh.Dresh;

namespace Resh.Benchmarks;

/// <summary>
/// The direct case of D-RESH's ordering: one client putting 100-byte values into etcd, one at a time, through the same
/// gRPC client the sequencer uses, and watching them as its watcher does; prints the p50 and p99 of a put and of a put until
/// its watch event arrived, in milliseconds (HdrHistogram, microsecond units).
/// </summary>
internal static class EtcdPutProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2 || !Uri.TryCreate(args[1], UriKind.Absolute, out var url))
        {
            await Console.Error.WriteLineAsync("usage: etcd-put URL [COUNT]");
            return 2;
        }

        var count = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000;
        using var etcd = new EtcdConnection(new EtcdOrderingOptions { Endpoints = [url] });
        using var stop = new CancellationTokenSource();

        // A watch on the keys put, as D-RESH's watcher: how long after the put's own answer its event arrives.
        var prefix = $"/bench/put/{Guid.NewGuid():N}/";
        using var watch = etcd.Watches.Watch(etcd.Stream(stop.Token));
        await EtcdConnection.OpenAsync(watch, new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(prefix[..^1] + "0") } }, stop.Token);
        await watch.ResponseStream.MoveNext(stop.Token);
        var put = new LongHistogram(10_000_000, 3);
        var seen = new LongHistogram(10_000_000, 3);
        var value = ByteString.CopyFrom(new byte[100]);
        for (var i = -100; i < count; i++)
        {
            var request = new PutRequest { Key = ByteString.CopyFromUtf8($"{prefix}{i}"), Value = value };
            var clock = Stopwatch.StartNew();

            // The watch's read is pending while the put goes out, as in the sequencer's watch loop.
            var next = watch.ResponseStream.MoveNext(stop.Token);
            await etcd.CallAsync(o => etcd.Kv.PutAsync(request, o), CancellationToken.None);
            var answered = clock.ElapsedTicks;
            while (await next && watch.ResponseStream.Current.Events.Count == 0)
            {
                next = watch.ResponseStream.MoveNext(stop.Token);
            }

            if (i >= 0)
            {
                put.RecordValue(answered * 1_000_000 / Stopwatch.Frequency);
                seen.RecordValue(clock.ElapsedTicks * 1_000_000 / Stopwatch.Frequency);
            }
        }

        await stop.CancelAsync();

        // put p50, put p99, put-to-watch-event p50, p99 (ms)
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Ms(put, 50)} {Ms(put, 99)} {Ms(seen, 50)} {Ms(seen, 99)}"));
        return 0;
    }

    private static string Ms(LongHistogram histogram, double percentile) => (histogram.GetValueAtPercentile(percentile) / 1000.0).ToString("0.000", CultureInfo.InvariantCulture);
}
