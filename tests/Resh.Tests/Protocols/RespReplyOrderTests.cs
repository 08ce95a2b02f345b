using System.Buffers;
using System.Text;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

public sealed class RespReplyOrderTests
{
    private static string? Normalize(string reply, int hint)
    {
        var output = new ArrayBufferWriter<byte>();
        return new RespProtocol().TryNormalize(Encoding.ASCII.GetBytes(reply), hint, output) ? Encoding.ASCII.GetString(output.WrittenSpan) : null;
    }

    private static int HintOf(params string[] command)
    {
        var session = new RespProtocol().CreateSession(1);
        var buffer = new ReadOnlySequence<byte>(Resh.Clients.RespClient.Encode(command));
        var action = session.Next(ref buffer);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        return action.ReplyHint;
    }

    [Fact]
    public void Sets_in_different_orders_compare_equal_but_different_members_do_not()
    {
        var a = Normalize("*3\r\n$1\r\nc\r\n$1\r\na\r\n$2\r\nbb\r\n", RespReplyOrder.UnorderedElements);
        var b = Normalize("*3\r\n$2\r\nbb\r\n$1\r\nc\r\n$1\r\na\r\n", RespReplyOrder.UnorderedElements);
        var c = Normalize("*3\r\n$2\r\nbb\r\n$1\r\nc\r\n$1\r\nd\r\n", RespReplyOrder.UnorderedElements);
        Assert.NotNull(a);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Stream_consumer_times_of_each_replica_are_left_out_of_the_vote_but_their_counts_are_not()
    {
        Assert.Equal(RespReplyOrder.StreamTimes, HintOf("XINFO", "CONSUMERS", "s", "g"));
        Assert.Equal(RespReplyOrder.StreamTimes, HintOf("XINFO", "STREAM", "s", "FULL"));
        Assert.Equal(RespReplyOrder.Ordered, HintOf("XINFO", "GROUPS", "s"));
        const string Consumer = "*1\r\n*6\r\n$4\r\nname\r\n$4\r\nidle\r\n$7\r\npending\r\n:{0}\r\n$4\r\nidle\r\n:{1}\r\n";
        var a = Normalize(string.Format(System.Globalization.CultureInfo.InvariantCulture, Consumer, 3, 120), RespReplyOrder.StreamTimes);
        var b = Normalize(string.Format(System.Globalization.CultureInfo.InvariantCulture, Consumer, 3, 7), RespReplyOrder.StreamTimes);
        var c = Normalize(string.Format(System.Globalization.CultureInfo.InvariantCulture, Consumer, 4, 120), RespReplyOrder.StreamTimes);
        Assert.NotNull(a);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        var map = Normalize("%2\r\n$9\r\nseen-time\r\n:1796547538297\r\n$9\r\npel-count\r\n:1\r\n", RespReplyOrder.StreamTimes);
        Assert.Equal("%2\r\n$9\r\nseen-time\r\n:0\r\n$9\r\npel-count\r\n:1\r\n", map);
        Assert.Null(Normalize("-ERR no such key\r\n", RespReplyOrder.StreamTimes));
    }

    [Fact]
    public void Hash_pairs_are_sorted_as_pairs_so_a_swapped_value_is_still_caught()
    {
        var a = Normalize("*4\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\ng\r\n$1\r\n2\r\n", RespReplyOrder.UnorderedPairs);
        var b = Normalize("*4\r\n$1\r\ng\r\n$1\r\n2\r\n$1\r\nf\r\n$1\r\n1\r\n", RespReplyOrder.UnorderedPairs);
        var swapped = Normalize("*4\r\n$1\r\ng\r\n$1\r\n1\r\n$1\r\nf\r\n$1\r\n2\r\n", RespReplyOrder.UnorderedPairs);
        Assert.Equal(a, b);
        Assert.NotEqual(a, swapped);
        var map = Normalize("%2\r\n$1\r\ng\r\n:2\r\n$1\r\nf\r\n:1\r\n", RespReplyOrder.UnorderedPairs);
        Assert.Equal("%2\r\n$1\r\nf\r\n:1\r\n$1\r\ng\r\n:2\r\n", map);
    }

    [Fact]
    public void Deep_hint_sorts_nested_aggregates_too()
    {
        var a = Normalize("*2\r\n*2\r\n$1\r\nx\r\n*2\r\n$1\r\nq\r\n$1\r\np\r\n*1\r\n$1\r\ny\r\n", RespReplyOrder.UnorderedDeep);
        var b = Normalize("*2\r\n*1\r\n$1\r\ny\r\n*2\r\n$1\r\nx\r\n*2\r\n$1\r\np\r\n$1\r\nq\r\n", RespReplyOrder.UnorderedDeep);
        var c = Normalize("*2\r\n*1\r\n$1\r\ny\r\n*2\r\n$1\r\nx\r\n*2\r\n$1\r\np\r\n$1\r\nr\r\n", RespReplyOrder.UnorderedDeep);
        Assert.NotNull(a);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Non_aggregates_and_ordered_replies_are_left_alone()
    {
        Assert.Null(Normalize("$3\r\nabc\r\n", RespReplyOrder.UnorderedElements));
        Assert.Null(Normalize("*1\r\n$1\r\na\r\n", RespReplyOrder.UnorderedElements));
        Assert.Null(Normalize("*2\r\n$1\r\nb\r\n$1\r\na\r\n", RespReplyOrder.Ordered));
        Assert.Null(Normalize("-ERR wrong\r\n", RespReplyOrder.UnorderedElements));
    }

    [Theory]
    [InlineData(RespReplyOrder.UnorderedElements, "SMEMBERS", "s")]
    [InlineData(RespReplyOrder.UnorderedElements, "keys", "*")]
    [InlineData(RespReplyOrder.UnorderedElements, "SUNION", "a", "b")]
    [InlineData(RespReplyOrder.UnorderedPairs, "HGETALL", "h")]
    [InlineData(RespReplyOrder.UnorderedDeep, "COMMAND")]
    [InlineData(RespReplyOrder.UnorderedDeep, "COMMAND", "DOCS")]
    [InlineData(RespReplyOrder.UnorderedElements, "COMMAND", "LIST")]
    [InlineData(RespReplyOrder.UnorderedDeep, "COMMAND", "DOCS", "client")]
    [InlineData(RespReplyOrder.Ordered, "COMMAND", "COUNT")]
    [InlineData(RespReplyOrder.Ordered, "LRANGE", "l", "0", "-1")]
    [InlineData(RespReplyOrder.Ordered, "GET", "k")]
    public void Requests_carry_the_hint_of_their_command(int hint, params string[] command) => Assert.Equal(hint, HintOf(command));

    [Fact]
    public void Scan_starts_from_a_voted_snapshot_and_pages_it_from_the_gateway()
    {
        var session = new RespProtocol().CreateSession(1);
        var buffer = new ReadOnlySequence<byte>(Resh.Clients.RespClient.Encode("SCAN", "0", "COUNT", "2"));
        var action = session.Next(ref buffer);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal("*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", Encoding.ASCII.GetString(action.Bytes.Span));
        Assert.Equal(RespReplyOrder.UnorderedElements, action.ReplyHint);
        var first = Encoding.ASCII.GetString(action.Transform!.Apply("*3\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n"u8.ToArray()).Span);
        Assert.EndsWith("\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n", first, StringComparison.Ordinal);
        var cursor = first.Split("\r\n")[2];
        Assert.NotEqual("0", cursor);

        buffer = new ReadOnlySequence<byte>(Resh.Clients.RespClient.Encode("SCAN", cursor, "COUNT", "2"));
        var next = session.Next(ref buffer);
        Assert.Equal(SessionActionKind.LocalReply, next.Kind);
        Assert.Equal("*2\r\n$1\r\n0\r\n*1\r\n$1\r\nc\r\n", Encoding.ASCII.GetString(next.Bytes.Span));

        // Finished: the cursor is gone, and says so.
        buffer = new ReadOnlySequence<byte>(Resh.Clients.RespClient.Encode("SCAN", cursor));
        Assert.StartsWith("-ERR resh: unknown or expired cursor", Encoding.ASCII.GetString(session.Next(ref buffer).Bytes.Span), StringComparison.Ordinal);
    }
}
