using System.Net;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

/// <summary>
/// Replies compared byte for byte with a real redis-server 7 for the requests where they must match
/// (everything except KEYS order, RANDOMKEY, HELLO's server fields, COMMAND and DIGEST).
/// </summary>
public sealed class SampleKvRedisDifferentialTests : IClassFixture<SampleKvRedisFixture>
{
    private readonly SampleKvRedisFixture _redis;

    public SampleKvRedisDifferentialTests(SampleKvRedisFixture redis)
    {
        _redis = redis;
    }

    [SampleKvRedisFact]
    public async Task RandomSequence_MatchesRedis()
    {
        await CompareAsync(async (targets, clients) =>
        {
            var generator = new SampleKvCommandGenerator(2024, redisComparable: true);
            var connectionPicker = new Random(2024);
            for (int i = 0; i < 2500; i++)
            {
                string[] request = generator.Next();
                int connection = connectionPicker.Next(4) == 0 ? 1 : 0;
                await ExpectSameAsync(targets, clients, connection, request, $"request #{i}");
            }
        });
    }

    [SampleKvRedisFact]
    public async Task EdgeCases_MatchRedis()
    {
        string x100 = new('x', 100);
        string[][] script =
        [
            ["SELECT", "99999999999"], ["SELECT", "16"], ["SELECT", "-1"], ["SELECT", "abc"], ["SELECT", " 1"], ["SELECT", "1"],
            ["SET", "x", "1"], ["SELECT", "0"], ["GET", "x"],
            ["MULTI"], ["MULTI"], ["SET", "a", "1"], ["EXEC"], ["EXEC"], ["DISCARD"],
            ["MULTI"], ["SET", "a"], ["SET", "a", "b"], ["EXEC"],
            ["MULTI"], ["FOO"], ["EXEC"],
            ["MULTI"], ["SET", "k"], ["DISCARD"], ["MULTI"], ["GET", "k"], ["INCR", "a"], ["PING", "a", "b"], ["MSET", "a", "1", "b"], ["EXEC"],
            ["MULTI"], ["SET", "a", "1"], ["EXEC", "a"], ["EXEC"], ["EXEC", "b"],
            ["FOO", "a\r\nb", "c"], ["foo"], [new string('x', 200), new string('y', 200)], ["FOO", .. Enumerable.Repeat("abcdefghij", 20)],
            ["FOO\0bar", "a\0b"], ["FOO", x100, x100, x100], ["FOO", .. Enumerable.Repeat(new string('x', 50), 5)],
            ["SET", "k", "v", "EX", "0"], ["SET", "k", "v", "EX", "-5"], ["SET", "k", "v", "PX", "9223372036854775807"],
            ["SET", "k", "v", "EX", "9223372036854775"], ["SET", "k", "v", "EX", "x"], ["SET", "k", "v", "EX", "10", "PX", "5"],
            ["SET", "k", "v", "NX", "XX"], ["SET", "k", "v", "EX"], ["DEL", "k", "k2"], ["SET", "k", "v", "NX", "GET"],
            ["SET", "k", "w", "NX", "GET"], ["SET", "k2", "w", "XX", "GET"], ["SET", "k", "x", "GET", "GET"],
            ["SET", "k", "v", "KEEPTTL", "EX", "10"], ["SET", "k", "v", "EX", "10", "KEEPTTL"], ["SET", "k", "v", "GET", "NX"],
            ["SET", "k", "v", "nx\0zz"], ["SET", "k", "v", "XX", "NX"], ["SET", "k", "v", "foo"],
            ["DEL", "k"], ["PEXPIREAT", "k", "9223372036854775807"], ["SET", "k", "v"], ["PEXPIREAT", "k", "9223372036854775807"],
            ["EXPIRETIME", "k"], ["PEXPIRETIME", "k"], ["EXPIREAT", "k", "9223372036854775807"], ["EXPIREAT", "k", "100", "FOO"],
            ["EXPIREAT", "k", "100", "NX", "XX"], ["EXPIREAT", "k", "100", "GT", "LT"], ["EXPIREAT", "k", "x", "FOO"],
            ["EXPIREAT", "k", "4102444800500"], ["PEXPIREAT", "k", "4102444800500"], ["EXPIRETIME", "k"],
            ["EXPIREAT", "k", "4102444800", "GT"], ["EXPIREAT", "k", "4102444800", "LT"], ["PEXPIRETIME", "k"],
            ["EXPIREAT", "k", "4102444801", "NX"], ["EXPIREAT", "k", "4102444801", "XX"], ["PERSIST", "k"], ["PERSIST", "k"],
            ["EXPIRETIME", "k"], ["EXPIREAT", "k", "4102444801", "GT"], ["EXPIREAT", "k", "4102444801", "LT"], ["EXPIRETIME", "k"],
            ["EXPIREAT", "k", "1"], ["EXISTS", "k"], ["EXPIRETIME", "k"], ["EXPIREAT", "k", "-9223372036854776"],
            ["EXPIREAT", "nokey", "1", "xx\0a"], ["EXPIREAT", "k", "1", "Nx", "nX"],
            ["PING", "a", "b"], ["PING"], ["PING", "x"], ["ECHO"], ["MSET", "a"], ["MSET", "a", "1", "b"], ["MSETNX", "a", "1", "b"],
            ["DEL", "n", "m", "zz", "q"], ["INCRBY", "n", "9223372036854775807"], ["INCR", "n"], ["DECRBY", "n", "-9223372036854775808"],
            ["SET", "m", "-9223372036854775808"], ["DECR", "m"], ["INCRBY", "m", "x"], ["INCRBY", "zz", "-0"], ["INCRBY", "zz", "007"],
            ["SET", "q", "12345678901234567890"], ["INCR", "q"], ["SET", "q", " 1"], ["INCR", "q"], ["SET", "q", "+1"], ["INCR", "q"],
            ["SET", "q", "1\0"], ["INCR", "q"], ["SET", "q", "-1"], ["DECRBY", "q", "9223372036854775807"], ["DECR", "q"],
            ["INCRBY", "q", "9223372036854775807"], ["APPEND", "q", "0"], ["GET", "q"], ["INCRBY", "q", ""],
            ["FLUSHDB", "x"], ["FLUSHDB", "async", "x"], ["DBSIZE", "x"], ["FLUSHDB", "ASYNC"], ["DBSIZE"],
            ["HELLO", "4"], ["HELLO", "x"], ["HELLO", "3", "FOO"], ["HELLO", "3", "SETNAME"], ["HELLO", "3", "SETNAME", "a b"],
            ["HELLO", "3", "AUTH", "u"], ["HELLO", "1"], ["HELLO", "-1"], ["HELLO", "3", "AUTH", "a", "b", "SETNAME", "ok"],
            ["PING", "a\r\n"], ["ECHO", ""], ["GET", ""], ["SET", "", "e"], ["GET", ""], ["DEL", "", "", "q"], ["EXISTS", "", "", ""],
            ["MSET", "a", "1", "b", "2", "a", "3"], ["MGET", "a", "b", "c"], ["MSETNX", "c", "1", "a", "2"],
            ["MSETNX", "c", "1", "d", "2", "c", "3"], ["MGET", "c", "d"], ["GETSET", "c", "9"], ["GETSET", "zzz", "1"],
            ["SETNX", "zzz", "2"], ["SETNX", "zzy", "2"], ["APPEND", "new", "abc"], ["APPEND", "new", "def"], ["STRLEN", "new"], ["STRLEN", "none"],
            ["get", "a"], ["GeT", "a"], ["GET", "a", "b"], ["SET", "a"], ["GETSET", "a"], ["SETNX", "a"], ["DEL"], ["EXISTS"], ["INCR"],
            ["DECR", "a", "b"], ["INCRBY", "a"], ["DECRBY", "a"], ["APPEND", "a"], ["STRLEN"], ["MGET"], ["MSET"], ["MSETNX"], ["KEYS"],
            ["DBSIZE", "a"], ["RANDOMKEY", "a"], ["SELECT"], ["EXPIREAT", "a"], ["PEXPIREAT", "a"], ["PERSIST"], ["EXPIRETIME"],
            ["PEXPIRETIME"], ["MULTI", "a"], ["EXEC", "a"], ["DISCARD", "a"], ["ECHO", "a", "b"],
        ];
        await CompareAsync(async (targets, clients) =>
        {
            for (int i = 0; i < script.Length; i++)
            {
                await ExpectSameAsync(targets, clients, 0, script[i], $"script line {i}");
            }
        });
    }

    [SampleKvRedisFact]
    public async Task Resp3Nulls_MatchRedis()
    {
        await CompareAsync(async (targets, clients) =>
        {
            foreach (RespTestClient[] perTarget in clients)
            {
                Assert.StartsWith("%", await perTarget[0].CommandAsync("HELLO", "3"), StringComparison.Ordinal);
            }

            string[][] script =
            [
                ["GET", "nokey"], ["MGET", "nokey", "a"], ["SET", "nx1", "v", "XX"], ["SET", "a", "v", "NX", "GET"], ["SET", "a", "w", "XX", "GET"],
                ["SET", "zz", "v", "XX", "GET"], ["GETSET", "nokey2", "x"], ["MULTI"], ["GET", "nokey"], ["INCR", "a"], ["EXEC"],
            ];
            foreach (string[] request in script)
            {
                await ExpectSameAsync(targets, clients, 0, request, "RESP3");
            }
        });
    }

    [SampleKvRedisFact]
    public async Task InlineAndProtocolErrors_MatchRedis()
    {
        string[] streams =
        [
            "PING\r\nSET a \"x y\\x41\\n\" \r\nGET a\nECHO 'it\\'s'\r\n\r\n   \r\nECHO a\"b c\"d\r\nGET \"a\"b\r\n",
            "SET a \"x\r\nGET a\r\n",
            "*2\r\n$4\r\nECHO\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n*1\r\n:4\r\n",
            "*0\r\n*-1\r\nPING\r\n*x\r\n",
            "*1\r\n$-1\r\n",
            "*1\r\n$abc\r\n",
            "*2147483648\r\n",
            "*1\r\n$536870913\r\n",
            "*01\r\n$1\r\na\r\n",
            "QUIT x\r\nPING\r\n",
        ];
        foreach (string stream in streams)
        {
            await CompareAsync(async (targets, clients) =>
            {
                var replies = new List<string>[targets.Length];
                for (int t = 0; t < targets.Length; t++)
                {
                    RespTestClient client = clients[t][0];
                    client.ReadTimeout = TimeSpan.FromSeconds(2);
                    await client.SendRawAsync(stream);
                    replies[t] = [];
                    try
                    {
                        while (true)
                        {
                            replies[t].Add(await client.ReadReplyAsync());
                        }
                    }
                    catch (EndOfStreamException)
                    {
                        // Closed by the server after a protocol error or QUIT.
                    }
                    catch (OperationCanceledException)
                    {
                        // Still open and waiting for more input.
                    }
                }

                for (int t = 1; t < targets.Length; t++)
                {
                    Assert.True(replies[0].SequenceEqual(replies[t]),
                        $"stream [{SampleKvDifferentialTests.Describe(stream)}]: redis [{SampleKvDifferentialTests.Describe(replies[0])}] vs {targets[t]} [{SampleKvDifferentialTests.Describe(replies[t])}]");
                }
            }, connectionsPerTarget: 1);
        }
    }

    [SampleKvRedisFact]
    public async Task KeysGlobs_SelectTheSameKeysAsRedis()
    {
        string[] keys =
        [
            "a", "b", "ab", "abc", "a*c", "a?c", "a[c", "a]c", "a\\c", "", "\u0080", "\u00ff", "a-c", "^a", "foo", "fo", "f", "\0", "a\0b",
            "hello", "hallo", "hxllo", "h\\", "[", "]", "-", "*", "?", "\\",
        ];
        var patterns = new List<string>
        {
            "*", "**", "a*", "*c", "a?c", "a[bc]", "a[^b]*", "[a-c]*", "[c-a]*", "h[ae]llo", "h[^e]llo", "a\\*c", "a[\\]]c", "a[]c",
            "[", "[^", "a[", "\\", "*\\", "[\u0080-\u00ff]", "[\0-\u0080]", "[a-\u00ff]", "[\u00ff-a]", "*[", "[a-]", "[-a]", "[]]", "?", "*?*",
            "\0", "*\0*", "[!a]*", "a\\",
        };
        var random = new Random(7);
        const string alphabet = "ab*?[]^-\\c";
        for (int i = 0; i < 300; i++)
        {
            patterns.Add(new string([.. Enumerable.Range(0, random.Next(1, 8)).Select(_ => alphabet[random.Next(alphabet.Length)])]));
        }

        await CompareAsync(async (targets, clients) =>
        {
            string[] mset = ["MSET", .. keys.SelectMany(key => new[] { key, "1" })];
            foreach (RespTestClient[] perTarget in clients)
            {
                Assert.Equal("+OK\r\n", await perTarget[0].CommandAsync(mset));
            }

            foreach (string pattern in patterns)
            {
                var selections = new List<string>();
                foreach (RespTestClient[] perTarget in clients)
                {
                    selections.Add(string.Join('|', SplitBulkArray(await perTarget[0].CommandAsync("KEYS", pattern)).Order(StringComparer.Ordinal)));
                }

                Assert.True(selections.Distinct().Count() == 1,
                    $"KEYS '{SampleKvDifferentialTests.Describe(pattern)}': {string.Join(" / ", selections.Select(SampleKvDifferentialTests.Describe))}");
            }
        });
    }

    private static List<string> SplitBulkArray(string reply)
    {
        var items = new List<string>();
        int position = reply.IndexOf('\n', StringComparison.Ordinal) + 1;
        while (position < reply.Length)
        {
            int lineEnd = reply.IndexOf('\r', position);
            int length = int.Parse(reply.AsSpan(position + 1, lineEnd - position - 1), System.Globalization.CultureInfo.InvariantCulture);
            items.Add(reply.Substring(lineEnd + 2, length));
            position = lineEnd + 2 + length + 2;
        }

        return items;
    }

    private static async Task ExpectSameAsync(string[] targets, RespTestClient[][] clients, int connection, string[] request, string context)
    {
        string expected = await clients[0][connection].CommandAsync(request);
        for (int t = 1; t < targets.Length; t++)
        {
            string actual = await clients[t][connection].CommandAsync(request);
            Assert.True(expected == actual,
                $"{context} [{SampleKvDifferentialTests.Describe(request)}] on connection {connection}: redis={SampleKvDifferentialTests.Describe(expected)} {targets[t]}={SampleKvDifferentialTests.Describe(actual)}");
        }
    }

    // Runs `body` against redis-server (index 0) and both variants, each on a clean keyspace.
    private async Task CompareAsync(Func<string[], RespTestClient[][], Task> body, int connectionsPerTarget = 2)
    {
        IPEndPoint redis = await _redis.GetEndPointAsync();
        await using KvServer a = await SampleKvTestServer.StartAsync(Variant.A);
        await using KvServer b = await SampleKvTestServer.StartAsync(Variant.B);
        string[] targets = ["redis", "variant a", "variant b"];
        IPEndPoint[] endPoints = [redis, a.EndPoint, b.EndPoint];
        var clients = new RespTestClient[targets.Length][];
        try
        {
            for (int t = 0; t < targets.Length; t++)
            {
                clients[t] = new RespTestClient[connectionsPerTarget];
                for (int c = 0; c < connectionsPerTarget; c++)
                {
                    clients[t][c] = await RespTestClient.ConnectAsync(endPoints[t]);
                }
            }

            await using (RespTestClient reset = await RespTestClient.ConnectAsync(redis))
            {
                Assert.Equal("+OK\r\n", await reset.CommandAsync("FLUSHALL"));
            }

            await body(targets, clients);
        }
        finally
        {
            foreach (RespTestClient client in clients.Where(perTarget => perTarget is not null).SelectMany(perTarget => perTarget))
            {
                if (client is not null)
                {
                    await client.DisposeAsync();
                }
            }
        }
    }
}
