using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvConnectionCommandTests
{
    private const string Resp3Hello =
        "%6\r\n$6\r\nserver\r\n$13\r\nresh-samplekv\r\n$7\r\nversion\r\n$5\r\n1.0.0\r\n$5\r\nproto\r\n:3\r\n"
        + "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

    private const string Resp2Hello =
        "*12\r\n$6\r\nserver\r\n$13\r\nresh-samplekv\r\n$7\r\nversion\r\n$5\r\n1.0.0\r\n$5\r\nproto\r\n:2\r\n"
        + "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task PingEchoCommand(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("+PONG\r\n", await client.CommandAsync("PING"));
        Assert.Equal("+PONG\r\n", await client.CommandAsync("ping"));
        Assert.Equal("$5\r\nhello\r\n", await client.CommandAsync("PING", "hello"));
        Assert.Equal("-ERR wrong number of arguments for 'ping' command\r\n", await client.CommandAsync("PING", "a", "b"));
        Assert.Equal("$4\r\na\r\nb\r\n", await client.CommandAsync("ECHO", "a\r\nb"));
        Assert.Equal("$0\r\n\r\n", await client.CommandAsync("EcHo", ""));
        Assert.Equal("-ERR wrong number of arguments for 'echo' command\r\n", await client.CommandAsync("ECHO"));
        Assert.Equal("*0\r\n", await client.CommandAsync("COMMAND"));
        Assert.Equal("*0\r\n", await client.CommandAsync("COMMAND", "DOCS"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task UnknownCommand_QuotesItsArgumentsLikeRedis(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("-ERR unknown command 'foo', with args beginning with: \r\n", await client.CommandAsync("foo"));
        Assert.Equal("-ERR unknown command 'FOO', with args beginning with: 'a  b' 'c' \r\n", await client.CommandAsync("FOO", "a\r\nb", "c"));
        Assert.Equal("-ERR unknown command 'FOO', with args beginning with: 'a' \r\n", await client.CommandAsync("FOO\0bar", "a\0b"));
        string x100 = new('x', 100);
        Assert.Equal($"-ERR unknown command 'FOO', with args beginning with: '{x100}' '{new string('x', 25)}' \r\n",
            await client.CommandAsync("FOO", x100, x100, x100));
        Assert.Equal($"-ERR unknown command '{new string('y', 128)}', with args beginning with: \r\n",
            await client.CommandAsync(new string('y', 200)));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Hello3_SwitchesNullsToResp3(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);
        await using RespTestClient other = await RespTestClient.ConnectAsync(server);

        Assert.Equal(Resp2Hello, await client.CommandAsync("HELLO"));
        Assert.Equal(Resp3Hello, await client.CommandAsync("HELLO", "3"));
        Assert.Equal("_\r\n", await client.CommandAsync("GET", "missing"));
        Assert.Equal("*2\r\n_\r\n_\r\n", await client.CommandAsync("MGET", "missing", "other"));
        Assert.Equal("_\r\n", await client.CommandAsync("SET", "k", "v", "XX"));
        Assert.Equal("_\r\n", await client.CommandAsync("RANDOMKEY"));
        Assert.Equal("$-1\r\n", await other.CommandAsync("GET", "missing"));
        Assert.Equal(Resp2Hello, await client.CommandAsync("HELLO", "2", "AUTH", "default", "any", "SETNAME", "me"));
        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "missing"));

        Assert.Equal("-NOPROTO unsupported protocol version\r\n", await client.CommandAsync("HELLO", "4"));
        Assert.Equal("-ERR Protocol version is not an integer or out of range\r\n", await client.CommandAsync("HELLO", "three"));
        Assert.Equal("-ERR Syntax error in HELLO option 'SETNAME'\r\n", await client.CommandAsync("HELLO", "3", "SETNAME"));
        Assert.Equal("-ERR Client names cannot contain spaces, newlines or special characters.\r\n", await client.CommandAsync("HELLO", "3", "SETNAME", "a b"));
        Assert.Equal("-WRONGPASS invalid username-password pair or user is disabled.\r\n", await client.CommandAsync("HELLO", "3", "AUTH", "bob", "pw"));
        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "missing"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task HelloInsideMulti_SwitchesFromThatReplyOn(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.CommandAsync("MULTI");
        await client.CommandAsync("GET", "missing");
        await client.CommandAsync("HELLO", "3");
        await client.CommandAsync("GET", "missing");
        Assert.Equal("*3\r\n$-1\r\n" + Resp3Hello + "_\r\n", await client.CommandAsync("EXEC"));
    }

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task Quit_RepliesOkAndCloses(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        await client.CommandAsync("MULTI");
        Assert.Equal("+OK\r\n", await client.CommandAsync("QUIT"));
        Assert.True(await client.IsClosedByServerAsync());

        await using RespTestClient next = await RespTestClient.ConnectAsync(server);
        Assert.Equal("+PONG\r\n", await next.CommandAsync("PING"));
    }
}
