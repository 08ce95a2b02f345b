using System.Buffers;
using System.Text;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

/// <summary>The determinism layer of the RESP codec: owned deadlines, TTL reads, random commands, glob matching.</summary>
public sealed class RespDeterminismTests
{
    private const long Now = 1_700_000_000_000;
    private const long Shift = 10_000_000_000_000;

    private static (IClientSession Session, FakeClock Clock) Owned()
    {
        var clock = new FakeClock(Now);
        return (new RespProtocol(new RespOptions { Clock = clock }).CreateSession(1), clock);
    }

    private static SessionAction Send(IClientSession session, params string[] command)
    {
        var buffer = new ReadOnlySequence<byte>(Resh.Clients.RespClient.Encode(command));
        return session.Next(ref buffer);
    }

    private static string Text(ReadOnlyMemory<byte> bytes) => Encoding.ASCII.GetString(bytes.Span);

    [Theory]
    [InlineData(new[] { "SET", "k", "v", "EX", "10" }, "PXAT", Now + 10_000)]
    [InlineData(new[] { "SET", "k", "v", "EXAT", "1700000100" }, "PXAT", 1_700_000_100_000)]
    [InlineData(new[] { "PEXPIREAT", "k", "1700000000500" }, "k", 1_700_000_000_500)]
    [InlineData(new[] { "EXPIRE", "k", "5" }, "k", Now + 5_000)]
    public void Future_deadlines_reach_the_replicas_shifted(string[] command, string before, long deadline)
    {
        var (session, _) = Owned();
        var action = Send(session, command);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Contains($"${before.Length}\r\n{before}\r\n$14\r\n{deadline + Shift}\r\n", Text(action.Bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void A_past_deadline_is_left_as_it_is_so_every_replica_deletes_the_key_at_once()
    {
        var (session, _) = Owned();
        var action = Send(session, "PEXPIREAT", "k", "1000");
        Assert.Contains("$4\r\n1000\r\n", Text(action.Bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void Ttl_is_read_from_the_voted_deadline_and_the_clock_at_release()
    {
        var (session, clock) = Owned();
        var ttl = Send(session, "TTL", "k");
        Assert.Equal("*2\r\n$11\r\nPEXPIRETIME\r\n$1\r\nk\r\n", Text(ttl.Bytes));
        var voted = Encoding.ASCII.GetBytes($":{Now + 10_000 + Shift}\r\n");
        Assert.Equal(":10\r\n", Text(ttl.Transform!.Apply(voted)));
        clock.Now = clock.Now.AddMilliseconds(4_400);
        Assert.Equal(":6\r\n", Text(ttl.Transform!.Apply(voted)));
        Assert.Equal(":5600\r\n", Text(Send(session, "PTTL", "k").Transform!.Apply(voted)));
        Assert.Equal($":{Now + 10_000}\r\n", Text(Send(session, "PEXPIRETIME", "k").Transform!.Apply(voted)));
        Assert.Equal(":-1\r\n", Text(ttl.Transform!.Apply(":-1\r\n"u8.ToArray())));

        // Past its deadline, its deletion not through the log yet: gone for the client.
        clock.Now = clock.Now.AddSeconds(10);
        Assert.Equal(":-2\r\n", Text(ttl.Transform!.Apply(voted)));
        Assert.Equal("-ERR x\r\n", Text(ttl.Transform!.Apply("-ERR x\r\n"u8.ToArray())));
    }

    [Fact]
    public void Httl_is_read_from_the_voted_field_deadlines()
    {
        var (session, _) = Owned();
        var httl = Send(session, "HTTL", "h", "FIELDS", "3", "a", "b", "c");
        Assert.Equal("*7\r\n$12\r\nHPEXPIRETIME\r\n$1\r\nh\r\n$6\r\nFIELDS\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", Text(httl.Bytes));
        var voted = Encoding.ASCII.GetBytes($"*3\r\n:{Now + 10_000}\r\n:-1\r\n:-2\r\n");
        Assert.Equal("*3\r\n:10\r\n:-1\r\n:-2\r\n", Text(httl.Transform!.Apply(voted)));
        Assert.Equal("*3\r\n:10000\r\n:-1\r\n:-2\r\n", Text(Send(session, "HPTTL", "h", "FIELDS", "3", "a", "b", "c").Transform!.Apply(voted)));
    }

    [Fact]
    public void Random_commands_become_one_script_with_the_gateways_seed_and_malformed_ones_pass_unchanged()
    {
        var (session, _) = Owned();
        var spop = Text(Send(session, "SPOP", "s", "3").Bytes);
        Assert.StartsWith("*9\r\n$4\r\nEVAL\r\n", spop, StringComparison.Ordinal);
        Assert.Contains("$1\r\ns\r\n", spop, StringComparison.Ordinal);
        Assert.Contains("$4\r\nspop\r\n$1\r\n3\r\n", spop, StringComparison.Ordinal);
        Assert.Equal("*3\r\n$4\r\nSPOP\r\n$1\r\ns\r\n$2\r\n-1\r\n", Text(Send(session, "SPOP", "s", "-1").Bytes));
        Assert.Equal("*4\r\n$10\r\nHRANDFIELD\r\n$1\r\nh\r\n$1\r\n2\r\n$4\r\nNOPE\r\n", Text(Send(session, "HRANDFIELD", "h", "2", "NOPE").Bytes));
        Assert.StartsWith("-ERR resh: a negative count", Text(Send(session, "SRANDMEMBER", "s", "-100000000000").Bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void Transforming_commands_are_refused_inside_a_block_and_random_ones_are_queued()
    {
        var (session, _) = Owned();
        Send(session, "MULTI");
        Assert.Equal("+QUEUED\r\n", Text(Send(session, "SPOP", "s").Bytes));
        Assert.StartsWith("-ERR resh: ttl inside MULTI", Text(Send(session, "TTL", "k").Bytes), StringComparison.Ordinal);
        Assert.StartsWith("-EXECABORT", Text(Send(session, "EXEC").Bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void A_transaction_with_an_unordered_read_is_compared_element_by_element()
    {
        var (session, _) = Owned();
        Send(session, "MULTI");
        Send(session, "SMEMBERS", "s");
        var exec = Send(session, "EXEC");
        Assert.Equal(RespReplyOrder.ExecElements, exec.ReplyHint);
        var protocol = new RespProtocol();
        var a = new ArrayBufferWriter<byte>();
        var b = new ArrayBufferWriter<byte>();
        Assert.True(protocol.TryNormalize("*1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"u8, exec.ReplyHint, a));
        Assert.True(protocol.TryNormalize("*1\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n"u8, exec.ReplyHint, b));
        Assert.Equal(a.WrittenSpan.ToArray(), b.WrittenSpan.ToArray());
    }

    [Fact]
    public void Config_set_of_what_resh_manages_is_refused_and_config_get_ignores_per_replica_values()
    {
        var (session, _) = Owned();
        Assert.StartsWith("-ERR resh: config set appendonly", Text(Send(session, "CONFIG", "SET", "appendonly", "yes").Bytes), StringComparison.Ordinal);
        Assert.Equal(SessionActionKind.Submit, Send(session, "CONFIG", "SET", "slowlog-max-len", "64").Kind);
        var protocol = new RespProtocol();
        var a = new ArrayBufferWriter<byte>();
        var b = new ArrayBufferWriter<byte>();
        Assert.True(protocol.TryNormalize("*4\r\n$4\r\nport\r\n$4\r\n7001\r\n$2\r\nhz\r\n$2\r\n10\r\n"u8, RespReplyOrder.ConfigPairs, a));
        Assert.True(protocol.TryNormalize("*4\r\n$2\r\nhz\r\n$2\r\n10\r\n$4\r\nport\r\n$4\r\n7002\r\n"u8, RespReplyOrder.ConfigPairs, b));
        Assert.Equal(a.WrittenSpan.ToArray(), b.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData("*", "anything", true)]
    [InlineData("k?y", "key", true)]
    [InlineData("k[a-f]y", "key", true)]
    [InlineData("k[^e]y", "key", false)]
    [InlineData("user:*:name", "user:42:name", true)]
    [InlineData("user:*:name", "user:42:mail", false)]
    [InlineData("a\\*b", "a*b", true)]
    [InlineData("a\\*b", "axb", false)]
    [InlineData("t1?", "t10", true)]
    [InlineData("t1?", "t1", false)]
    public void Glob_patterns_match_as_in_redis(string pattern, string text, bool matches) =>
        Assert.Equal(matches, RespGlob.Matches(Encoding.ASCII.GetBytes(pattern), Encoding.ASCII.GetBytes(text)));

    [Fact]
    public void Without_auth_nothing_reaches_the_log_and_a_wrong_password_is_refused()
    {
        var options = new RespOptions();
        options.Users["default"] = "s3cret";
        options.Users["app"] = "pw";
        var session = new RespProtocol(options).CreateSession(1);
        Assert.Equal("-NOAUTH Authentication required.\r\n", Text(Send(session, "GET", "k").Bytes));
        Assert.StartsWith("-NOAUTH HELLO must be called", Text(Send(session, "HELLO", "3").Bytes), StringComparison.Ordinal);
        Assert.StartsWith("-WRONGPASS", Text(Send(session, "AUTH", "nope").Bytes), StringComparison.Ordinal);
        Assert.StartsWith("-WRONGPASS", Text(Send(session, "AUTH", "app", "s3cret").Bytes), StringComparison.Ordinal);
        Assert.Equal("+OK\r\n", Text(Send(session, "AUTH", "s3cret").Bytes));
        Assert.Equal(SessionActionKind.Submit, Send(session, "GET", "k").Kind);
        Assert.Equal("+RESET\r\n", Text(Send(session, "RESET").Bytes));
        Assert.Equal("-NOAUTH Authentication required.\r\n", Text(Send(session, "GET", "k").Bytes));
        Assert.StartsWith("%7", Text(Send(session, "HELLO", "3", "AUTH", "app", "pw").Bytes), StringComparison.Ordinal);
        Assert.Equal(SessionActionKind.Submit, Send(session, "GET", "k").Kind);

        var open = new RespProtocol().CreateSession(2);
        Assert.StartsWith("-ERR AUTH <password> called without any password", Text(Send(open, "AUTH", "x").Bytes), StringComparison.Ordinal);
        Assert.Equal("+OK\r\n", Text(Send(open, "AUTH", "default", "anything").Bytes));
    }

    [Fact]
    public async Task Lastsave_is_the_newest_verified_checkpoint_once_there_is_one()
    {
        var clock = new FakeClock(Now);
        var protocol = new RespProtocol(new RespOptions { Clock = clock });
        var session = protocol.CreateSession(1);
        Assert.Equal($":{Now / 1000}\r\n", Text(Send(session, "LASTSAVE").Bytes));
        var link = new Link { LastCheckpoint = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000) };
        var keeper = protocol.Attach(link);
        try
        {
            Assert.Equal(":1800000000\r\n", Text(Send(session, "LASTSAVE").Bytes));
        }
        finally
        {
            if (keeper is not null)
            {
                await keeper.DisposeAsync();
            }
        }
    }

    private sealed class Link : IGatewayLink
    {
        public int ConnectedClients => 0;

        public System.Net.IPEndPoint? Listen => null;

        public DateTimeOffset? LastCheckpoint { get; init; }

        public ValueTask<ReadOnlyMemory<byte>> RequestAsync(ReadOnlyMemory<byte> payload, int context, int replyHint, CancellationToken cancellationToken) =>
            ValueTask.FromResult<ReadOnlyMemory<byte>>("*0\r\n"u8.ToArray());
    }
}
