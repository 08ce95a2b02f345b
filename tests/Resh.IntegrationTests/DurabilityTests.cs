using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Resh.Cli;
using Resh.Clients;
using Resh.Domains;

namespace Resh.IntegrationTests;

/// <summary>The ordered log on disk: no acknowledged write is lost when the whole resh tree dies or stops.</summary>
public sealed class DurabilityTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-durable-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly int _port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
    private readonly int _adminPort = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);

    private string? _config;

    private string Config
    {
        get
        {
            if (_config is null)
            {
                Tools.Require("redis-server", "apt-get install redis-server");
                Directory.CreateDirectory(_dir);
                _config = Tools.WriteExample("redis-durable.yaml", _dir, _port, _adminPort);
            }

            return _config;
        }
    }

    public void Dispose()
    {
        // RESH_KEEP_TEST_LOGS=1 keeps the directory (configuration, state and the resh logs of the 1 GiB test).
        if (Directory.Exists(_dir) && Environment.GetEnvironmentVariable("RESH_KEEP_TEST_LOGS") != "1")
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private Task<Process> StartReshAsync() => Tools.StartReshAsync(Config);

    private string Snapshots => Path.Combine(_dir, ".resh-state", "redis-durable", "store", "snapshots");

    private bool HasCheckpoint() =>
        Directory.Exists(Snapshots) && Directory.EnumerateFiles(Snapshots, "*.json").Any(f => !Path.GetFileName(f).StartsWith('.'));

    private async Task<System.Text.Json.JsonElement> StatusAsync()
    {
        var output = new StringWriter();
        Assert.Equal(0, await ReshCli.RunAsync(["status", "--json", "--config", Config], output, new StringWriter()));
        return System.Text.Json.JsonDocument.Parse(output.ToString()).RootElement;
    }

    private Task AssertAllPresentAsync(IReadOnlyDictionary<string, string> acked) =>
        Tools.AssertAllReadableAsync(new IPEndPoint(IPAddress.Loopback, _port), acked);

    /// <summary>
    /// Four clients that SET fresh keys until <paramref name="stop"/> completes or their connection breaks (the kill);
    /// each acknowledged write goes into <paramref name="acked"/>, and <paramref name="written"/> gets the count of
    /// writes so far after each one.
    /// </summary>
    private Task[] StartWriters(string prefix, ConcurrentDictionary<string, string> acked, Task stop, Action<int> written)
    {
        var count = 0;
        return [.. Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
        {
            await using var client = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port));
            for (var i = 0; !stop.IsCompleted; i++)
            {
                var (key, value) = ($"{prefix}:{c}:{i}", $"v{i}:{Guid.NewGuid():N}");
                try
                {
                    var reply = await client.CallAsync("SET", key, value).WaitAsync(TimeSpan.FromSeconds(60));
                    if (reply.AsString() == "OK")
                    {
                        acked[key] = value;
                    }
                }
                catch (Exception e) when (e is EndOfStreamException or IOException or System.Net.Sockets.SocketException)
                {
                    return;
                }

                written(Interlocked.Increment(ref count));
            }
        }))];
    }

    [Fact]
    public async Task Kill_9_of_the_whole_resh_tree_under_load_loses_no_acknowledged_write()
    {
        var acked = new ConcurrentDictionary<string, string>();
        using (var resh = await StartReshAsync())
        {
            var checkpointSeenAt = 0;
            var killed = new TaskCompletionSource();
            var writers = StartWriters("d", acked, killed.Task, n =>
            {
                // Killed 200 writes after a checkpoint was stored: the restart needs both the checkpoint and the log.
                if (n >= 1500 && Volatile.Read(ref checkpointSeenAt) == 0 && HasCheckpoint())
                {
                    Interlocked.CompareExchange(ref checkpointSeenAt, n, 0);
                }

                if (Volatile.Read(ref checkpointSeenAt) is > 0 and var seen && n >= seen + 200 && killed.TrySetResult())
                {
                    // The whole tree at once, as a power cut would: gateway and all replicas.
                    resh.Kill(entireProcessTree: true);
                }
            });
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(2));
            await resh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.True(acked.Count >= 1500);
        using var again = await StartReshAsync();
        try
        {
            var status = await StatusAsync();
            var checkpoint = status.GetProperty("checkpoint").GetProperty("sequence").GetInt64();
            Assert.True(checkpoint > 0);
            Assert.Equal(checkpoint + 1, status.GetProperty("logFirst").GetInt64());
            Assert.True(status.GetProperty("head").GetInt64() >= checkpoint + 200, "the writes after the checkpoint come from the log");
            await AssertAllPresentAsync(acked);
        }
        finally
        {
            again.Kill(entireProcessTree: true);
            await again.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>
    /// The two restarts above with a data set of 1 GiB per replica and the example's checkpoints every 3 s (each one a
    /// fork, a 1 GiB save, a digest and a store of it, so they follow one another): kill -9 of the whole tree under a
    /// write load, then `resh stop` after more writes; every acknowledged write is there after each restart.
    /// </summary>
    [Fact]
    public async Task With_1_GiB_per_replica_and_checkpoints_every_3_s_kill_9_under_load_and_resh_stop_lose_nothing()
    {
        var logs = new[] { "first", "after-kill", "after-stop" }.Select(n => Path.Combine(Path.GetDirectoryName(Config)!, $"resh-{n}.log")).ToArray();
        try
        {
            await OneGiBRestartsAsync(logs);
        }
        catch
        {
            // What each resh run said, for a failure that happened far from its cause.
            foreach (var log in logs.Where(File.Exists))
            {
                output.WriteLine($"--- the end of {Path.GetFileName(log)}:");
                foreach (var line in File.ReadLines(log).TakeLast(60))
                {
                    output.WriteLine(line);
                }
            }

            throw;
        }
    }

    private async Task OneGiBRestartsAsync(string[] logs)
    {
        const int keys = 1_000_000;
        var values = Enumerable.Range(0, 256).Select(i =>
        {
            // Incompressible (Redis compresses each value in its dump): 1000 base64 characters.
            var bytes = new byte[750];
            new Random(i).NextBytes(bytes);
            return Convert.ToBase64String(bytes);
        }).ToArray();
        var acked = new ConcurrentDictionary<string, string>();
        var restart = TimeSpan.FromMinutes(3);
        var clock = Stopwatch.StartNew();
        using (var resh = await Tools.StartReshAsync(Config, log: logs[0]))
        {
            await using (var filler = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port)))
            {
                for (var i = 0; i < keys; i += 1000)
                {
                    var batch = Enumerable.Range(i, 1000).Select(k => new[] { "SET", $"big:{k}", values[k % values.Length] }).ToArray();
                    var replies = await filler.PipelineAsync(batch).WaitAsync(TimeSpan.FromSeconds(60));
                    Assert.All(replies, r => Assert.Equal("OK", r.AsString()));
                }
            }

            var filled = (await StatusAsync()).GetProperty("head").GetInt64();
            output.WriteLine($"filled {keys:N0} keys of 1000 bytes through the gateway in {clock.Elapsed.TotalSeconds:0.0} s");
            clock.Restart();
            var count = 0;
            var killed = new TaskCompletionSource();
            var stored = Tools.WaitUntilAsync(
                async () => (await StatusAsync()).GetProperty("checkpoint") is { ValueKind: System.Text.Json.JsonValueKind.Object } c && c.GetProperty("sequence").GetInt64() > filled,
                TimeSpan.FromMinutes(5),
                "a checkpoint of the whole 1 GiB data set, stored while writes go on");
            var writers = StartWriters("w", acked, killed.Task, n => Volatile.Write(ref count, n));

            await stored;
            output.WriteLine($"a checkpoint covering the fill stored {clock.Elapsed.TotalSeconds:0.0} s later, {Volatile.Read(ref count)} writes meanwhile");
            // 200 more writes after the checkpoint, then the whole tree at once: the restart needs the checkpoint and the log.
            var atCheckpoint = Volatile.Read(ref count);
            await Tools.WaitUntilAsync(() => Volatile.Read(ref count) >= atCheckpoint + 200, TimeSpan.FromSeconds(60), "200 writes after the checkpoint");
            killed.TrySetResult();
            resh.Kill(entireProcessTree: true);
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromMinutes(1));
            await resh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        clock.Restart();
        using (var again = await Tools.StartReshAsync(Config, restart, logs[1]))
        {
            output.WriteLine($"after kill -9: serving again in {clock.Elapsed.TotalSeconds:0.0} s, {acked.Count} acknowledged writes to check");
            var status = await StatusAsync();
            Assert.True(status.GetProperty("checkpoint").GetProperty("sequence").GetInt64() > 0);
            await AssertAllPresentAsync(acked);
            await AssertFilledAsync(keys, values, acked.Count);
            await AssertNoneRebuiltAsync();

            // More writes, then a controlled stop (its final checkpoint of 1 GiB may outlast its limit: then the log covers it).
            await using (var client = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port)))
            {
                for (var i = 0; i < 300; i++)
                {
                    Assert.Equal("OK", (await client.CallAsync("SET", $"after:{i}", $"value-{i}").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
                    acked[$"after:{i}"] = $"value-{i}";
                }
            }

            clock.Restart();
            Assert.Equal(0, await ReshCli.RunAsync(["stop", "--config", Config], new StringWriter(), new StringWriter()));
            await again.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            Assert.Equal(0, again.ExitCode);
            output.WriteLine($"resh stop took {clock.Elapsed.TotalSeconds:0.0} s");
        }

        clock.Restart();
        using var third = await Tools.StartReshAsync(Config, restart, logs[2]);
        output.WriteLine($"after resh stop: serving again in {clock.Elapsed.TotalSeconds:0.0} s");
        try
        {
            await AssertAllPresentAsync(acked);
            await AssertFilledAsync(keys, values, acked.Count);
            await AssertNoneRebuiltAsync();
        }
        finally
        {
            third.Kill(entireProcessTree: true);
            await third.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>
    /// No replica of the restarted gateway was suspected: each restored the checkpoint (seconds for 1 GiB) while the
    /// log from disk was already appended, and what it owed is timed from its start, not from that append.
    /// </summary>
    private async Task AssertNoneRebuiltAsync()
    {
        var replicas = (await StatusAsync()).GetProperty("replicas").EnumerateArray().ToList();
        Assert.Equal(3, replicas.Count);
        Assert.All(replicas, r => Assert.Equal(1, r.GetProperty("generation").GetInt32()));
    }

    /// <summary>
    /// Every key of the fill is there (by count) and a sample of them holds its value. Besides the fill and the
    /// <paramref name="others"/> acknowledged writes, each of the 4 writers may have had one write on disk whose
    /// reply the kill cut off.
    /// </summary>
    private async Task AssertFilledAsync(int keys, string[] values, int others)
    {
        await using var client = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port));
        Assert.InRange((await client.CallAsync("DBSIZE").WaitAsync(TimeSpan.FromSeconds(60))).Integer, keys + others, keys + others + 4);
        var sample = Enumerable.Range(0, 1000).Select(i => i * (keys / 1000) + (i % 7)).ToList();
        var replies = await client.PipelineAsync([.. sample.Select(k => new[] { "GET", $"big:{k}" })]).WaitAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < sample.Count; i++)
        {
            Assert.Equal(values[sample[i] % values.Length], replies[i].AsString());
        }
    }

    [Fact]
    public async Task Resh_stop_then_resh_run_keeps_every_write()
    {
        var acked = new Dictionary<string, string>();
        using (var resh = await StartReshAsync())
        {
            await using (var client = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _port)))
            {
                for (var i = 0; i < 300; i++)
                {
                    Assert.Equal("OK", (await client.CallAsync("SET", $"s:{i}", $"value-{i}")).AsString());
                    acked[$"s:{i}"] = $"value-{i}";
                }

                Assert.Equal(7, (await client.CallAsync("INCRBY", "counter", "7")).Integer);
                acked["counter"] = "7";
            }

            var taken = new StringWriter();
            Assert.Equal(0, await ReshCli.RunAsync(["checkpoint", "--config", Config], taken, new StringWriter()));
            Assert.StartsWith("checkpoint #", taken.ToString(), StringComparison.Ordinal);

            Assert.Equal(0, await ReshCli.RunAsync(["stop", "--config", Config], new StringWriter(), new StringWriter()));
            await resh.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, resh.ExitCode);
        }

        using var again = await StartReshAsync();
        try
        {
            // The final checkpoint covers everything: nothing is replayed. The one entry after it may be the expiry
            // keeper's sweep for keys with deadlines, which a gateway orders when it starts.
            var status = await StatusAsync();
            Assert.InRange(status.GetProperty("head").GetInt64() - status.GetProperty("checkpoint").GetProperty("sequence").GetInt64(), 0, 1);
            await AssertAllPresentAsync(acked);
        }
        finally
        {
            again.Kill(entireProcessTree: true);
            await again.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    [Fact]
    public async Task With_fsync_always_no_reply_is_released_before_its_request_is_on_disk()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o => o.DurableLog = Ordering.LogFsync.Always);
        var durable = cluster.Host.DurableLog!;
        await using var client = await cluster.ConnectAsync();
        Assert.Equal("OK", (await client.CallAsync("SET", "before", "1")).AsString());

        var gate = new SemaphoreSlim(0);
        durable.BeforeFlush = () => gate.WaitAsync();
        var head = cluster.Host.Log.Head;
        var reply = client.CallAsync("SET", "held", "2");

        // The replicas answer and the voter decides; the disk has not confirmed it yet.
        await cluster.WaitUntilAsync(s => s.Decided > head, "the request to be decided");
        Assert.True(durable.DurableCount <= head + 1);
        Assert.False(reply.IsCompleted);

        durable.BeforeFlush = null;
        gate.Release();
        Assert.Equal("OK", (await reply.WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        Assert.True(durable.DurableCount > head + 1);
    }
}
