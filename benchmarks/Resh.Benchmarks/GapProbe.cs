using System.Diagnostics;
using System.Globalization;
using System.Net;
using Resh.Clients;

namespace Resh.Benchmarks;

/// <summary>
/// What a client sees of a service that moves: one connection doing SET after SET, reconnecting at once when it breaks,
/// until SIGTERM (or the given seconds); prints the longest time between two acknowledged writes, when it began (Unix ms),
/// the writes and the reconnects, and the longest gap with a reconnect in it (the move itself, when the service moved).
/// Unacknowledged writes are not retried.
/// </summary>
internal static class GapProbe
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length < 2 || !IPEndPoint.TryParse(args[1], out var service))
        {
            await Console.Error.WriteLineAsync("usage: gap-probe HOST:PORT [SECONDS]");
            return 2;
        }

        var seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 3600;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        var last = 0L;
        var longest = 0L;
        var longestFrom = 0L;
        var writes = 0L;
        var reconnects = 0;
        var brokeAt = 0L;
        var connectedAt = 0L;
        var detail = "";
        var moved = 0L;
        RespClient? client = null;
        for (var i = 0; !stop.IsCancellationRequested; i++)
        {
            try
            {
                if (client is null)
                {
                    client = await RespClient.ConnectAsync(service, stop.Token);
                    connectedAt = Stopwatch.GetTimestamp();
                }

                var reply = await client.CallAsync("SET", $"probe:{i % 1000}", i.ToString(CultureInfo.InvariantCulture)).WaitAsync(TimeSpan.FromSeconds(30), stop.Token);
                if (reply.AsString() != "OK")
                {
                    continue;
                }

                var now = Stopwatch.GetTimestamp();
                if (last != 0 && brokeAt > last && now - last > moved)
                {
                    // The longest gap with a reconnect in it: the move itself, whatever else the run saw.
                    moved = now - last;
                }

                if (last != 0 && now - last > longest)
                {
                    longest = now - last;
                    longestFrom = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (long)Stopwatch.GetElapsedTime(last, now).TotalMilliseconds;
                    detail = brokeAt > last
                        ? string.Create(CultureInfo.InvariantCulture, $" (broken after {Stopwatch.GetElapsedTime(last, brokeAt).TotalMilliseconds:0} ms, connected again after {Stopwatch.GetElapsedTime(last, connectedAt).TotalMilliseconds:0} ms, first reply after {Stopwatch.GetElapsedTime(last, now).TotalMilliseconds:0} ms)")
                        : "";
                }

                last = now;
                writes++;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or TimeoutException or EndOfStreamException or InvalidDataException or OperationCanceledException)
            {
                reconnects++;
                brokeAt = Stopwatch.GetTimestamp();
                if (client is not null)
                {
                    await client.DisposeAsync();
                    client = null;
                }

                await Task.Delay(1, CancellationToken.None);
            }
        }

        if (client is not null)
        {
            await client.DisposeAsync();
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"longest_gap_ms {Stopwatch.GetElapsedTime(0, longest).TotalMilliseconds:0.0} from_unix_ms {longestFrom} writes {writes} reconnects {reconnects}{detail}; longest_gap_across_a_reconnect_ms {Stopwatch.GetElapsedTime(0, moved).TotalMilliseconds:0.0}"));
        return 0;
    }
}
