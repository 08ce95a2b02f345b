using System.Buffers;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

/// <summary>What the checkpoint machinery needs of every protocol: operator commands and error replies.</summary>
public sealed class ProtocolCommandContractTests
{
    public static TheoryData<string> Protocols => ["resp", "line", "length-prefixed"];

    private static IProtocol Create(string name) => name switch
    {
        "resp" => new RespProtocol(),
        "line" => new LineProtocol(),
        _ => new LengthPrefixedProtocol(),
    };

    [Theory]
    [MemberData(nameof(Protocols))]
    public void An_encoded_command_is_one_request_of_one_reply_to_the_protocol_itself(string name)
    {
        var protocol = Create(name);
        var bytes = protocol.EncodeCommand("  GET   some-key ");
        var buffer = new ReadOnlySequence<byte>(bytes);
        var action = protocol.CreateSession(1).Next(ref buffer);
        Assert.Equal(SessionActionKind.Submit, action.Kind);
        Assert.Equal(1, action.ReplyCount);
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void Its_own_error_reply_is_an_error_and_a_plain_reply_is_not(string name)
    {
        var protocol = Create(name);
        Assert.True(protocol.IsErrorReply(protocol.ErrorReply("it broke")));
        var ok = name switch
        {
            "resp" => "+OK\r\n"u8.ToArray(),
            "line" => "OK\n"u8.ToArray(),
            _ => LengthPrefixedProtocol.Frame("OK"u8),
        };
        Assert.False(protocol.IsErrorReply(ok));
        Assert.False(protocol.IsErrorReply([]));
    }

    [Theory]
    [MemberData(nameof(Protocols))]
    public void An_empty_command_is_refused(string name) =>
        Assert.ThrowsAny<ArgumentException>(() => Create(name).EncodeCommand(" "));
}
