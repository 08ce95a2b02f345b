using System.Buffers;
using System.Text;
using Resh.Clients;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

public sealed class RespClientCommandTests
{
    private static string Reply(IClientSession session, params string[] command)
    {
        var buffer = new ReadOnlySequence<byte>(RespClient.Encode(command));
        var action = session.Next(ref buffer);
        Assert.Equal(SessionActionKind.LocalReply, action.Kind);
        return Encoding.ASCII.GetString(action.Bytes.Span);
    }

    [Fact]
    public void Session_local_client_subcommands_are_answered_by_the_gateway()
    {
        var session = new RespProtocol().CreateSession(42);
        Assert.Equal("$-1\r\n", Reply(session, "CLIENT", "GETNAME"));
        Assert.Equal("+OK\r\n", Reply(session, "client", "setname", "worker-1"));
        Assert.Equal("$8\r\nworker-1\r\n", Reply(session, "CLIENT", "GETNAME"));
        Assert.Equal("+OK\r\n", Reply(session, "CLIENT", "SETINFO", "LIB-NAME", "redis-py"));
        Assert.Equal(":42\r\n", Reply(session, "CLIENT", "ID"));
        Assert.StartsWith("-ERR Client names cannot contain spaces", Reply(session, "CLIENT", "SETNAME", "a b"), StringComparison.Ordinal);
    }

    [Fact]
    public void Other_client_subcommands_stay_refused()
    {
        var session = new RespProtocol().CreateSession(1);
        Assert.StartsWith("-ERR resh: client is not supported", Reply(session, "CLIENT", "UNBLOCK", "3"), StringComparison.Ordinal);
        Assert.StartsWith("-ERR resh: client is not supported", Reply(session, "CLIENT", "TRACKING", "ON"), StringComparison.Ordinal);
        Assert.Equal(":0\r\n", Reply(session, "CLIENT", "KILL", "ID", "3"));
    }
}
