using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvStringCommandTests
{
    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task GetAndSet_AreBinarySafe(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "k"));
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "k", "v"));
        Assert.Equal("$1\r\nv\r\n", await client.CommandAsync("GET", "k"));

        string binary = "\0\r\n\u00ff*$";
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", binary, binary + binary));
        Assert.Equal("$12\r\n" + binary + binary + "\r\n", await client.CommandAsync("GET", binary));
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "", ""));
        Assert.Equal("$0\r\n\r\n", await client.CommandAsync("GET", ""));
        Assert.Equal("-ERR wrong number of arguments for 'get' command\r\n", await client.CommandAsync("GET", "a", "b"));
        Assert.Equal("-ERR wrong number of arguments for 'set' command\r\n", await client.CommandAsync("SET", "a"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Set_Options(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        (string[] Request, string Reply)[] script =
        [
            (["SET", "k", "1", "XX"], "$-1\r\n"),
            (["SET", "k", "1", "NX"], "+OK\r\n"),
            (["SET", "k", "2", "NX"], "$-1\r\n"),
            (["SET", "k", "2", "xx"], "+OK\r\n"),
            (["SET", "k", "3", "GET"], "$1\r\n2\r\n"),
            (["SET", "k", "4", "NX", "GET"], "$1\r\n3\r\n"),
            (["GET", "k"], "$1\r\n3\r\n"),
            (["SET", "new", "1", "XX", "GET"], "$-1\r\n"),
            (["SET", "k", "v", "NX", "XX"], "-ERR syntax error\r\n"),
            (["SET", "k", "v", "EX", "10", "PX", "5"], "-ERR syntax error\r\n"),
            (["SET", "k", "v", "KEEPTTL", "EX", "10"], "-ERR syntax error\r\n"),
            (["SET", "k", "v", "EX"], "-ERR syntax error\r\n"),
            (["SET", "k", "v", "BOGUS"], "-ERR syntax error\r\n"),
            (["SET", "k", "v", "EX", "x"], "-ERR value is not an integer or out of range\r\n"),
            (["SET", "k", "v", "EX", "0"], "-ERR invalid expire time in 'set' command\r\n"),
            (["SET", "k", "v", "PX", "-5"], "-ERR invalid expire time in 'set' command\r\n"),
            (["SET", "k", "v", "EX", "9223372036854775"], "-ERR invalid expire time in 'set' command\r\n"),
            (["SET", "k", "v", "PX", "9223372036854775807"], "-ERR invalid expire time in 'set' command\r\n"),
            (["SET", "k", "v", "EXAT", "4102444800", "EXAT", "4102444801"], "+OK\r\n"),
            (["EXPIRETIME", "k"], ":4102444801\r\n"),
            (["SET", "k", "w", "KEEPTTL"], "+OK\r\n"),
            (["PEXPIRETIME", "k"], ":4102444801000\r\n"),
            (["SET", "k", "w"], "+OK\r\n"),
            (["PEXPIRETIME", "k"], ":-1\r\n"),
            (["SET", "k", "v", "PXAT", "4102444800123"], "+OK\r\n"),
            (["PEXPIRETIME", "k"], ":4102444800123\r\n"),
            (["SET", "k", "v", "EX", "1000"], "+OK\r\n"),
            (["GET", "k"], "$1\r\nv\r\n"),
        ];
        foreach ((string[] request, string expected) in script)
        {
            Assert.Equal(expected, await client.CommandAsync(request));
        }
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task GetSet_SetNx_MGet_MSet_MSetNx(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        (string[] Request, string Reply)[] script =
        [
            (["GETSET", "a", "1"], "$-1\r\n"),
            (["GETSET", "a", "2"], "$1\r\n1\r\n"),
            (["SETNX", "a", "3"], ":0\r\n"),
            (["SETNX", "b", "3"], ":1\r\n"),
            (["MGET", "a", "b", "c"], "*3\r\n$1\r\n2\r\n$1\r\n3\r\n$-1\r\n"),
            (["MSET", "c", "x", "d", "y", "c", "z"], "+OK\r\n"),
            (["MGET", "c", "d"], "*2\r\n$1\r\nz\r\n$1\r\ny\r\n"),
            (["MSET", "a", "1", "b"], "-ERR wrong number of arguments for 'mset' command\r\n"),
            (["MSET", "a"], "-ERR wrong number of arguments for 'mset' command\r\n"),
            (["MSETNX", "e", "1", "a", "2"], ":0\r\n"),
            (["EXISTS", "e"], ":0\r\n"),
            (["MSETNX", "e", "1", "f", "2"], ":1\r\n"),
            (["MGET", "e", "f"], "*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
            (["MSETNX", "g", "1", "h"], "-ERR wrong number of arguments for 'msetnx' command\r\n"),
            (["GETSET", "a"], "-ERR wrong number of arguments for 'getset' command\r\n"),
            (["SETNX", "a"], "-ERR wrong number of arguments for 'setnx' command\r\n"),
            (["MGET"], "-ERR wrong number of arguments for 'mget' command\r\n"),
        ];
        foreach ((string[] request, string expected) in script)
        {
            Assert.Equal(expected, await client.CommandAsync(request));
        }
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task IncrDecr_ParseAndOverflowLikeRedis(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        const string notInteger = "-ERR value is not an integer or out of range\r\n";
        (string[] Request, string Reply)[] script =
        [
            (["INCR", "n"], ":1\r\n"),
            (["INCRBY", "n", "41"], ":42\r\n"),
            (["DECR", "n"], ":41\r\n"),
            (["DECRBY", "n", "-9"], ":50\r\n"),
            (["GET", "n"], "$2\r\n50\r\n"),
            (["INCRBY", "n", "x"], notInteger),
            (["INCRBY", "n", "-0"], notInteger),
            (["INCRBY", "n", "007"], notInteger),
            (["INCRBY", "n", "+1"], notInteger),
            (["INCRBY", "n", " 1"], notInteger),
            (["INCRBY", "n", ""], notInteger),
            (["INCRBY", "n", "9223372036854775808"], notInteger),
            (["SET", "n", "9223372036854775806"], "+OK\r\n"),
            (["INCR", "n"], ":9223372036854775807\r\n"),
            (["INCR", "n"], "-ERR increment or decrement would overflow\r\n"),
            (["SET", "m", "-9223372036854775808"], "+OK\r\n"),
            (["DECR", "m"], "-ERR increment or decrement would overflow\r\n"),
            (["INCRBY", "m", "9223372036854775807"], ":-1\r\n"),
            (["DECRBY", "m", "-9223372036854775808"], "-ERR decrement would overflow\r\n"),
            (["SET", "s", "abc"], "+OK\r\n"),
            (["INCR", "s"], notInteger),
            (["SET", "s", "1\0"], "+OK\r\n"),
            (["DECR", "s"], notInteger),
            (["SET", "s", "12345678901234567890"], "+OK\r\n"),
            (["INCR", "s"], notInteger),
            (["INCR", "a", "b"], "-ERR wrong number of arguments for 'incr' command\r\n"),
            (["DECRBY", "a"], "-ERR wrong number of arguments for 'decrby' command\r\n"),
        ];
        foreach ((string[] request, string expected) in script)
        {
            Assert.Equal(expected, await client.CommandAsync(request));
        }
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task IncrAndAppend_KeepTheDeadline(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "n", "1", "PXAT", "4102444800000"));
        Assert.Equal(":2\r\n", await client.CommandAsync("INCR", "n"));
        Assert.Equal(":2\r\n", await client.CommandAsync("APPEND", "n", "0"));
        Assert.Equal("$2\r\n20\r\n", await client.CommandAsync("GET", "n"));
        Assert.Equal(":4102444800000\r\n", await client.CommandAsync("PEXPIRETIME", "n"));
        Assert.Equal("$2\r\n20\r\n", await client.CommandAsync("GETSET", "n", "x"));
        Assert.Equal(":-1\r\n", await client.CommandAsync("PEXPIRETIME", "n"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task AppendAndStrlen(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal(":0\r\n", await client.CommandAsync("STRLEN", "s"));
        Assert.Equal(":3\r\n", await client.CommandAsync("APPEND", "s", "abc"));
        Assert.Equal(":6\r\n", await client.CommandAsync("APPEND", "s", "\0\r\n"));
        Assert.Equal(":6\r\n", await client.CommandAsync("APPEND", "s", ""));
        Assert.Equal(":6\r\n", await client.CommandAsync("STRLEN", "s"));
        Assert.Equal("$6\r\nabc\0\r\n\r\n", await client.CommandAsync("GET", "s"));
        Assert.Equal("-ERR wrong number of arguments for 'append' command\r\n", await client.CommandAsync("APPEND", "s"));
        Assert.Equal("-ERR wrong number of arguments for 'strlen' command\r\n", await client.CommandAsync("STRLEN"));
    }
}
