using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvKeyspaceCommandTests
{
    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task DelAndExists_CountLikeRedis(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.CommandAsync("MSET", "a", "1", "b", "2");
        Assert.Equal(":3\r\n", await client.CommandAsync("EXISTS", "a", "a", "b", "c"));
        Assert.Equal(":1\r\n", await client.CommandAsync("DEL", "a", "a", "c"));
        Assert.Equal(":0\r\n", await client.CommandAsync("EXISTS", "a"));
        Assert.Equal("-ERR wrong number of arguments for 'del' command\r\n", await client.CommandAsync("DEL"));
        Assert.Equal("-ERR wrong number of arguments for 'exists' command\r\n", await client.CommandAsync("EXISTS"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Keys_MatchesGlobsAndIsSortedBytewise(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.CommandAsync("MSET", "hello", "1", "hallo", "1", "hxllo", "1", "hllo", "1", "h*llo", "1", "\u00ff", "1", "", "1", "a", "1", "ab", "1");

        Assert.Equal("*9\r\n$0\r\n\r\n$1\r\na\r\n$2\r\nab\r\n$5\r\nh*llo\r\n$5\r\nhallo\r\n$5\r\nhello\r\n$4\r\nhllo\r\n$5\r\nhxllo\r\n$1\r\n\u00ff\r\n",
            await client.CommandAsync("KEYS", "*"));
        Assert.Equal("*8\r\n$1\r\na\r\n$2\r\nab\r\n$5\r\nh*llo\r\n$5\r\nhallo\r\n$5\r\nhello\r\n$4\r\nhllo\r\n$5\r\nhxllo\r\n$1\r\n\u00ff\r\n",
            await client.CommandAsync("KEYS", "**"));
        Assert.Equal("*4\r\n$5\r\nh*llo\r\n$5\r\nhallo\r\n$5\r\nhello\r\n$5\r\nhxllo\r\n", await client.CommandAsync("KEYS", "h?llo"));
        Assert.Equal("*2\r\n$5\r\nhallo\r\n$5\r\nhello\r\n", await client.CommandAsync("KEYS", "h[ae]llo"));
        Assert.Equal("*2\r\n$5\r\nh*llo\r\n$5\r\nhxllo\r\n", await client.CommandAsync("KEYS", "h[^ae]llo"));
        Assert.Equal("*2\r\n$5\r\nhallo\r\n$5\r\nhello\r\n", await client.CommandAsync("KEYS", "h[a-e]llo"));
        Assert.Equal("*2\r\n$5\r\nhallo\r\n$5\r\nhello\r\n", await client.CommandAsync("KEYS", "h[e-a]llo"));
        Assert.Equal("*1\r\n$5\r\nh*llo\r\n", await client.CommandAsync("KEYS", "h\\*llo"));
        Assert.Equal("*1\r\n$4\r\nhllo\r\n", await client.CommandAsync("KEYS", "h\\llo"));
        Assert.Equal("*0\r\n", await client.CommandAsync("KEYS", "nomatch*"));
        Assert.Equal("-ERR wrong number of arguments for 'keys' command\r\n", await client.CommandAsync("KEYS"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task DbSize_RandomKey_Flush(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal(":0\r\n", await client.CommandAsync("DBSIZE"));
        Assert.Equal("$-1\r\n", await client.CommandAsync("RANDOMKEY"));
        await client.CommandAsync("MSET", "m", "1", "b", "2", "z", "3");
        Assert.Equal(":3\r\n", await client.CommandAsync("DBSIZE"));
        Assert.Equal("$1\r\nb\r\n", await client.CommandAsync("RANDOMKEY"));
        Assert.Equal("-ERR syntax error\r\n", await client.CommandAsync("FLUSHDB", "NOW"));
        Assert.Equal("-ERR syntax error\r\n", await client.CommandAsync("FLUSHDB", "ASYNC", "SYNC"));
        Assert.Equal("+OK\r\n", await client.CommandAsync("FLUSHDB", "async"));
        Assert.Equal(":0\r\n", await client.CommandAsync("DBSIZE"));

        await client.CommandAsync("SET", "x", "1");
        await client.CommandAsync("SELECT", "3");
        await client.CommandAsync("SET", "y", "1");
        Assert.Equal("+OK\r\n", await client.CommandAsync("FLUSHDB"));
        Assert.Equal("+OK\r\n", await client.CommandAsync("SELECT", "0"));
        Assert.Equal(":1\r\n", await client.CommandAsync("DBSIZE"));
        await client.CommandAsync("SELECT", "3");
        await client.CommandAsync("SET", "y", "1");
        Assert.Equal("+OK\r\n", await client.CommandAsync("FLUSHALL", "SYNC"));
        Assert.Equal(":0\r\n", await client.CommandAsync("DBSIZE"));
        await client.CommandAsync("SELECT", "0");
        Assert.Equal(":0\r\n", await client.CommandAsync("DBSIZE"));
        Assert.Equal("-ERR wrong number of arguments for 'dbsize' command\r\n", await client.CommandAsync("DBSIZE", "x"));
        Assert.Equal("-ERR wrong number of arguments for 'randomkey' command\r\n", await client.CommandAsync("RANDOMKEY", "x"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Select_IsolatesDatabasesPerConnection(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient first = await RespTestClient.ConnectAsync(server);
        await using RespTestClient second = await RespTestClient.ConnectAsync(server);

        Assert.Equal("+OK\r\n", await first.CommandAsync("SELECT", "15"));
        Assert.Equal("+OK\r\n", await first.CommandAsync("SET", "k", "in15"));
        Assert.Equal("$-1\r\n", await second.CommandAsync("GET", "k"));
        Assert.Equal("+OK\r\n", await second.CommandAsync("SET", "k", "in0"));
        Assert.Equal("$4\r\nin15\r\n", await first.CommandAsync("GET", "k"));
        Assert.Equal("+OK\r\n", await second.CommandAsync("SELECT", "15"));
        Assert.Equal("$4\r\nin15\r\n", await second.CommandAsync("GET", "k"));
        await using (RespTestClient third = await RespTestClient.ConnectAsync(server))
        {
            Assert.Equal("$3\r\nin0\r\n", await third.CommandAsync("GET", "k"));
        }

        Assert.Equal("-ERR DB index is out of range\r\n", await first.CommandAsync("SELECT", "16"));
        Assert.Equal("-ERR DB index is out of range\r\n", await first.CommandAsync("SELECT", "-1"));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", await first.CommandAsync("SELECT", "one"));
        Assert.Equal("-ERR value is out of range, value must between -2147483648 and 2147483647\r\n", await first.CommandAsync("SELECT", "99999999999"));
        Assert.Equal("$4\r\nin15\r\n", await first.CommandAsync("GET", "k"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task AbsoluteDeadlineInThePast_ExpiresTheKey(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        (string[] Request, string Reply)[] script =
        [
            (["SET", "gone", "v", "EXAT", "1"], "+OK\r\n"),
            (["GET", "gone"], "$-1\r\n"),
            (["EXISTS", "gone"], ":0\r\n"),
            (["SET", "gone2", "v", "PXAT", "1000", "GET"], "$-1\r\n"),
            (["DBSIZE"], ":0\r\n"),
            (["SET", "k", "v"], "+OK\r\n"),
            (["EXPIRETIME", "k"], ":-1\r\n"),
            (["EXPIRETIME", "missing"], ":-2\r\n"),
            (["PEXPIRETIME", "missing"], ":-2\r\n"),
            (["EXPIREAT", "missing", "4102444800"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444800"], ":1\r\n"),
            (["EXPIRETIME", "k"], ":4102444800\r\n"),
            (["PEXPIREAT", "k", "4102444800500"], ":1\r\n"),
            (["EXPIRETIME", "k"], ":4102444801\r\n"),
            (["PEXPIRETIME", "k"], ":4102444800500\r\n"),
            (["EXPIREAT", "k", "4102444801", "NX"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444801", "GT"], ":1\r\n"),
            (["EXPIREAT", "k", "4102444802", "LT"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444700", "LT", "XX"], ":1\r\n"),
            (["EXPIRETIME", "k"], ":4102444700\r\n"),
            (["PERSIST", "k"], ":1\r\n"),
            (["PERSIST", "k"], ":0\r\n"),
            (["PERSIST", "missing"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444801", "XX"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444801", "GT"], ":0\r\n"),
            (["EXPIREAT", "k", "4102444801", "LT"], ":1\r\n"),
            (["EXPIREAT", "k", "1"], ":1\r\n"),
            (["GET", "k"], "$-1\r\n"),
            (["SET", "k", "v"], "+OK\r\n"),
            (["PEXPIREAT", "k", "-5"], ":1\r\n"),
            (["EXISTS", "k"], ":0\r\n"),
            (["EXPIREAT", "k", "1", "FOO"], "-ERR Unsupported option FOO\r\n"),
            (["EXPIREAT", "k", "1", "NX", "XX"], "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"),
            (["EXPIREAT", "k", "1", "GT", "LT"], "-ERR GT and LT options at the same time are not compatible\r\n"),
            (["EXPIREAT", "k", "soon"], "-ERR value is not an integer or out of range\r\n"),
            (["EXPIREAT", "k", "9223372036854775807"], "-ERR invalid expire time in 'expireat' command\r\n"),
            (["EXPIREAT", "k"], "-ERR wrong number of arguments for 'expireat' command\r\n"),
            (["PERSIST"], "-ERR wrong number of arguments for 'persist' command\r\n"),
            (["PEXPIRETIME"], "-ERR wrong number of arguments for 'pexpiretime' command\r\n"),
        ];
        foreach ((string[] request, string expected) in script)
        {
            Assert.Equal(expected, await client.CommandAsync(request));
        }
    }
}
