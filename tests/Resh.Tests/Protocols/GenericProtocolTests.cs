using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Resh.Protocols;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

public class GenericProtocolTests
{
    private static byte[] Frame(string payload) => LengthPrefixedProtocol.Frame(Bytes(payload));

    [Fact]
    public void Line_requests_are_lines()
    {
        var data = Bytes("get a\nset b 1\r\n\npartial");
        var expected = new[] { "get a\n", "set b 1\r\n", "\n" };
        var protocol = new LineProtocol();
        var actions = Drain(protocol.CreateSession(1), new ReadOnlySequence<byte>(data));
        Assert.Equal(expected, actions.Select(a => a.Text));
        Assert.All(actions, a => Assert.Equal(SessionActionKind.Submit, a.Kind));
        Assert.All(actions, a => Assert.Equal(1, a.ReplyCount));
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal(actions, Feed(protocol.CreateSession(1), new ReadOnlySequence<byte>(data), [cut]));
            Assert.Equal(actions, Drain(protocol.CreateSession(1), Segmented(data, cut, cut + 2)));
        }
    }

    [Fact]
    public void Line_longer_than_the_limit_is_fatal()
    {
        var protocol = new LineProtocol(8);
        Assert.Equal("1234567\n", Assert.Single(Drain(protocol.CreateSession(1), "1234567\n")).Text);
        Assert.Empty(Drain(protocol.CreateSession(1), "1234567"));
        var fatal = Assert.Single(Drain(protocol.CreateSession(1), "12345678\n"));
        Assert.Equal(SessionActionKind.Fatal, fatal.Kind);
        Assert.Equal("ERR resh: line exceeds max-line-bytes\n", fatal.Text);
        Assert.True(fatal.Close);
        var arrivals = Enumerable.Range(1, 8).Select(i => (long)i);
        Assert.Equal(SessionActionKind.Fatal, Assert.Single(Feed(protocol.CreateSession(1), new ReadOnlySequence<byte>(Bytes("123456789")), arrivals)).Kind);
    }

    [Fact]
    public void Line_replies_are_lines()
    {
        var protocol = new LineProtocol(new LineOptions { MaxReplyLineBytes = 10 });
        var data = Bytes("OK\nVALUE 12\r\n");
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal(["OK\n", "VALUE 12\r\n"], FrameAll(protocol.CreateReplyFramer(), Segmented(data, cut)));
        }

        var framer = protocol.CreateReplyFramer();
        Assert.Equal(FrameStatus.Incomplete, framer.TryFrame(new ReadOnlySequence<byte>(Bytes("123456789")), out _));
        Assert.Equal(FrameStatus.Invalid, framer.TryFrame(new ReadOnlySequence<byte>(Bytes("1234567890")), out _));
    }

    [Fact]
    public void Line_protocol_has_no_context_normalization_or_corruption()
    {
        var protocol = new LineProtocol();
        var output = new ArrayBufferWriter<byte>();
        Assert.Equal(0, protocol.WriteContextSwitch(0, 5, output));
        Assert.False(protocol.TryNormalize(Bytes("ERR x y\n"), 0, output));
        Assert.Equal(0, output.WrittenCount);
        Assert.Equal("ERR resh: replicas  disagree\n", Show(protocol.ErrorReply("resh: replicas\r\ndisagree")));
        var error = Assert.Throws<NotSupportedException>(() => protocol.CorruptAsync(new IPEndPoint(IPAddress.Loopback, 1), CancellationToken.None).GetAwaiter().GetResult());
        Assert.Contains("line protocol", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Length_prefixed_requests_are_frames()
    {
        var data = Frame("hello").Concat(Frame("")).Concat(Frame("\0\r\n")).Concat(Bytes("\0\0\0\u0009part")).ToArray();
        var protocol = new LengthPrefixedProtocol();
        var actions = Drain(protocol.CreateSession(1), new ReadOnlySequence<byte>(data));
        Assert.Equal([Show(Frame("hello")), Show(Frame("")), Show(Frame("\0\r\n"))], actions.Select(a => a.Text));
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal(actions, Feed(protocol.CreateSession(1), new ReadOnlySequence<byte>(data), [cut]));
            Assert.Equal(actions, Drain(protocol.CreateSession(1), Segmented(data, cut, cut + 1)));
        }
    }

    [Fact]
    public void Length_prefixed_frame_over_the_limit_is_fatal()
    {
        var protocol = new LengthPrefixedProtocol(new LengthPrefixedOptions { MaxFrameBytes = 4 });
        Assert.Equal(SessionActionKind.Submit, Assert.Single(Drain(protocol.CreateSession(1), Show(Frame("1234")))).Kind);
        var fatal = Assert.Single(Drain(protocol.CreateSession(1), "\0\0\0\u0005"));
        Assert.Equal(SessionActionKind.Fatal, fatal.Kind);
        Assert.Equal(Show(Frame("ERR resh: frame exceeds max-frame-bytes (4)")), fatal.Text);
        Assert.True(fatal.Close);
        var huge = Assert.Single(Drain(new LengthPrefixedProtocol().CreateSession(1), "\u00ff\u00ff\u00ff\u00ff"));
        Assert.Equal(SessionActionKind.Fatal, huge.Kind);
    }

    [Fact]
    public void Length_prefixed_replies_are_frames()
    {
        var protocol = new LengthPrefixedProtocol(new LengthPrefixedOptions { MaxFrameBytes = 5 });
        var data = Frame("abc").Concat(Frame("12345")).ToArray();
        for (var cut = 0; cut <= data.Length; cut++)
        {
            Assert.Equal([Show(Frame("abc")), Show(Frame("12345"))], FrameAll(protocol.CreateReplyFramer(), Segmented(data, cut)));
        }

        Assert.Equal(FrameStatus.Incomplete, protocol.CreateReplyFramer().TryFrame(new ReadOnlySequence<byte>(Bytes("\0\0")), out _));
        Assert.Equal(FrameStatus.Invalid, protocol.CreateReplyFramer().TryFrame(new ReadOnlySequence<byte>(Frame("123456")), out _));
        Assert.Equal(Show(Frame("ERR resh: x")), Show(protocol.ErrorReply("resh: x")));
        Assert.Equal(0, protocol.WriteContextSwitch(0, 1, new ArrayBufferWriter<byte>()));
        Assert.Throws<NotSupportedException>(() => protocol.CorruptAsync(new IPEndPoint(IPAddress.Loopback, 1), CancellationToken.None).GetAwaiter().GetResult());
    }

    [Fact]
    public void Options_validation_names_the_key()
    {
        Assert.Empty(new LineOptions().Validate());
        Assert.Empty(new LengthPrefixedOptions().Validate());
        Assert.StartsWith("service.limits.max-line-bytes must be between 1 and ", Assert.Single(new LineOptions { MaxLineBytes = 0 }.Validate()), StringComparison.Ordinal);
        Assert.StartsWith("service.limits.max-frame-bytes must be between 1 and ", Assert.Single(new LengthPrefixedOptions { MaxFrameBytes = -5 }.Validate()), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ProtocolFactory.Create("line", line: new LineOptions { MaxLineBytes = 0 }));
        Assert.Throws<ArgumentException>(() => new LengthPrefixedProtocol(0));
        Assert.Equal(SessionActionKind.Fatal, Assert.Single(Drain(new LengthPrefixedProtocol(2).CreateSession(1), "\0\0\0\u0003abc")).Kind);
    }

    [Fact]
    public async Task Generic_probe_is_a_tcp_connect()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var endpoint = (IPEndPoint)listener.LocalEndpoint;
        Assert.True(await new LineProtocol().ProbeAsync(endpoint, CancellationToken.None));
        Assert.True(await new LengthPrefixedProtocol().ProbeAsync(endpoint, CancellationToken.None));
        listener.Stop();
        Assert.False(await new LineProtocol().ProbeAsync(endpoint, CancellationToken.None));
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new LineProtocol().ProbeAsync(endpoint, cancelled.Token));
    }
}
