using System.Diagnostics;
using System.Net;
using Resh.Domains;
using Resh.Protocols.Resp;
using StackExchange.Redis;

namespace Resh.IntegrationTests;

/// <summary>
/// The RDB digest on files written by a real redis-server: every type and the encodings Redis 7.0 writes (listpack,
/// quicklist with packed and plain nodes, intset, hash tables, skiplists, streams with consumer groups, functions,
/// expiry, two databases). Two servers holding the same data through different histories (so different encodings)
/// must digest alike exactly when DEBUG DIGEST says they are equal.
/// </summary>
public sealed class RdbDigestTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly List<RedisProcess> _servers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Equal_data_in_different_encodings_digests_alike_and_any_change_shows()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var a = await StartAsync();
        var b = await StartAsync();
        await PopulateAsync(a, b: false);
        await PopulateAsync(b, b: true);

        // The histories differ, so do encodings; Redis itself says the data is equal.
        Assert.Equal("intset", (string?)await a.Db.ExecuteAsync("OBJECT", "ENCODING", "S:ints"));
        Assert.Equal("hashtable", (string?)await b.Db.ExecuteAsync("OBJECT", "ENCODING", "S:ints"));
        Assert.Equal("listpack", (string?)await a.Db.ExecuteAsync("OBJECT", "ENCODING", "h:small"));
        Assert.Equal("hashtable", (string?)await b.Db.ExecuteAsync("OBJECT", "ENCODING", "h:small"));
        Assert.Equal("skiplist", (string?)await b.Db.ExecuteAsync("OBJECT", "ENCODING", "z:small"));
        Assert.Equal(await a.DebugDigestAsync(), await b.DebugDigestAsync());

        var digestA = await a.RdbDigestAsync();
        var digestB = await b.RdbDigestAsync();
        Assert.Equal(digestA, digestB);
        Assert.Contains(" db0=", digestA, StringComparison.Ordinal);
        Assert.Contains(" db1=1", digestA, StringComparison.Ordinal);
        Assert.NotEqual(await File.ReadAllBytesAsync(a.DumpPath), await File.ReadAllBytesAsync(b.DumpPath));

        // Each change Redis sees, the digest sees: a hash value, an expiry, a score, a list's order, a stream entry
        // deleted, a pending entry acknowledged, a function.
        // DEBUG DIGEST sees only whether a key has a deadline; the digest sees the deadline (the gateway makes it the same
        // on every replica).
        (string What, string[] Change, string[] Back, bool RedisSees)[] changes =
        [
            ("h:big", ["HSET", "h:big", "f7", "other"], ["HSET", "h:big", "f7", "v7"], true),
            ("e:key", ["PEXPIREAT", "e:key", "4102444800001"], ["PEXPIREAT", "e:key", "4102444800000"], false),
            ("z:big", ["ZADD", "z:big", "0.25", "m3"], ["ZADD", "z:big", "1.5", "m3"], true),
            ("l:small", ["LSET", "l:small", "0", "b"], ["LSET", "l:small", "0", "a"], true),
        ];
        foreach (var (what, change, back, redisSees) in changes)
        {
            await b.Db.ExecuteAsync(change[0], change[1..].Cast<object>().ToArray());
            Assert.Equal(redisSees, await a.DebugDigestAsync() != await b.DebugDigestAsync());
            Assert.True(digestA != await b.RdbDigestAsync(), $"a change of {what} was not seen");
            await b.Db.ExecuteAsync(back[0], back[1..].Cast<object>().ToArray());
            Assert.Equal(digestA, await b.RdbDigestAsync());
        }

        // What DEBUG DIGEST leaves out but a restored replica would differ in: a consumer group's pending entries, functions.
        await b.Db.ExecuteAsync("XACK", "x:stream", "g1", "1-3");
        var acked = await b.RdbDigestAsync();
        Assert.NotEqual(digestA, acked);
        await b.Db.ExecuteAsync("FUNCTION", "DELETE", "reshlib");
        Assert.NotEqual(acked, await b.RdbDigestAsync());
    }

    [Fact]
    public async Task A_DUMP_of_equal_data_compares_equal_in_any_encoding_for_a_state_transfer_vote()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var a = await StartAsync();
        var b = await StartAsync();
        await PopulateAsync(a, b: false);
        await PopulateAsync(b, b: true);
        var protocol = new RespProtocol();
        async Task<(byte[] Reply, string? Normalized)> DumpAsync(RedisProcess server, string key)
        {
            var payload = (byte[])(await server.Db.ExecuteAsync("DUMP", key).WaitAsync(Timeout))!;
            var reply = System.Text.Encoding.ASCII.GetBytes($"${payload.Length}\r\n").Concat(payload).Concat("\r\n"u8.ToArray()).ToArray();
            var normalized = new System.Buffers.ArrayBufferWriter<byte>();
            return (reply, protocol.TryNormalize(reply, RespReplyOrder.StateDump, normalized) ? System.Text.Encoding.ASCII.GetString(normalized.WrittenSpan) : null);
        }

        var keys = ((RedisResult[])(await a.Db.ExecuteAsync("KEYS", "*").WaitAsync(Timeout))!).Select(k => (string)k!).ToList();
        Assert.True(keys.Count >= 10);
        var differentBytes = 0;
        foreach (var key in keys)
        {
            var (replyA, normalA) = await DumpAsync(a, key);
            var (replyB, normalB) = await DumpAsync(b, key);
            Assert.NotNull(normalA);
            Assert.Equal(normalA, normalB);
            differentBytes += replyA.AsSpan().SequenceEqual(replyB) ? 0 : 1;
        }

        // The encodings differ (an intset and a hash table, a listpack and a hash table), so some DUMPs do byte for byte.
        Assert.True(differentBytes >= 2, $"only {differentBytes} DUMPs differ in their bytes");

        // A change shows; a damaged payload is compared byte for byte (its checksum fails).
        var before = (await DumpAsync(b, "h:big")).Normalized;
        await b.Db.ExecuteAsync("HSET", "h:big", "f7", "other").WaitAsync(Timeout);
        var (changed, normalChanged) = await DumpAsync(b, "h:big");
        Assert.NotEqual(before, normalChanged);
        changed[changed.Length / 2] ^= 0x01;
        var damaged = new System.Buffers.ArrayBufferWriter<byte>();
        Assert.True(protocol.TryNormalize(changed, RespReplyOrder.StateDump, damaged));
        Assert.Equal(changed, damaged.WrittenSpan.ToArray());

        // A state read's replies come as one run: each DUMP in it is compared by content, the rest as it is.
        var (setA, _) = await DumpAsync(a, "S:ints");
        var (setB, _) = await DumpAsync(b, "S:ints");
        Assert.NotEqual(setA, setB);
        string Run(byte[] dump)
        {
            var output = new System.Buffers.ArrayBufferWriter<byte>();
            Assert.True(protocol.TryNormalize([.. dump, .. ":-1\r\n"u8, .. "$-1\r\n"u8, .. ":-2\r\n"u8], RespReplyOrder.StateDump, output));
            return System.Text.Encoding.ASCII.GetString(output.WrittenSpan);
        }

        Assert.Equal(Run(setA), Run(setB));
        Assert.EndsWith(":-1\r\n$-1\r\n:-2\r\n", Run(setA), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_dump_is_refused_not_digested()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var a = await StartAsync();
        await PopulateAsync(a, b: false);
        await a.RdbDigestAsync();
        var bytes = await File.ReadAllBytesAsync(a.DumpPath);
        bytes[bytes.Length / 2] ^= 0x20;
        var damaged = Path.Combine(a.Directory, "damaged.rdb");
        await File.WriteAllBytesAsync(damaged, bytes);
        var error = Assert.Throws<InvalidDataException>(() => RdbDigest.Compute(damaged));
        Assert.Contains("damaged.rdb", error.Message, StringComparison.Ordinal);
    }

    private async Task<RedisProcess> StartAsync()
    {
        var server = await RedisProcess.StartAsync();
        _servers.Add(server);
        return server;
    }

    /// <summary>The same data on both; <paramref name="b"/> reaches it through another history (other encodings, other order).</summary>
    private static async Task PopulateAsync(RedisProcess server, bool b)
    {
        var db = server.Db;
        var steps = new List<Func<Task>>
        {
            async () =>
            {
                await db.StringSetAsync("s:int", "12345");
                await db.ExecuteAsync("PEXPIREAT", "s:int", "4102444800000");
            },
            () => db.StringSetAsync("s:neg", "-42"),
            () => db.StringSetAsync("s:long", new string('a', 5000) + "tail"),
            () => db.StringSetAsync("s:bin", Enumerable.Range(0, 256).Select(i => (byte)i).ToArray()),
            () => b
                ? db.ListLeftPushAsync("l:small", ["9999999999", "2147483648", "-40000", "70000", "5000", "-3", "300", "1", "b", "a"])
                : db.ListRightPushAsync("l:small", ["a", "b", "1", "300", "-3", "5000", "70000", "-40000", "2147483648", "9999999999"]),
            () => db.ListRightPushAsync("l:big", Enumerable.Range(0, 3000).Select(i => (RedisValue)$"{i:D6}{new string('x', 94)}").ToArray()),
            async () =>
            {
                if (!b)
                {
                    // A plain quicklist node: an element above the packed threshold.
                    await db.ExecuteAsync("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100");
                }

                await db.ListRightPushAsync("l:plain", ["small", new string('p', 300), "end"]);
            },
            async () =>
            {
                await db.SetAddAsync("S:ints", ["1", "2", "3", "-5"]);
                if (b)
                {
                    await db.SetAddAsync("S:ints", "word");
                    await db.SetRemoveAsync("S:ints", "word");
                }
            },
            () => db.SetAddAsync("S:strs", ["c", "a", "b"]),
            () => db.SetAddAsync("S:big", Enumerable.Range(0, 600).Select(i => (RedisValue)i).ToArray()),
            async () =>
            {
                await db.HashSetAsync("h:small", [new("f1", "v1"), new("f2", "2")]);
                if (b)
                {
                    await db.HashSetAsync("h:small", "f1", new string('v', 100));
                    await db.HashSetAsync("h:small", "f1", "v1");
                }
            },
            () => db.HashSetAsync("h:big", Enumerable.Range(0, 200).Select(i => new HashEntry($"f{i}", $"v{i}")).ToArray()),
            async () =>
            {
                await db.SortedSetAddAsync("z:small", [new("a", 1), new("b", 2.5), new("c", double.NegativeInfinity)]);
                if (b)
                {
                    await db.SortedSetAddAsync("z:small", new string('m', 100), 1);
                    await db.SortedSetRemoveAsync("z:small", new string('m', 100));
                }
            },
            () => db.SortedSetAddAsync("z:big", Enumerable.Range(0, 200).Select(i => new SortedSetEntry($"m{i}", i * 0.5)).ToArray()),
            async () =>
            {
                for (var i = 1; i <= 50; i++)
                {
                    await db.ExecuteAsync("XADD", "x:stream", $"1-{i}", "f", $"v{i}", i % 7 == 0 ? "extra" : "f2", "x");
                }

                await db.ExecuteAsync("XDEL", "x:stream", "1-10", "1-11");
                await db.ExecuteAsync("XGROUP", "CREATE", "x:stream", "g1", "0");
                await db.ExecuteAsync("XGROUP", "CREATE", "x:stream", "g2", "$");
                await db.ExecuteAsync("XREADGROUP", "GROUP", "g1", "c1", "COUNT", "5", "STREAMS", "x:stream", ">");
                await db.ExecuteAsync("XREADGROUP", "GROUP", "g1", "c2", "COUNT", "3", "STREAMS", "x:stream", ">");

                // Delivery times as the gateway stamps them: the same on every replica.
                await db.ExecuteAsync("XCLAIM", "x:stream", "g1", "c1", "0", "1-1", "1-2", "1-3", "1-4", "1-5", "TIME", "1700000000000", "JUSTID");
                await db.ExecuteAsync("XCLAIM", "x:stream", "g1", "c2", "0", "1-6", "1-7", "1-8", "TIME", "1700000000000", "JUSTID");
                await db.ExecuteAsync("XACK", "x:stream", "g1", "1-2");
            },
            async () =>
            {
                await db.StringSetAsync("e:key", "v");
                await db.ExecuteAsync("PEXPIREAT", "e:key", "4102444800000");
            },
            () => db.ExecuteAsync("FUNCTION", "LOAD", "#!lua name=reshlib\nredis.register_function('reshf', function() return 1 end)"),
            () => server.Connection.GetDatabase(1).StringSetAsync("other-db", "1"),
        };
        if (b)
        {
            // Another order of creation; the stream last, as on a (the ids and delivery stamps do not depend on it).
            var stream = steps[14];
            steps.RemoveAt(14);
            steps.Reverse();
            steps.Add(stream);
        }

        foreach (var step in steps)
        {
            await step().WaitAsync(Timeout);
        }
    }

    /// <summary>A redis-server on a free loopback port with its own data directory.</summary>
    private sealed class RedisProcess : IAsyncDisposable
    {
        private readonly Process _process;

        private RedisProcess(Process process, string directory, ConnectionMultiplexer connection)
        {
            _process = process;
            Directory = directory;
            Connection = connection;
        }

        public string Directory { get; }

        public ConnectionMultiplexer Connection { get; }

        public IDatabase Db => Connection.GetDatabase(0);

        public string DumpPath => Path.Combine(Directory, "dump.rdb");

        public static async Task<RedisProcess> StartAsync()
        {
            var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
            var dir = System.IO.Directory.CreateTempSubdirectory("resh-rdb-").FullName;
            var process = Process.Start(new ProcessStartInfo("redis-server", ["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--enable-debug-command", "local"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                ConnectionMultiplexer? connection = null;
                var clock = Stopwatch.StartNew();
                while (connection is null)
                {
                    try
                    {
                        connection = await ConnectionMultiplexer.ConnectAsync(new ConfigurationOptions { EndPoints = { new IPEndPoint(IPAddress.Loopback, port) }, AllowAdmin = true, AbortOnConnectFail = true, ConnectTimeout = 2000 }).WaitAsync(Timeout);
                    }
                    catch (RedisConnectionException) when (clock.Elapsed < Timeout && !process.HasExited)
                    {
                        await Task.Delay(50);
                    }
                }

                return new RedisProcess(process, dir, connection);
            }
            catch
            {
                process.Kill();
                await process.WaitForExitAsync();
                process.Dispose();
                System.IO.Directory.Delete(dir, recursive: true);
                throw;
            }
        }

        public async Task<string> DebugDigestAsync() => (string)(await Db.ExecuteAsync("DEBUG", "DIGEST").WaitAsync(Timeout))!;

        /// <summary>SAVE, then the digest of the file it wrote.</summary>
        public async Task<string> RdbDigestAsync()
        {
            await Db.ExecuteAsync("SAVE").WaitAsync(Timeout);
            return RdbDigest.Compute(DumpPath);
        }

        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            if (!_process.HasExited)
            {
                _process.Kill();
            }

            await _process.WaitForExitAsync().WaitAsync(Timeout);
            _process.Dispose();
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
