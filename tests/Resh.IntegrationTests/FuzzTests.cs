using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Resh.Hosting;

namespace Resh.IntegrationTests;

/// <summary>
/// Malformed, truncated and oversized RESP from several connections at once, while a well-behaved client works:
/// the gateway must answer the good client correctly all through, never crash, and keep its memory bounded.
/// </summary>
public sealed class FuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int FuzzConnections = 4;
    private const int FramesPerConnection = 50_000;

    /// <summary>The bound this test states for the managed heap above where it started (2 cores, 2026-12-06: 72 MiB at the peak).</summary>
    private const long HeapBound = 256L << 20;

    [Fact]
    public async Task Two_hundred_thousand_bad_frames_leave_a_good_client_served_correctly_in_bounded_memory()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o =>
        {
            o.Resp.MaxBulkBytes = 1 << 20;
            o.Resp.MaxArguments = 10_000;
            o.Resp.MaxQueryBufferBytes = 4 << 20;
            var checkpoint = ReshOptions.RedisBackgroundCheckpoint();
            checkpoint.EveryEntries = 20_000;
            o.Group.Checkpoint = checkpoint;
        });

        GC.Collect();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: false) - baseline);
                await Task.Delay(50);
            }
        });

        var fuzzers = Enumerable.Range(0, FuzzConnections).Select(i => Task.Run(() => FuzzAsync(cluster, seed: 1000 + i))).ToArray();
        var goodRounds = 0;
        await using (var good = await cluster.ConnectAsync())
        {
            while (!fuzzers.All(f => f.IsCompleted))
            {
                var n = (++goodRounds).ToString(CultureInfo.InvariantCulture);
                Assert.Equal("OK", (await good.CallAsync("SET", "good:" + n, "v" + n).WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                Assert.Equal("v" + n, (await good.CallAsync("GET", "good:" + n).WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                Assert.Equal(goodRounds, (await good.CallAsync("INCR", "good:count").WaitAsync(TimeSpan.FromSeconds(30))).Integer);
            }
        }

        var stats = await Task.WhenAll(fuzzers).WaitAsync(TimeSpan.FromMinutes(5));
        stop.Cancel();
        await sampler;

        output.WriteLine($"{stats.Sum(s => s.Frames)} frames, {stats.Sum(s => s.Reconnects)} connections, {goodRounds} good rounds, heap peak +{peak >> 20} MiB");
        Assert.Equal(FuzzConnections * FramesPerConnection, stats.Sum(s => s.Frames));
        Assert.True(stats.Sum(s => s.Reconnects) > 1000, "the fatal frames closed connections, as they must");
        Assert.True(goodRounds > 10, $"the good client ran all through ({goodRounds} rounds)");
        Assert.True(peak < HeapBound, $"the gateway's heap grew by {peak >> 20} MiB, more than {HeapBound >> 20} MiB");
        await cluster.WaitHealthyAsync();
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal(0, r.Mismatches));

        // Every acknowledged write of the good client is there.
        await using var check = await cluster.ConnectAsync();
        Assert.Equal(goodRounds, (await check.CallAsync("GET", "good:count")).AsString() is { } count ? int.Parse(count, CultureInfo.InvariantCulture) : -1);
        Assert.Equal("v1", (await check.CallAsync("GET", "good:1")).AsString());
    }

    private static async Task<(int Frames, int Reconnects)> FuzzAsync(Cluster cluster, int seed)
    {
        var random = new Random(seed);
        var frames = 0;
        var reconnects = 0;
        while (frames < FramesPerConnection)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(cluster.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            var drain = DrainAsync(socket);
            try
            {
                var batch = new MemoryStream();
                var fatal = false;
                while (frames < FramesPerConnection && !fatal)
                {
                    fatal = WriteFrame(random, batch);
                    frames++;
                    if (batch.Length > 16 * 1024 || fatal)
                    {
                        await socket.SendAsync(batch.ToArray(), SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
                        batch.SetLength(0);
                    }
                }

                if (batch.Length > 0)
                {
                    await socket.SendAsync(batch.ToArray(), SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
                }
            }
            catch (SocketException)
            {
                // The gateway closed the connection at a fatal frame while more was on its way: expected.
            }

            socket.Shutdown(SocketShutdown.Send);
            await drain.WaitAsync(TimeSpan.FromSeconds(60));
            reconnects++;
        }

        return (frames, reconnects);
    }

    /// <summary>Reads and drops replies until the gateway closes the connection.</summary>
    private static async Task DrainAsync(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
    }

    /// <summary>Writes one frame; true when it is one the gateway must end the connection for.</summary>
    private static bool WriteFrame(Random random, MemoryStream output)
    {
        var kind = random.Next(100);
        switch (kind)
        {
            case < 30:
                // Valid commands on keys of their own, with binary values.
                var key = "fz:" + random.Next(1000).ToString(CultureInfo.InvariantCulture);
                var command = random.Next(4) switch
                {
                    0 => new[] { "SET", key, Binary(random, random.Next(200)) },
                    1 => ["GET", key],
                    2 => ["DEL", key],
                    _ => ["APPEND", key, Binary(random, random.Next(50))],
                };
                Multibulk(output, command);
                return false;
            case < 50:
                // Unknown commands and random arguments.
                Multibulk(output, [.. Enumerable.Range(0, 1 + random.Next(5)).Select(_ => Binary(random, random.Next(1, 20)))]);
                return false;
            case < 60:
                // Known commands with the wrong number of arguments.
                Multibulk(output, random.Next(3) switch { 0 => ["GET"], 1 => ["SET", "fz:x"], _ => ["INCR", "fz:a", "fz:b", "fz:c"] });
                return false;
            case < 70:
                // Inline commands, some of them garbage words.
                Ascii(output, random.Next(2) == 0 ? "PING\r\n" : $"{Printable(random, random.Next(1, 30))}\r\n");
                return false;
            case < 80:
                // Empty frames that are still legal.
                Ascii(output, random.Next(3) switch { 0 => "*0\r\n", 1 => "*-1\r\n", _ => "\r\n" });
                return false;
            default:
                // Fatal: broken framing, oversized lengths, truncation.
                Ascii(output, random.Next(7) switch
                {
                    0 => "*abc\r\n",
                    1 => "*1\r\n$x\r\n",
                    2 => "*1\r\n$999999999\r\n",
                    3 => "*99999999\r\n",
                    4 => "*1\r\n+OK\r\n",
                    5 => "*2\r\n$3\r\nGET\r\n$10\r\nabc",
                    _ => "*1\r\n$-5\r\n",
                });
                if (random.Next(3) == 0)
                {
                    output.Write(Encoding.Latin1.GetBytes(Binary(random, random.Next(1, 64))));
                }

                return true;
        }
    }

    private static void Multibulk(MemoryStream output, IReadOnlyList<string> arguments)
    {
        Ascii(output, $"*{arguments.Count}\r\n");
        foreach (var argument in arguments)
        {
            var bytes = Encoding.Latin1.GetBytes(argument);
            Ascii(output, $"${bytes.Length}\r\n");
            output.Write(bytes);
            Ascii(output, "\r\n");
        }
    }

    private static void Ascii(MemoryStream output, string text) => output.Write(Encoding.ASCII.GetBytes(text));

    private static string Binary(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return Encoding.Latin1.GetString(bytes);
    }

    private static string Printable(Random random, int length) =>
        new([.. Enumerable.Range(0, length).Select(_ => (char)random.Next(33, 127))]);
}
