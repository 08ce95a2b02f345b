using System.Buffers;
using Resh.Protocols;
using Resh.Protocols.Resp;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

public class RespRequestParsingTests
{
    /// <summary>A pipelined stream mixing multibulk, inline, skipped input, local replies and a MULTI block.</summary>
    private static readonly string Stream =
        Multibulk("SET", "key", "value") +
        "GET key\r\n" +
        "\r\n" +
        "*0\r\n" +
        Multibulk("SELECT", "2") +
        "  set \"a b\" 'c\\'d'  \n" +
        Multibulk("MULTI") +
        Multibulk("INCR", "counter") +
        "LPUSH list x y z\r\n" +
        Multibulk("EXEC") +
        Multibulk("WAIT", "1", "0") +
        Multibulk("APPEND", "bin", "\0\r\n\u00ff") +
        "PING\n";

    private static RespProtocol Protocol(RespOptions? options = null) => new(options ?? new RespOptions { Clock = new FakeClock(1_000_000) });

    private static List<RecordedAction> OneShot(string input, RespOptions? options = null) =>
        Drain(Protocol(options).CreateSession(1), input);

    [Fact]
    public void Multibulk_request_is_submitted_as_is()
    {
        var request = Multibulk("SET", "key", "value");
        var actions = OneShot(request);
        var action = Assert.Single(actions);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal(request, action.Text);
        Assert.Equal(1, action.ReplyCount);
        Assert.Equal(ReplySelection.All, action.Selection);
        Assert.Equal(0, action.Context);
    }

    [Theory]
    [InlineData("SET key value\r\n", new[] { "SET", "key", "value" })]
    [InlineData("SET key value\n", new[] { "SET", "key", "value" })]
    [InlineData("  SET   key\tvalue  \r\n", new[] { "SET", "key", "value" })]
    [InlineData("set \"a b\" 'c d'\r\n", new[] { "set", "a b", "c d" })]
    [InlineData("set \"\\x41\\n\\t\\\\\\\"\" x\r\n", new[] { "set", "A\n\t\\\"", "x" })]
    [InlineData("set 'it\\'s' \"\"\r\n", new[] { "set", "it's", "" })]
    [InlineData("set a\"b c\" x\r\n", new[] { "set", "ab c", "x" })]
    [InlineData("echo \"\\q\"\r\n", new[] { "echo", "q" })]
    [InlineData("echo \\x41\r\n", new[] { "echo", "\\x41" })]
    public void Inline_request_is_canonical_multibulk(string inline, string[] args)
    {
        var fromInline = Assert.Single(OneShot(inline));
        var fromMultibulk = Assert.Single(OneShot(Multibulk(args)));
        Assert.Equal(SessionActionKind.Submit, fromInline.Kind);
        Assert.Equal(Multibulk(args), fromInline.Text);
        Assert.Equal(fromMultibulk, fromInline);
    }

    [Theory]
    [InlineData("set \"abc\r\n")]
    [InlineData("set 'abc\r\n")]
    [InlineData("set \"abc\"x\r\n")]
    [InlineData("set 'abc'x\r\n")]
    public void Unbalanced_quotes_are_fatal(string inline)
    {
        var action = Assert.Single(OneShot(inline));
        Assert.Equal(SessionActionKind.Fatal, action.Kind);
        Assert.Equal("-ERR Protocol error: unbalanced quotes in request\r\n", action.Text);
        Assert.True(action.Close);
    }

    [Fact]
    public void Empty_lines_and_empty_multibulk_are_skipped()
    {
        var actions = OneShot("\r\n\n   \r\n*0\r\n*-1\r\nPING\r\n");
        var action = Assert.Single(actions);
        Assert.Equal(Multibulk("PING"), action.Text);
    }

    [Fact]
    public void Skipped_input_is_consumed()
    {
        var session = Protocol().CreateSession(1);
        var buffer = new ReadOnlySequence<byte>(Bytes("\r\n\r\n*0\r\nPI"));
        var action = session.Next(ref buffer);
        Assert.Equal(SessionActionKind.NeedMoreData, action.Kind);
        Assert.Equal("PI", Show(buffer.ToArray()));
    }

    [Fact]
    public void Pipelined_batch_yields_one_action_per_request_in_order()
    {
        var actions = OneShot(Stream);
        Assert.Equal(
            [
                SessionActionKind.Submit, SessionActionKind.Submit, SessionActionKind.LocalReply, SessionActionKind.Submit,
                SessionActionKind.LocalReply, SessionActionKind.LocalReply, SessionActionKind.LocalReply, SessionActionKind.Submit,
                SessionActionKind.LocalReply, SessionActionKind.Submit, SessionActionKind.Submit,
            ],
            actions.Select(a => a.Kind));
        Assert.Equal(Multibulk("GET", "key"), actions[1].Text);
        Assert.Equal(Multibulk("set", "a b", "c'd"), actions[3].Text);
        Assert.Equal(2, actions[3].Context);
        Assert.Equal(Multibulk("MULTI") + Multibulk("INCR", "counter") + Multibulk("LPUSH", "list", "x", "y", "z") + Multibulk("EXEC"), actions[7].Text);
        Assert.StartsWith("-ERR resh: wait", actions[8].Text, StringComparison.Ordinal);
        Assert.Equal(Multibulk("APPEND", "bin", "\0\r\n\u00ff"), actions[9].Text);
        Assert.Equal(Multibulk("PING"), actions[10].Text);
    }

    [Fact]
    public void Every_two_piece_split_gives_the_same_actions()
    {
        var data = Bytes(Stream);
        var expected = OneShot(Stream);
        for (var cut = 0; cut <= data.Length; cut++)
        {
            var session = Protocol().CreateSession(1);
            var actions = Feed(session, new ReadOnlySequence<byte>(data), [cut]);
            Assert.True(expected.SequenceEqual(actions), $"split at {cut}");
        }
    }

    [Fact]
    public void Byte_by_byte_arrival_gives_the_same_actions()
    {
        var data = Bytes(Stream);
        var expected = OneShot(Stream);
        var arrivals = Enumerable.Range(1, data.Length - 1).Select(i => (long)i);
        Assert.Equal(expected, Feed(Protocol().CreateSession(1), new ReadOnlySequence<byte>(data), arrivals));
        Assert.Equal(expected, Feed(Protocol().CreateSession(1), Chunked(data, 1), arrivals));
    }

    [Fact]
    public void Every_segment_boundary_gives_the_same_actions()
    {
        var data = Bytes(Stream);
        var expected = OneShot(Stream);
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal(expected, Drain(Protocol().CreateSession(1), Segmented(data, cut, cut, cut + 3)));
        }

        for (var size = 1; size <= 7; size++)
        {
            Assert.Equal(expected, Drain(Protocol().CreateSession(1), Chunked(data, size)));
            var arrivals = Enumerable.Range(1, data.Length - 1).Where(i => i % 5 == 0).Select(i => (long)i);
            Assert.Equal(expected, Feed(Protocol().CreateSession(1), Chunked(data, size), arrivals));
        }
    }

    [Fact]
    public void Large_argument_arriving_in_pieces_is_framed_once_complete()
    {
        var big = new string('x', 300_000);
        var request = Bytes(Multibulk("SET", "k", big) + Multibulk("GET", "k"));
        var arrivals = Enumerable.Range(1, request.Length / 4096).Select(i => (long)i * 4096);
        var actions = Feed(Protocol().CreateSession(1), Chunked(request, 4096), arrivals);
        Assert.Equal(2, actions.Count);
        Assert.Equal(Multibulk("SET", "k", big), actions[0].Text);
    }

    [Theory]
    [InlineData("*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*01\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*+1\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*1\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*99999999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n")]
    [InlineData("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n")]
    [InlineData("*1\r\n\r\n", "-ERR Protocol error: expected '$', got '\\x0d'\r\n")]
    [InlineData("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*1\r\n$04\r\nPING\r\n", "-ERR Protocol error: invalid bulk length\r\n")]
    [InlineData("*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk data\r\n")]
    public void Protocol_errors_are_fatal_with_redis_text(string input, string reply)
    {
        var action = Assert.Single(OneShot(input));
        Assert.Equal(SessionActionKind.Fatal, action.Kind);
        Assert.Equal(reply, action.Text);
        Assert.True(action.Close);
    }

    [Fact]
    public void Fatal_consumes_the_buffer()
    {
        var session = Protocol().CreateSession(1);
        var buffer = new ReadOnlySequence<byte>(Bytes("*x\r\nPING\r\n"));
        Assert.Equal(SessionActionKind.Fatal, session.Next(ref buffer).Kind);
        Assert.True(buffer.IsEmpty);
    }

    [Fact]
    public void Inline_line_longer_than_the_limit_is_fatal_even_before_its_end()
    {
        var options = new RespOptions { MaxInlineBytes = 16 };
        Assert.Equal(SessionActionKind.Submit, Assert.Single(OneShot(new string('a', 16) + "\r\n", options)).Kind);
        var action = Assert.Single(OneShot(new string('a', 17) + "\r\n", options));
        Assert.Equal(SessionActionKind.Fatal, action.Kind);
        Assert.Equal("-ERR resh: request exceeds max-inline-bytes (16)\r\n", action.Text);
        Assert.Equal(SessionActionKind.Fatal, Assert.Single(OneShot(new string('a', 40), options)).Kind);
        Assert.Empty(OneShot(new string('a', 17), options));
    }

    [Fact]
    public void Default_inline_limit_message()
    {
        var action = Assert.Single(OneShot(new string('a', (64 * 1024) + 10)));
        Assert.Equal("-ERR resh: request exceeds max-inline-bytes (65536)\r\n", action.Text);
    }

    [Fact]
    public void Bulk_longer_than_the_limit_is_fatal_from_its_header()
    {
        var options = new RespOptions { MaxBulkBytes = 10 };
        Assert.Equal(SessionActionKind.Submit, Assert.Single(OneShot(Multibulk("SET", "k", new string('v', 10)), options)).Kind);
        var action = Assert.Single(OneShot("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\n", options));
        Assert.Equal(SessionActionKind.Fatal, action.Kind);
        Assert.Equal("-ERR resh: request exceeds max-bulk-bytes (10)\r\n", action.Text);
    }

    [Fact]
    public void Too_many_arguments_is_fatal()
    {
        var options = new RespOptions { MaxArguments = 3 };
        Assert.Equal(SessionActionKind.Submit, Assert.Single(OneShot(Multibulk("SET", "k", "v"), options)).Kind);
        var action = Assert.Single(OneShot("*4\r\n", options));
        Assert.Equal("-ERR resh: request exceeds max-arguments (3)\r\n", action.Text);
        action = Assert.Single(OneShot("MSET a b c d\r\n", options));
        Assert.Equal("-ERR resh: request exceeds max-arguments (3)\r\n", action.Text);
    }

    [Fact]
    public void Request_larger_than_the_query_buffer_is_fatal_from_its_headers()
    {
        var options = new RespOptions { MaxQueryBufferBytes = 64, MaxInlineBytes = 64, MaxBulkBytes = 64 };
        Assert.Equal(SessionActionKind.Submit, Assert.Single(OneShot(Multibulk("SET", "k", new string('v', 30)), options)).Kind);
        var action = Assert.Single(OneShot("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$50\r\n", options));
        Assert.Equal("-ERR resh: request exceeds max-query-buffer-bytes (64)\r\n", action.Text);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var protocol = Protocol();
        for (var seed = 0; seed < 2000; seed++)
        {
            var random = new Random(seed);
            var data = new byte[random.Next(1, 200)];
            random.NextBytes(data);
            if (seed % 3 == 0)
            {
                data[0] = (byte)'*';
            }

            RunFuzz(protocol, data, random);
        }
    }

    [Fact]
    public void Mutated_requests_never_throw()
    {
        var protocol = Protocol();
        var template = Bytes(Stream);
        for (var seed = 0; seed < 2000; seed++)
        {
            var random = new Random(seed);
            var data = (byte[])template.Clone();
            for (var i = random.Next(1, 6); i > 0; i--)
            {
                data[random.Next(data.Length)] = random.Next(4) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)"*$\r\n-0123456789\"'\\ "[random.Next(18)],
                    2 => (byte)'\r',
                    _ => (byte)random.Next((int)'0', (int)'9' + 1),
                };
            }

            RunFuzz(protocol, data, random);
        }
    }

    private static void RunFuzz(RespProtocol protocol, byte[] data, Random random)
    {
        var whole = Drain(protocol.CreateSession(1), new ReadOnlySequence<byte>(data));
        var segments = Drain(protocol.CreateSession(1), Chunked(data, random.Next(1, 9)));
        var arrivals = Enumerable.Range(1, data.Length).Where(_ => random.Next(4) == 0).Select(i => (long)i).ToArray();
        var fed = Feed(protocol.CreateSession(1), new ReadOnlySequence<byte>(data), arrivals);
        Assert.Equal(whole, segments);
        Assert.Equal(whole, fed);
        Assert.All(whole, a => Assert.NotEqual(SessionActionKind.NeedMoreData, a.Kind));
    }
}
