using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvProtocolTests
{
    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task InlineRequests_SplitLikeRedis(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.SendRawAsync("PING\r\n\r\n   \r\nSET a \"x y\\x41\\n\" \r\nGET a\nECHO 'it\\'s'\r\necho a\"b c\"\r\n");
        Assert.Equal(["+PONG\r\n", "+OK\r\n", "$5\r\nx yA\n\r\n", "$4\r\nit's\r\n", "$4\r\nab c\r\n"], await client.ReadRepliesAsync(5));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Pipelining_AnswersInOrder(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        var batch = new List<byte>();
        var expected = new List<string>();
        for (int i = 0; i < 500; i++)
        {
            batch.AddRange(RespTestClient.Encode("INCR", "counter"));
            expected.Add($":{i + 1}\r\n");
            batch.AddRange(RespTestClient.Encode("ECHO", $"e{i}"));
            expected.Add($"${$"e{i}".Length}\r\ne{i}\r\n");
        }

        batch.AddRange(RespTestClient.Bytes("PING\r\n*0\r\n*-1\r\n"));
        expected.Add("+PONG\r\n");
        await client.SendRawAsync([.. batch]);
        Assert.Equal(expected, await client.ReadRepliesAsync(expected.Count));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task FragmentedWrites_AreReassembled(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        byte[] requests = [.. RespTestClient.Encode("SET", "frag", "mented\r\nvalue"), .. RespTestClient.Bytes("GET frag\r\n"), .. RespTestClient.Encode("STRLEN", "frag")];
        foreach (byte b in requests)
        {
            await client.SendRawAsync([b]);
        }

        Assert.Equal(["+OK\r\n", "$13\r\nmented\r\nvalue\r\n", ":13\r\n"], await client.ReadRepliesAsync(3));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task LargeValues_RoundTrip(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        string big = string.Create(3 * 1024 * 1024, 0, (chars, _) =>
        {
            for (int i = 0; i < chars.Length; i++)
            {
                chars[i] = (char)(i * 7 % 256);
            }
        });
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "big", big));
        Assert.Equal($"${big.Length}\r\n{big}\r\n", await client.CommandAsync("GET", "big"));
    }

    [Theory]
    [InlineData("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*2147483648\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*1\r\n:4\r\n", "-ERR Protocol error: expected '$', got ':'\r\n")]
    [InlineData("SET a \"x\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n")]
    [InlineData("GET \"a\"b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n")]
    public async Task ProtocolErrors_AreReportedThenTheConnectionCloses(string request, string reply)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(Variant.A);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.SendRawAsync("PING\r\n" + request + "PING\r\n");
        Assert.Equal("+PONG\r\n", await client.ReadReplyAsync());
        Assert.Equal(reply, await client.ReadReplyAsync());
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task TooLongInlineRequest_IsAProtocolError()
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(Variant.B);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.SendRawAsync(new string('a', 70_000));
        Assert.Equal("-ERR Protocol error: too big inline request\r\n", await client.ReadReplyAsync());
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task ManyConcurrentClients_AreSerialized(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        const int clients = 16;
        const int increments = 200;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            await using RespTestClient client = await RespTestClient.ConnectAsync(server);
            var batch = new List<byte>();
            for (int i = 0; i < increments; i++)
            {
                batch.AddRange(RespTestClient.Encode("INCR", "shared"));
                batch.AddRange(RespTestClient.Encode("APPEND", "log", ((char)('a' + c)).ToString()));
            }

            await client.SendRawAsync([.. batch]);
            List<string> replies = await client.ReadRepliesAsync(2 * increments);
            Assert.All(replies, reply => Assert.StartsWith(":", reply, StringComparison.Ordinal));
        }));

        await using RespTestClient check = await RespTestClient.ConnectAsync(server);
        string total = (clients * increments).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"${total.Length}\r\n{total}\r\n", await check.CommandAsync("GET", "shared"));
        string log = await check.CommandAsync("GET", "log");
        string content = log[(log.IndexOf('\n', StringComparison.Ordinal) + 1)..^2];
        Assert.Equal(clients * increments, content.Length);
        for (int c = 0; c < clients; c++)
        {
            Assert.Equal(increments, content.Count(ch => ch == (char)('a' + c)));
        }
    }

    [Fact]
    public async Task Dispose_ClosesOpenConnections()
    {
        KvServer server = await SampleKvTestServer.StartAsync(Variant.A);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);
        Assert.Equal("+PONG\r\n", await client.CommandAsync("PING"));
        await server.DisposeAsync();
        Assert.True(await client.IsClosedByServerAsync());
        await server.DisposeAsync();
    }
}
