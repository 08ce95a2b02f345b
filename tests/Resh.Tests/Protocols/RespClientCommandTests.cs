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
    public async Task A_paused_write_waits_before_dispatch_so_its_deadline_is_fixed_when_it_runs()
    {
        var clock = new FakeClock(1_800_000_000_000);
        var protocol = new RespProtocol(new RespOptions { Clock = clock });
        var admin = protocol.CreateSession(1);
        var writer = protocol.CreateSession(2);
        Assert.Equal("+OK\r\n", Reply(admin, "CLIENT", "PAUSE", "60000", "WRITE"));

        var request = RespClient.Encode("SET", "k", "v", "PX", "1000");
        var buffer = new ReadOnlySequence<byte>(request);
        var held = writer.Next(ref buffer);
        Assert.Equal(SessionActionKind.Wait, held.Kind);
        Assert.Equal(request.Length, buffer.Length);

        // A read goes on during a WRITE pause.
        var read = new ReadOnlySequence<byte>(RespClient.Encode("GET", "k"));
        Assert.Equal(SessionActionKind.Submit, writer.Next(ref read).Kind);

        clock.Now = clock.Now.AddSeconds(30);
        Assert.Equal("+OK\r\n", Reply(admin, "CLIENT", "UNPAUSE"));
        await held.Hold!.WaitAsync(TimeSpan.FromSeconds(10));
        var submitted = writer.Next(ref buffer);
        Assert.Equal(SessionActionKind.Submit, submitted.Kind);
        var text = Encoding.ASCII.GetString(submitted.Bytes.Span);
        Assert.Contains("1800000031000", text, StringComparison.Ordinal);
        Assert.DoesNotContain("1800000001000", text, StringComparison.Ordinal);
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
