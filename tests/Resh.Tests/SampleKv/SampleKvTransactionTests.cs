using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvTransactionTests
{
    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task MultiExec_QueuesAndRunsInOrder(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("+OK\r\n", await client.CommandAsync("MULTI"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SET", "a", "1"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("INCR", "a"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("INCR", "x y"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SET", "s", "text"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("INCR", "s"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("MSET", "a", "1", "b"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SELECT", "2"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("GET", "a"));
        Assert.Equal("-ERR MULTI calls can not be nested\r\n", await client.CommandAsync("MULTI"));
        Assert.Equal(
            "*8\r\n+OK\r\n:2\r\n:1\r\n+OK\r\n-ERR value is not an integer or out of range\r\n"
            + "-ERR wrong number of arguments for 'mset' command\r\n+OK\r\n$-1\r\n",
            await client.CommandAsync("EXEC"));
        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "a"));
        await client.CommandAsync("SELECT", "0");
        Assert.Equal("$1\r\n2\r\n", await client.CommandAsync("GET", "a"));

        Assert.Equal("+OK\r\n", await client.CommandAsync("MULTI"));
        Assert.Equal("*0\r\n", await client.CommandAsync("EXEC"));
        Assert.Equal("-ERR EXEC without MULTI\r\n", await client.CommandAsync("EXEC"));
        Assert.Equal("-ERR DISCARD without MULTI\r\n", await client.CommandAsync("DISCARD"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Discard_DropsTheQueue(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.CommandAsync("MULTI");
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SET", "a", "1"));
        Assert.Equal("+OK\r\n", await client.CommandAsync("DISCARD"));
        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "a"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task QueuingErrors_AbortExec(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        const string abort = "-EXECABORT Transaction discarded because of previous errors.\r\n";
        await client.CommandAsync("MULTI");
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SET", "a", "1"));
        Assert.Equal("-ERR wrong number of arguments for 'get' command\r\n", await client.CommandAsync("GET"));
        Assert.Equal("+QUEUED\r\n", await client.CommandAsync("SET", "b", "1"));
        Assert.Equal(abort, await client.CommandAsync("EXEC"));
        Assert.Equal(":0\r\n", await client.CommandAsync("EXISTS", "a", "b"));

        await client.CommandAsync("MULTI");
        Assert.Equal("-ERR unknown command 'nosuch', with args beginning with: 'x' \r\n", await client.CommandAsync("nosuch", "x"));
        Assert.Equal(abort, await client.CommandAsync("EXEC"));
        Assert.Equal("-ERR EXEC without MULTI\r\n", await client.CommandAsync("EXEC"));

        await client.CommandAsync("MULTI");
        await client.CommandAsync("SET", "a", "1");
        Assert.Equal("-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n", await client.CommandAsync("EXEC", "now"));
        Assert.Equal("-ERR EXEC without MULTI\r\n", await client.CommandAsync("EXEC"));
        Assert.Equal(":0\r\n", await client.CommandAsync("EXISTS", "a"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task TransactionState_IsPerConnection(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient first = await RespTestClient.ConnectAsync(server);
        await using RespTestClient second = await RespTestClient.ConnectAsync(server);

        await first.CommandAsync("MULTI");
        Assert.Equal("+QUEUED\r\n", await first.CommandAsync("SET", "a", "1"));
        Assert.Equal("+OK\r\n", await second.CommandAsync("SET", "a", "2"));
        Assert.Equal("$1\r\n2\r\n", await second.CommandAsync("GET", "a"));
        Assert.Equal("*1\r\n+OK\r\n", await first.CommandAsync("EXEC"));
        Assert.Equal("$1\r\n1\r\n", await second.CommandAsync("GET", "a"));
    }
}
