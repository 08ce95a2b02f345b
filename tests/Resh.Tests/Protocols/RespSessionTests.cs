using System.Buffers;
using Resh.Protocols;
using Resh.Protocols.Resp;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

public class RespSessionTests
{
    private const long Now = 1_700_000_000_000;

    private static RespProtocol Protocol(RespOptions? options = null) => new(options ?? new RespOptions { Clock = new FakeClock(Now), ExpiryRewrite = ExpiryRewrite.Absolute });

    private static IClientSession Session(RespOptions? options = null) => Protocol(options).CreateSession(42);

    private static RecordedAction One(IClientSession session, string input) => Assert.Single(Drain(session, input));

    [Theory]
    [InlineData("WAIT", "wait")]
    [InlineData("wAiT", "wait")]
    [InlineData("debug", "debug")]
    [InlineData("DEBUG", "debug")]
    [InlineData("SWAPDB", "swapdb")]
    public void Profile_rejects_locally_and_the_session_goes_on(string command, string lower)
    {
        var session = Session();
        var actions = Drain(session, Multibulk(command, "key", "0") + Multibulk("GET", "key"));
        Assert.Equal(2, actions.Count);
        Assert.Equal(SessionActionKind.LocalReply, actions[0].Kind);
        Assert.Equal($"-ERR resh: {lower} is not supported under replication\r\n", actions[0].Text);
        Assert.False(actions[0].Close);
        Assert.Equal(SessionActionKind.Submit, actions[1].Kind);
    }

    [Theory]
    [InlineData("GET k\r\n", true)]
    [InlineData("hgetall h\r\n", true)]
    [InlineData("ZrAnGe z 0 -1\r\n", true)]
    [InlineData("SET k v\r\n", false)]
    [InlineData("PFCOUNT hll\r\n", false)]
    [InlineData("EVAL \"return 1\" 0\r\n", false)]
    [InlineData("GETDEL k\r\n", false)]
    public void Only_listed_reads_are_marked_read_only(string request, bool readOnly)
    {
        var action = One(Session(), request);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal(readOnly, action.ReadOnly);
    }

    [Fact]
    public void A_transaction_of_reads_is_not_marked_read_only()
    {
        var session = Session();
        Drain(session, "MULTI\r\nGET a\r\n");
        var exec = One(session, "EXEC\r\n");
        Assert.Equal(SessionActionKind.Submit, exec.Kind);
        Assert.False(exec.ReadOnly);
    }

    [Fact]
    public void Subcommand_entries_reject_only_that_subcommand()
    {
        var session = Session();
        Assert.Equal("-ERR resh: script kill is not supported under replication\r\n", One(session, "SCRIPT kill\r\n").Text);
        Assert.Equal(SessionActionKind.Submit, One(session, "SCRIPT LOAD \"return 1\"\r\n").Kind);
        Assert.Equal(SessionActionKind.Submit, One(session, "SCRIPT\r\n").Kind);
        Assert.Equal("-ERR resh: function stats is not supported under replication\r\n", One(session, "function STATS\r\n").Text);
    }

    [Fact]
    public void Rejected_set_is_configurable()
    {
        var options = new RespOptions();
        options.RejectedCommands.Remove("WAIT");
        options.RejectedCommands.Add("Keys");
        var session = Session(options);
        Assert.Equal(SessionActionKind.Submit, One(session, "wait 1 0\r\n").Kind);
        Assert.Equal("-ERR resh: keys is not supported under replication\r\n", One(session, "KEYS *\r\n").Text);

        var none = Session(new RespOptions { RejectedCommands = new HashSet<string>() });
        Assert.Equal(SessionActionKind.Submit, One(none, "WAIT 1 0\r\n").Kind);
    }

    [Fact]
    public void Default_profile_covers_the_required_commands()
    {
        string[] required =
        [
            "wait", "waitaof",
            "debug", "client", "shutdown", "failover", "replicaof", "slaveof", "sync", "psync", "save", "bgsave", "bgrewriteaof",
            "acl", "migrate", "cluster", "readonly", "readwrite", "swapdb",
        ];
        foreach (var name in required)
        {
            Assert.True(RespProfile.Defaults.ContainsKey(name), name);
            Assert.False(string.IsNullOrWhiteSpace(RespProfile.Defaults[name]));
        }

        foreach (var allowed in new[]
        {
            "keys", "smembers", "hgetall", "expiretime", "pexpiretime", "eval", "move", "select", "hello", "multi", "randomkey", "srandmember",
            "hrandfield", "zrandmember", "spop", "time", "lastsave", "info", "config", "slowlog", "latency", "memory", "object", "ttl", "pttl",
            "scan", "sscan", "hscan", "zscan", "role", "monitor", "auth", "reset", "watch", "unwatch", "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin",
            "bzpopmax", "bzmpop", "xread", "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "publish",
            "spublish", "pubsub",
        })
        {
            Assert.False(RespProfile.Defaults.ContainsKey(allowed), allowed);
        }

        Assert.True(RespProfile.Defaults.ContainsKey("DEBUG"));
    }

    [Fact]
    public void Select_changes_the_context_of_later_requests()
    {
        var session = Session();
        var actions = Drain(session, "GET a\r\nSELECT 3\r\nGET a\r\nselect 0\r\nGET a\r\n");
        Assert.Equal([0, 3, 0], actions.Where(a => a.Kind == SessionActionKind.Submit).Select(a => a.Context));
        Assert.Equal("+OK\r\n", actions[1].Text);
        Assert.Equal(SessionActionKind.LocalReply, actions[1].Kind);
    }

    [Theory]
    [InlineData("SELECT 16\r\n", "-ERR DB index is out of range\r\n")]
    [InlineData("SELECT -1\r\n", "-ERR DB index is out of range\r\n")]
    [InlineData("SELECT abc\r\n", "-ERR value is not an integer or out of range\r\n")]
    [InlineData("SELECT 01\r\n", "-ERR value is not an integer or out of range\r\n")]
    [InlineData("SELECT 99999999999\r\n", "-ERR value is not an integer or out of range\r\n")]
    [InlineData("SELECT\r\n", "-ERR wrong number of arguments for 'select' command\r\n")]
    [InlineData("SELECT 1 2\r\n", "-ERR wrong number of arguments for 'select' command\r\n")]
    public void Invalid_select_is_answered_locally(string input, string reply)
    {
        var session = Session();
        Assert.Equal(reply, One(session, input).Text);
        Assert.Equal(0, One(session, "GET a\r\n").Context);
    }

    [Fact]
    public void Select_respects_the_configured_database_count()
    {
        var session = Session(new RespOptions { Databases = 4 });
        Assert.Equal("+OK\r\n", One(session, "SELECT 3\r\n").Text);
        Assert.Equal("-ERR DB index is out of range\r\n", One(session, "SELECT 4\r\n").Text);
    }

    [Fact]
    public void Hello_3_answers_a_map_and_switches_the_context()
    {
        var session = Session();
        var reply = One(session, "HELLO 3\r\n");
        Assert.Equal(SessionActionKind.LocalReply, reply.Kind);
        Assert.Equal(
            "%7\r\n$6\r\nserver\r\n$4\r\nresh\r\n$7\r\nversion\r\n$5\r\n1.0.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:42\r\n" +
            "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
            reply.Text);
        Assert.Equal(RespProtocol.Resp3Flag, One(session, "GET a\r\n").Context);
        Assert.Equal("+OK\r\n", One(session, "SELECT 5\r\n").Text);
        Assert.Equal(5 | (1 << 16), One(session, "GET a\r\n").Context);

        var back = One(session, "HELLO 2\r\n");
        Assert.StartsWith("*14\r\n$6\r\nserver\r\n", back.Text, StringComparison.Ordinal);
        Assert.Contains("$5\r\nproto\r\n:2\r\n", back.Text, StringComparison.Ordinal);
        Assert.Equal(5, One(session, "GET a\r\n").Context);
    }

    [Fact]
    public void Hello_without_version_reports_the_current_protocol()
    {
        var session = Session();
        Assert.StartsWith("*14\r\n", One(session, "HELLO\r\n").Text, StringComparison.Ordinal);
        One(session, "HELLO 3 SETNAME app\r\n");
        Assert.StartsWith("%7\r\n", One(session, "HELLO\r\n").Text, StringComparison.Ordinal);
        Assert.Equal("app", ((RespClientSession)session).ClientName);
    }

    [Theory]
    [InlineData("HELLO 4\r\n", "-NOPROTO unsupported protocol version\r\n")]
    [InlineData("HELLO 1\r\n", "-NOPROTO unsupported protocol version\r\n")]
    [InlineData("HELLO three\r\n", "-ERR Protocol version is not an integer or out of range\r\n")]
    [InlineData("HELLO 3 AUTH someone secret\r\n", "-WRONGPASS invalid username-password pair or user is disabled.\r\n")]
    [InlineData("HELLO 3 SETNAME\r\n", "-ERR Syntax error in HELLO option 'SETNAME'\r\n")]
    [InlineData("HELLO 3 SETNAME \"a b\"\r\n", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n")]
    [InlineData("HELLO 3 FOO\r\n", "-ERR Syntax error in HELLO option 'FOO'\r\n")]
    public void Invalid_hello_keeps_the_protocol(string input, string reply)
    {
        var session = Session();
        Assert.Equal(reply, One(session, input).Text);
        Assert.Equal(0, One(session, "GET a\r\n").Context);
    }

    [Fact]
    public void Context_switch_writes_select_and_hello()
    {
        var protocol = Protocol();
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(0, protocol.WriteContextSwitch(7, 7, output));
        Assert.Equal(0, output.WrittenCount);

        Assert.Equal(1, protocol.WriteContextSwitch(0, 3, output));
        Assert.Equal(Multibulk("SELECT", "3"), Show(output.WrittenSpan));

        output.Clear();
        Assert.Equal(2, protocol.WriteContextSwitch(0, 12 | RespProtocol.Resp3Flag, output));
        Assert.Equal(Multibulk("SELECT", "12") + Multibulk("HELLO", "3"), Show(output.WrittenSpan));

        output.Clear();
        Assert.Equal(1, protocol.WriteContextSwitch(12 | RespProtocol.Resp3Flag, 12, output));
        Assert.Equal(Multibulk("HELLO", "2"), Show(output.WrittenSpan));

        output.Clear();
        Assert.Equal(1, protocol.WriteContextSwitch(RespProtocol.MakeContext(4, true), RespProtocol.MakeContext(0, true), output));
        Assert.Equal(Multibulk("SELECT", "0"), Show(output.WrittenSpan));
    }

    [Fact]
    public void Multi_block_is_held_and_submitted_on_exec()
    {
        var session = Session();
        var actions = Drain(session, "SELECT 1\r\nMULTI\r\nSET a 1\r\n" + Multibulk("INCR", "a") + "EXEC\r\nGET a\r\n");
        Assert.Equal(["+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n"], actions.Take(4).Select(a => a.Text));
        Assert.All(actions.Take(4), a => Assert.Equal(SessionActionKind.LocalReply, a.Kind));
        var exec = actions[4];
        Assert.Equal(SessionActionKind.Submit, exec.Kind);
        Assert.Equal(Multibulk("MULTI") + Multibulk("SET", "a", "1") + Multibulk("INCR", "a") + Multibulk("EXEC"), exec.Text);
        Assert.Equal(4, exec.ReplyCount);
        Assert.Equal(ReplySelection.Last, exec.Selection);
        Assert.Equal(1, exec.Context);
        Assert.Equal(Multibulk("GET", "a"), actions[5].Text);
        Assert.Equal(ReplySelection.All, actions[5].Selection);
    }

    [Fact]
    public void Exec_bytes_stay_valid_until_the_next_call()
    {
        var session = Session();
        var buffer = new ReadOnlySequence<byte>(Bytes("MULTI\r\nPING\r\nEXEC\r\nMULTI\r\nECHO x\r\nEXEC\r\n"));
        session.Next(ref buffer);
        session.Next(ref buffer);
        var exec = session.Next(ref buffer);
        Assert.Equal(Multibulk("MULTI") + Multibulk("PING") + Multibulk("EXEC"), Show(exec.Bytes.Span));
        session.Next(ref buffer);
        session.Next(ref buffer);
        exec = session.Next(ref buffer);
        Assert.Equal(Multibulk("MULTI") + Multibulk("ECHO", "x") + Multibulk("EXEC"), Show(exec.Bytes.Span));
    }

    [Fact]
    public void Empty_multi_block_submits_multi_and_exec()
    {
        var actions = Drain(Session(), "MULTI\r\nEXEC\r\n");
        Assert.Equal(Multibulk("MULTI") + Multibulk("EXEC"), actions[1].Text);
        Assert.Equal(2, actions[1].ReplyCount);
    }

    [Fact]
    public void Discard_drops_the_block()
    {
        var actions = Drain(Session(), "MULTI\r\nSET a 1\r\nDISCARD\r\nGET a\r\nEXEC\r\nDISCARD\r\n");
        Assert.Equal("+OK\r\n", actions[2].Text);
        Assert.Equal(SessionActionKind.Submit, actions[3].Kind);
        Assert.Equal(Multibulk("GET", "a"), actions[3].Text);
        Assert.Equal("-ERR EXEC without MULTI\r\n", actions[4].Text);
        Assert.Equal("-ERR DISCARD without MULTI\r\n", actions[5].Text);
    }

    [Fact]
    public void Rejected_command_in_a_block_aborts_it()
    {
        var actions = Drain(Session(), "MULTI\r\nSET a 1\r\nWAIT 1 0\r\nINCR a\r\nEXEC\r\nGET a\r\n");
        Assert.Equal("-ERR resh: wait is not supported under replication\r\n", actions[2].Text);
        Assert.Equal("+QUEUED\r\n", actions[3].Text);
        Assert.Equal(SessionActionKind.LocalReply, actions[4].Kind);
        Assert.Equal("-EXECABORT Transaction discarded because of previous errors.\r\n", actions[4].Text);
        Assert.Equal(SessionActionKind.Submit, actions[5].Kind);
        Assert.Equal(Multibulk("GET", "a"), actions[5].Text);
    }

    [Fact]
    public void Select_and_hello_inside_a_block_abort_it()
    {
        var actions = Drain(Session(), "MULTI\r\nSELECT 2\r\nEXEC\r\nMULTI\r\nHELLO 3\r\nEXEC\r\nGET a\r\n");
        Assert.Equal("-ERR resh: select inside MULTI is not supported under replication\r\n", actions[1].Text);
        Assert.StartsWith("-EXECABORT", actions[2].Text, StringComparison.Ordinal);
        Assert.Equal("-ERR resh: hello inside MULTI is not supported under replication\r\n", actions[4].Text);
        Assert.StartsWith("-EXECABORT", actions[5].Text, StringComparison.Ordinal);
        Assert.Equal(0, actions[6].Context);
    }

    [Fact]
    public void Nested_multi_is_an_error_that_keeps_the_block()
    {
        var actions = Drain(Session(), "MULTI\r\nMULTI\r\nINCR a\r\nEXEC\r\n");
        Assert.Equal("-ERR MULTI calls can not be nested\r\n", actions[1].Text);
        Assert.Equal(SessionActionKind.Submit, actions[3].Kind);
        Assert.Equal(Multibulk("MULTI") + Multibulk("INCR", "a") + Multibulk("EXEC"), actions[3].Text);
        Assert.Equal(3, actions[3].ReplyCount);
    }

    [Fact]
    public void Block_limits_are_fatal()
    {
        var actions = Drain(Session(new RespOptions { MaxQueuedCommands = 2 }), "MULTI\r\nINCR a\r\nINCR a\r\nINCR a\r\nEXEC\r\n");
        Assert.Equal(4, actions.Count);
        Assert.Equal(SessionActionKind.Fatal, actions[3].Kind);
        Assert.Equal("-ERR resh: MULTI block exceeds max-queued-commands (2)\r\n", actions[3].Text);
        Assert.True(actions[3].Close);

        var bytes = new RespOptions { MaxQueryBufferBytes = 100, MaxInlineBytes = 100, MaxBulkBytes = 100 };
        actions = Drain(Session(bytes), "MULTI\r\nSET key1 value1\r\nSET key2 value2\r\nSET key3 value3\r\nEXEC\r\n");
        Assert.Equal(SessionActionKind.Fatal, actions[^1].Kind);
        Assert.Equal("-ERR resh: MULTI block exceeds max-query-buffer-bytes (100)\r\n", actions[^1].Text);
    }

    [Fact]
    public void Closed_drops_an_open_block()
    {
        var session = Session();
        Assert.Equal(["+OK\r\n", "+QUEUED\r\n"], Drain(session, "MULTI\r\nSET a 1\r\n").Select(a => a.Text));
        session.Closed();
        Assert.Equal("-ERR EXEC without MULTI\r\n", One(session, "EXEC\r\n").Text);
    }

    [Fact]
    public void Quit_answers_ok_and_closes()
    {
        var action = Drain(Session(), "MULTI\r\nSET a 1\r\nQUIT\r\nGET a\r\n")[2];
        Assert.Equal(SessionActionKind.LocalReply, action.Kind);
        Assert.Equal("+OK\r\n", action.Text);
        Assert.True(action.Close);
    }

    [Theory]
    [InlineData("EXPIRE k 10", new[] { "PEXPIREAT", "k", "1700000010000" })]
    [InlineData("expire k 10 NX", new[] { "PEXPIREAT", "k", "1700000010000", "NX" })]
    [InlineData("EXPIRE k -5", new[] { "PEXPIREAT", "k", "1699999995000" })]
    [InlineData("PEXPIRE k 1500 GT", new[] { "PEXPIREAT", "k", "1700000001500", "GT" })]
    [InlineData("SET k v EX 10", new[] { "SET", "k", "v", "PXAT", "1700000010000" })]
    [InlineData("SET k v NX px 250 GET", new[] { "SET", "k", "v", "NX", "PXAT", "1700000000250", "GET" })]
    [InlineData("SETEX k 10 v", new[] { "SET", "k", "v", "PXAT", "1700000010000" })]
    [InlineData("PSETEX k 10 v", new[] { "SET", "k", "v", "PXAT", "1700000000010" })]
    [InlineData("GETEX k EX 5", new[] { "GETEX", "k", "PXAT", "1700000005000" })]
    [InlineData("GETEX k PX 5", new[] { "GETEX", "k", "PXAT", "1700000000005" })]
    [InlineData("RESTORE k 100 payload REPLACE", new[] { "RESTORE", "k", "1700000000100", "payload", "REPLACE", "ABSTTL" })]
    [InlineData("HEXPIRE h 10 FIELDS 1 f", new[] { "HPEXPIREAT", "h", "1700000010000", "FIELDS", "1", "f" })]
    public void Relative_times_become_absolute(string inline, string[] rewritten)
    {
        var action = One(Session(), inline + "\r\n");
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal(Multibulk(rewritten), action.Text);
    }

    [Theory]
    [InlineData("EXPIRE k abc")]
    [InlineData("EXPIRE k 99999999999999999")]
    [InlineData("EXPIRE k")]
    [InlineData("SET k v EX abc")]
    [InlineData("SET k v EX 0")]
    [InlineData("SET k v EX -3")]
    [InlineData("SET k v EXAT 100")]
    [InlineData("SET k v KEEPTTL")]
    [InlineData("SET k v EX")]
    [InlineData("SETEX k abc v")]
    [InlineData("SETEX k 10")]
    [InlineData("GETEX k PERSIST")]
    [InlineData("RESTORE k 0 payload")]
    [InlineData("RESTORE k 100 payload ABSTTL")]
    [InlineData("XADD s 1-1 f v")]
    [InlineData("XADD s 5-* f v")]
    [InlineData("GET k")]
    public void Other_requests_are_left_unchanged(string inline)
    {
        var action = One(Session(), inline + "\r\n");
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal(One(Session(new RespOptions { ExpiryRewrite = ExpiryRewrite.Passthrough }), inline + "\r\n"), action);
        Assert.Equal(Drain(Session(), Multibulk(inline.Split(' ')))[0], action);
    }

    [Fact]
    public void Passthrough_forwards_relative_times()
    {
        var session = Session(new RespOptions { ExpiryRewrite = ExpiryRewrite.Passthrough, Clock = new FakeClock(Now) });
        Assert.Equal(Multibulk("EXPIRE", "k", "10"), One(session, "EXPIRE k 10\r\n").Text);
        Assert.Equal(Multibulk("SETEX", "k", "0", "v"), One(session, "SETEX k 0 v\r\n").Text);
    }

    [Theory]
    [InlineData("SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n")]
    [InlineData("SETEX k -1 v", "-ERR invalid expire time in 'setex' command\r\n")]
    [InlineData("SETEX k 9223372036854775807 v", "-ERR invalid expire time in 'setex' command\r\n")]
    [InlineData("PSETEX k 0 v", "-ERR invalid expire time in 'psetex' command\r\n")]
    public void Invalid_setex_is_answered_locally(string inline, string reply)
    {
        var action = One(Session(), inline + "\r\n");
        Assert.Equal(SessionActionKind.LocalReply, action.Kind);
        Assert.Equal(reply, action.Text);
    }

    [Fact]
    public void Rewrites_apply_inside_a_block()
    {
        var actions = Drain(Session(), "MULTI\r\nEXPIRE k 1\r\nSETEX k 0 v\r\nEXEC\r\n");
        Assert.Equal("+QUEUED\r\n", actions[2].Text);
        Assert.Equal(Multibulk("MULTI") + Multibulk("PEXPIREAT", "k", "1700000001000") + Multibulk("SETEX", "k", "0", "v") + Multibulk("EXEC"), actions[3].Text);
    }

    [Fact]
    public void Rewrite_uses_the_clock_at_the_time_of_the_request()
    {
        var clock = new FakeClock(Now);
        var session = Session(new RespOptions { Clock = clock, ExpiryRewrite = ExpiryRewrite.Absolute });
        Assert.Equal(Multibulk("PEXPIREAT", "k", "1700000001000"), One(session, "EXPIRE k 1\r\n").Text);
        clock.Now = clock.Now.AddSeconds(5);
        Assert.Equal(Multibulk("PEXPIREAT", "k", "1700000006000"), One(session, "EXPIRE k 1\r\n").Text);
        Assert.Equal(XAdd("1700000005000", "1", "*", "f", "v"), One(session, "XADD s * f v\r\n").Text);

        // Stream ids never go back, even when the clock does.
        clock.Now = clock.Now.AddSeconds(-10);
        Assert.Equal(XAdd("1700000005000", "1", "*", "f", "v"), One(session, "XADD s * f v\r\n").Text);
        Assert.Equal(Multibulk("PEXPIREAT", "k", "1699999996000"), One(session, "EXPIRE k 1\r\n").Text);
    }

    /// <summary>XADD s ... as the gateway sends it: one script given its clock and the id's position.</summary>
    private static string XAdd(string millis, string at, params string[] rest) =>
        Multibulk(["EVAL", System.Text.Encoding.ASCII.GetString(RespScripts.XAdd), "1", "s", millis, at, .. rest]);

    [Theory]
    [InlineData("XADD s * f v", "1", new[] { "*", "f", "v" })]
    [InlineData("XADD s NOMKSTREAM MAXLEN ~ 10 LIMIT 5 * f v", "7", new[] { "NOMKSTREAM", "MAXLEN", "~", "10", "LIMIT", "5", "*", "f", "v" })]
    public void An_automatic_stream_id_is_fixed_by_a_script_from_the_gateways_clock(string inline, string at, string[] rest) =>
        Assert.Equal(XAdd("1700000000000", at, rest), One(Session(), inline + "\r\n").Text);
}
