using System.Net.Sockets;
using System.Text;
using Resh.Clients;

namespace Resh.IntegrationTests;

/// <summary>Malformed, oversized, slow and half-open clients get their error or are closed; nobody else notices.</summary>
public sealed class BadInputTests
{
    private static async Task<string> ReadUntilClosedAsync(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException)
            {
                break;
            }

            if (n == 0)
            {
                break;
            }

            received.Write(buffer, 0, n);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    private static async Task<Socket> RawAsync(Cluster cluster)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(cluster.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
        return socket;
    }

    [Fact]
    public async Task Bad_clients_get_errors_or_are_closed_while_a_good_client_keeps_being_served()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o => o.Gateway.IdleTimeout = TimeSpan.FromSeconds(1));
        var served = 0;

        // A well-behaved client, connected afresh each time (the 1 s idle timeout also closes idle good clients).
        async Task GoodClientWorksAsync()
        {
            await using var good = await cluster.ConnectAsync();
            var n = Interlocked.Increment(ref served);
            Assert.Equal("OK", (await good.CallAsync("SET", "good", n.ToString(System.Globalization.CultureInfo.InvariantCulture))).AsString());
            Assert.Equal(n.ToString(System.Globalization.CultureInfo.InvariantCulture), (await good.CallAsync("GET", "good")).AsString());
        }

        await GoodClientWorksAsync();

        // Malformed multibulk: protocol error, then the connection is closed.
        using (var s = await RawAsync(cluster))
        {
            await s.SendAsync(Encoding.ASCII.GetBytes("*1\r\n$abc\r\n"));
            var text = await ReadUntilClosedAsync(s);
            Assert.StartsWith("-ERR Protocol error", text, StringComparison.Ordinal);
        }

        await GoodClientWorksAsync();

        // An inline request beyond 64 KiB without a newline.
        using (var s = await RawAsync(cluster))
        {
            await s.SendAsync(Encoding.ASCII.GetBytes(new string('x', 70 * 1024)));
            var text = await ReadUntilClosedAsync(s);
            Assert.StartsWith("-ERR", text, StringComparison.Ordinal);
        }

        await GoodClientWorksAsync();

        // A bulk length over the limit is refused before any of it is buffered.
        using (var s = await RawAsync(cluster))
        {
            await s.SendAsync(Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$999999999999\r\n"));
            var text = await ReadUntilClosedAsync(s);
            Assert.StartsWith("-ERR", text, StringComparison.Ordinal);
        }

        await GoodClientWorksAsync();

        // A slow client that dribbles its request byte by byte still gets the right answer.
        using (var s = await RawAsync(cluster))
        {
            foreach (var b in RespClient.Encode("SET", "slow", "value"))
            {
                await s.SendAsync(new[] { b });
            }

            var buffer = new byte[5];
            var got = 0;
            while (got < 5)
            {
                got += await s.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            }

            Assert.Equal("+OK\r\n", Encoding.ASCII.GetString(buffer));
        }

        await GoodClientWorksAsync();

        // A half-open client (partial request, then silence) is closed by the idle timeout.
        using (var s = await RawAsync(cluster))
        {
            await s.SendAsync(Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$5\r\nhal"));
            var text = await ReadUntilClosedAsync(s);
            Assert.Equal("", text);
        }

        // A client that vanishes mid-pipeline does not disturb anyone.
        using (var s = await RawAsync(cluster))
        {
            var pipeline = Enumerable.Range(0, 500).SelectMany(i => RespClient.Encode("INCR", "vanish")).ToArray();
            await s.SendAsync(pipeline);
            s.Close(0);
        }

        await GoodClientWorksAsync();

        // Random garbage from many clients at once.
        var random = new Random(42);
        await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            using var s = await RawAsync(cluster);
            var junk = new byte[random.Next(1, 2000)];
            lock (random)
            {
                random.NextBytes(junk);
            }

            try
            {
                await s.SendAsync(junk);
                s.Shutdown(SocketShutdown.Send);
                await ReadUntilClosedAsync(s);
            }
            catch (SocketException)
            {
            }
        }));

        await GoodClientWorksAsync();
        Assert.True(cluster.Host.Ready);
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal(0, r.Recoveries));
    }

    [Fact]
    public async Task Inline_commands_and_pipelines_are_answered_in_order()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        using var s = await RawAsync(cluster);
        await s.SendAsync(Encoding.ASCII.GetBytes("SET inline 42\r\nGET inline\r\nINCR inline\r\n"));
        var expected = "+OK\r\n$2\r\n42\r\n:43\r\n";
        var buffer = new byte[expected.Length];
        var got = 0;
        while (got < buffer.Length)
        {
            got += await s.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(expected, Encoding.ASCII.GetString(buffer));

        await using var client = await cluster.ConnectAsync();
        var replies = await client.PipelineAsync([.. Enumerable.Range(0, 1000).Select(i => new[] { "INCR", "piped" })]);
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), replies.Select(r => r.Integer));
    }

    [Theory]
    [InlineData("max-pending-bytes")]
    [InlineData("write-timeout")]
    public async Task A_client_that_sends_and_never_reads_is_cut_off_while_others_are_served(string limit)
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o =>
        {
            // Either limit alone must catch it: a small byte cap with no timeout, or a short timeout with no byte cap.
            o.Gateway.MaxPendingBytes = limit == "max-pending-bytes" ? 1 << 20 : 1L << 40;
            o.Gateway.WriteTimeout = limit == "write-timeout" ? TimeSpan.FromSeconds(1) : TimeSpan.Zero;
        });
        await using (var setup = await cluster.ConnectAsync())
        {
            Assert.Equal("OK", (await setup.CallAsync("SET", "big", new string('x', 64 * 1024))).AsString());
        }

        // The flooder asks for the 64 KiB value over and over with a tiny receive window and never reads.
        using var flooder = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await flooder.ConnectAsync(cluster.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
        var request = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("GET big\r\n", 64)));
        var cutOff = false;
        var served = 0;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var good = await cluster.ConnectAsync();
        while (!cutOff && !deadline.IsCancellationRequested)
        {
            try
            {
                await flooder.SendAsync(request, SocketFlags.None, deadline.Token).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (Exception e) when (e is SocketException or TimeoutException or OperationCanceledException)
            {
                // A send that blocks only means the gateway stopped reading (max-pending); a socket error means it closed us.
                cutOff = e is SocketException;
            }

            // The good client is served all along.
            var n = (++served).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("OK", (await good.CallAsync("SET", "good", n).WaitAsync(TimeSpan.FromSeconds(10))).AsString());
            Assert.Equal(n, (await good.CallAsync("GET", "good").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        }

        Assert.True(cutOff, $"the flooder was still connected after 60 s ({served} rounds)");
        Assert.Equal(64 * 1024, (await good.CallAsync("STRLEN", "big")).Integer);
    }

    [Fact]
    public async Task Over_limits_memory_new_requests_get_OOM_until_a_checkpoint_cuts_the_log_and_nothing_acknowledged_is_lost()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o =>
        {
            o.Gateway.MemoryLimit = 1L << 40; // set for real below, once the host's own heap is known
            var checkpoint = Resh.Hosting.ReshOptions.RedisBackgroundCheckpoint();
            checkpoint.EveryEntries = 1_000_000; // only the memory guard asks for one
            o.Group.Checkpoint = checkpoint;
        });
        var limit = GC.GetTotalMemory(forceFullCollection: true) + (48L << 20);
        cluster.Host.Memory!.Limit = limit;
        await using var client = await cluster.ConnectAsync();

        // 1 MiB values: the in-memory log grows by about that much per write until the guard refuses.
        var value = new string('v', 1 << 20);
        var acked = new List<string>();
        string? refusal = null;
        for (var i = 0; i < 400 && refusal is null; i++)
        {
            var reply = await client.CallAsync("SET", $"big:{i}", value).WaitAsync(TimeSpan.FromSeconds(30));
            if (reply.IsError)
            {
                refusal = reply.AsString();
            }
            else
            {
                acked.Add($"big:{i}");
            }
        }

        Assert.NotNull(refusal);
        Assert.StartsWith("OOM resh: the gateway's memory is over service.limits.memory", refusal, StringComparison.Ordinal);

        // The guard asked for a checkpoint; once it cut the log and the heap is below the limit, requests are taken again.
        await Tools.WaitUntilAsync(
            async () => !(await client.CallAsync("SET", "after", "ok").WaitAsync(TimeSpan.FromSeconds(30))).IsError,
            TimeSpan.FromSeconds(120),
            "requests to be accepted again after a checkpoint");
        await Tools.WaitUntilAsync(() => cluster.Host.Events.Since().Any(e => e.Name == "+checkpoint"), TimeSpan.FromSeconds(60), "the checkpoint the memory guard asked for");
        foreach (var key in acked)
        {
            Assert.Equal(1 << 20, (await client.CallAsync("STRLEN", key).WaitAsync(TimeSpan.FromSeconds(30))).Integer);
        }
    }
}
