using System.Buffers;
using System.Text;
using Resh.Protocols;
using Resh.Protocols.Resp;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

public class RespReplyFramerTests
{
    public static readonly TheoryData<string> Replies = new()
    {
        "+OK\r\n",
        "+\r\n",
        "-ERR unknown command 'foo'\r\n",
        ":0\r\n",
        ":-42\r\n",
        ":9223372036854775807\r\n",
        "$3\r\nbar\r\n",
        "$0\r\n\r\n",
        "$-1\r\n",
        "$4\r\n\r\n\r\n\r\n",
        "*-1\r\n",
        "*0\r\n",
        "*3\r\n:1\r\n$1\r\na\r\n+b\r\n",
        "*2\r\n*2\r\n:1\r\n:2\r\n*0\r\n",
        "*3\r\n+OK\r\n-ERR x\r\n*1\r\n$-1\r\n",
        "_\r\n",
        ",3.14\r\n",
        ",inf\r\n",
        ",-nan\r\n",
        "#t\r\n",
        "#f\r\n",
        "(3492890328409238509324850943850943825024385\r\n",
        "(-1\r\n",
        "!21\r\nSYNTAX invalid syntax\r\n",
        "=15\r\ntxt:Some string\r\n",
        "%2\r\n+first\r\n:1\r\n+second\r\n%1\r\n+nested\r\n~2\r\n:1\r\n:2\r\n",
        "%0\r\n",
        "~3\r\n+a\r\n+b\r\n+c\r\n",
        ">3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n",
        "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        "*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:7\r\n",
        "|0\r\n+OK\r\n",
    };

    [Theory]
    [MemberData(nameof(Replies))]
    public void Frames_every_type_whole_and_nothing_less(string reply)
    {
        var data = Bytes(reply + "+NEXT\r\n");
        var framer = new RespReplyFramer();
        Assert.Equal(FrameStatus.Complete, framer.TryFrame(new ReadOnlySequence<byte>(data), out var end));
        Assert.Equal(reply.Length, end.GetInteger());

        for (var length = 0; length < reply.Length; length++)
        {
            Assert.Equal(FrameStatus.Incomplete, new RespReplyFramer().TryFrame(new ReadOnlySequence<byte>(data, 0, length), out _));
        }
    }

    [Theory]
    [MemberData(nameof(Replies))]
    public void Same_framer_resumes_over_growing_input(string reply)
    {
        var data = Bytes(reply + ":1\r\n");
        var framer = new RespReplyFramer();
        for (var length = 0; length < reply.Length; length++)
        {
            Assert.Equal(FrameStatus.Incomplete, framer.TryFrame(new ReadOnlySequence<byte>(data, 0, length), out _));
        }

        Assert.Equal(FrameStatus.Complete, framer.TryFrame(new ReadOnlySequence<byte>(data), out var end));
        Assert.Equal(reply.Length, new ReadOnlySequence<byte>(data).Slice(0, end).Length);
        Assert.Equal([":1\r\n"], FrameAll(framer, new ReadOnlySequence<byte>(data).Slice(end)));
    }

    [Theory]
    [MemberData(nameof(Replies))]
    public void Every_segment_boundary_frames_the_same(string reply)
    {
        var data = Bytes(reply + reply);
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal([reply, reply], FrameAll(new RespReplyFramer(), Segmented(data, cut, cut + 1, cut + 5)));
        }

        Assert.Equal([reply, reply], FrameAll(new RespReplyFramer(), Chunked(data, 1)));
    }

    [Fact]
    public void Deep_nesting_needs_no_recursion()
    {
        var builder = new StringBuilder();
        for (var i = 0; i < 100_000; i++)
        {
            builder.Append(i % 3 == 0 ? "*1\r\n" : i % 3 == 1 ? "%1\r\n+k\r\n" : "|1\r\n+a\r\n+b\r\n");
        }

        builder.Append(":1\r\n");
        var reply = builder.ToString();
        Assert.Equal([reply, "+OK\r\n"], FrameAll(new RespReplyFramer(), new ReadOnlySequence<byte>(Bytes(reply + "+OK\r\n"))));
    }

    [Fact]
    public void Attribute_without_its_reply_is_incomplete()
    {
        Assert.Equal(FrameStatus.Incomplete, new RespReplyFramer().TryFrame(new ReadOnlySequence<byte>(Bytes("|1\r\n+a\r\n+b\r\n")), out _));
    }

    [Fact]
    public void Framing_several_replies_then_restarting_from_the_first_is_correct()
    {
        // The applier frames the replies of one unit in a row and, when the last is incomplete,
        // starts again from the first one once more data has arrived.
        var data = Bytes("+OK\r\n:5\r\n*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n");
        var framer = new RespReplyFramer();
        var partial = new ReadOnlySequence<byte>(data, 0, 20);
        Assert.Equal(["+OK\r\n", ":5\r\n"], FrameAll(framer, partial));
        Assert.Equal(["+OK\r\n", ":5\r\n", "*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n"], FrameAll(framer, new ReadOnlySequence<byte>(data)));
    }

    [Theory]
    [InlineData("hello\r\n")]
    [InlineData("\r\n")]
    [InlineData("$abc\r\n")]
    [InlineData("$3\r\nfooXX")]
    [InlineData("$-2\r\n")]
    [InlineData("$03\r\nfoo\r\n")]
    [InlineData(":12a\r\n")]
    [InlineData(":\r\n")]
    [InlineData(":1\n")]
    [InlineData("+OK\n")]
    [InlineData("#x\r\n")]
    [InlineData("#tt\r\n")]
    [InlineData("_x\r\n")]
    [InlineData(",\r\n")]
    [InlineData("(12a\r\n")]
    [InlineData("(\r\n")]
    [InlineData("*-2\r\n")]
    [InlineData("~-1\r\n")]
    [InlineData("!-1\r\n")]
    [InlineData("=2\r\nab\r\n")]
    [InlineData("*2\r\n:1\r\nx\r\n")]
    [InlineData("?\r\n")]
    [InlineData("*?\r\n")]
    [InlineData(":123456789012345678901234567890\r\n")]
    public void Garbage_is_invalid(string reply)
    {
        Assert.Equal(FrameStatus.Invalid, new RespReplyFramer().TryFrame(new ReadOnlySequence<byte>(Bytes(reply)), out _));
        Assert.Equal(FrameStatus.Invalid, new RespReplyFramer().TryFrame(Chunked(Bytes(reply), 1), out _));
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        const string alphabet = "+-:$*_,#(!=%~>|\r\n0123456789-?abc";
        for (var seed = 0; seed < 2000; seed++)
        {
            var random = new Random(seed);
            var data = new byte[random.Next(1, 120)];
            if (seed % 2 == 0)
            {
                random.NextBytes(data);
            }
            else
            {
                for (var i = 0; i < data.Length; i++)
                {
                    data[i] = (byte)alphabet[random.Next(alphabet.Length)];
                }
            }

            var whole = FrameAll(new RespReplyFramer(), new ReadOnlySequence<byte>(data));
            var pieces = FrameAll(new RespReplyFramer(), Chunked(data, random.Next(1, 6)));
            Assert.Equal(whole, pieces);
            var framer = new RespReplyFramer();
            for (var length = 0; length <= data.Length; length++)
            {
                framer.TryFrame(new ReadOnlySequence<byte>(data, 0, length), out _);
            }
        }
    }

    [Fact]
    public void Large_bulk_arriving_in_pieces_is_scanned_once_complete()
    {
        var payload = new string('x', 1_000_000);
        var data = Bytes($"${payload.Length}\r\n{payload}\r\n");
        var framer = new RespReplyFramer();
        for (var length = 0; length < data.Length; length += 65536)
        {
            Assert.Equal(FrameStatus.Incomplete, framer.TryFrame(new ReadOnlySequence<byte>(data, 0, length), out _));
        }

        Assert.Equal(FrameStatus.Complete, framer.TryFrame(new ReadOnlySequence<byte>(data), out var end));
        Assert.Equal(data.Length, end.GetInteger());
    }
}
