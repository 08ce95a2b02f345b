using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Ordering;

namespace Resh.Tests.Ordering;

/// <summary>
/// The epoll read loop over real loopback sockets: bytes arrive in order through the registration's pipe, the
/// client's end of stream completes it, a session that stops reading holds the socket out of the loop until it reads
/// again (nothing lost, nothing read ahead without bound), and a registration disposed before its socket closes
/// leaves the loop serving the others.
/// </summary>
public sealed class SocketReadLoopTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly SocketReadLoop _loop = SocketReadLoop.TryCreate(NullLogger.Instance) ?? throw new InvalidOperationException("epoll is not available");
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly List<Socket> _sockets = [];

    public SocketReadLoopTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(8);
    }

    public void Dispose()
    {
        foreach (var socket in _sockets)
        {
            socket.Dispose();
        }

        _listener.Dispose();
        _loop.Dispose();
    }

    /// <summary>A connected pair: the client's socket and the server side, registered in the loop.</summary>
    private async Task<(Socket Client, Socket Server, SocketReadLoop.Registration Registration)> ConnectAsync()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _sockets.Add(client);
        await client.ConnectAsync(_listener.LocalEndPoint!).WaitAsync(Timeout);
        var server = await _listener.AcceptAsync().WaitAsync(Timeout);
        _sockets.Add(server);
        return (client, server, _loop.Register(server));
    }

    /// <summary>Reads until <paramref name="count"/> bytes came (or the stream ended), consuming them.</summary>
    private static async Task<byte[]> ReadAsync(PipeReader reader, int count)
    {
        var bytes = new List<byte>();
        while (bytes.Count < count)
        {
            var result = await reader.ReadAsync().AsTask().WaitAsync(Timeout);
            bytes.AddRange(result.Buffer.ToArray());
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }

        return [.. bytes];
    }

    [Fact]
    public async Task Bytes_arrive_in_order_and_the_clients_end_of_stream_completes_the_pipe()
    {
        var (client, _, registration) = await ConnectAsync();
        var sent = Enumerable.Range(0, 1000).SelectMany(i => Encoding.ASCII.GetBytes($"*1\r\n$4\r\nPING\r\n{i}")).ToArray();
        await client.SendAsync(sent).WaitAsync(Timeout);
        Assert.Equal(sent, await ReadAsync(registration.Reader, sent.Length));

        client.Shutdown(SocketShutdown.Send);
        var end = await registration.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.True(end.IsCompleted);
        Assert.True(end.Buffer.IsEmpty);
        registration.Dispose();
    }

    [Fact]
    public async Task A_session_that_stops_reading_holds_its_socket_out_of_the_loop_and_loses_nothing()
    {
        var (client, _, registration) = await ConnectAsync();
        var (other, _, otherRegistration) = await ConnectAsync();

        // 32 MiB while nobody reads, more than the kernel's buffers hold: the pipe takes up to its threshold, the loop
        // stops reading this socket, and the rest waits in the kernel (the send cannot complete before the reads below).
        var sent = new byte[32 << 20];
        new Random(7).NextBytes(sent);
        var sending = client.SendAsync(sent);
        var first = await registration.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        registration.Reader.AdvanceTo(first.Buffer.Start, first.Buffer.End);

        // The loop still serves another client meanwhile.
        await other.SendAsync("hello"u8.ToArray()).WaitAsync(Timeout);
        Assert.Equal("hello"u8.ToArray(), await ReadAsync(otherRegistration.Reader, 5));

        // Reading again resumes the socket, and every byte comes, in order.
        var again = await registration.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
        var received = new List<byte>(again.Buffer.ToArray());
        registration.Reader.AdvanceTo(again.Buffer.End);
        received.AddRange(await ReadAsync(registration.Reader, sent.Length - received.Count));
        await sending.WaitAsync(Timeout);
        Assert.Equal(sent.Length, received.Count);
        Assert.True(sent.AsSpan().SequenceEqual(received.ToArray()));
        registration.Dispose();
        otherRegistration.Dispose();
    }

    [Fact]
    public async Task A_message_larger_than_the_read_ahead_is_read_whole_while_the_session_asks_for_more()
    {
        // A session frames a 4 MiB request only once it is all there: it examines everything and consumes nothing until
        // then. The loop must go on reading for it: the pipe's read-ahead bound counts bytes not yet examined, so a session
        // that examined all it has always gets more (a bound on unconsumed bytes would stall here for good).
        var (client, _, registration) = await ConnectAsync();
        var sent = new byte[4 << 20];
        new Random(3).NextBytes(sent);
        var sending = client.SendAsync(sent);
        while (true)
        {
            var result = await registration.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
            if (result.Buffer.Length >= sent.Length)
            {
                Assert.True(sent.AsSpan().SequenceEqual(result.Buffer.ToArray()));
                registration.Reader.AdvanceTo(result.Buffer.End);
                break;
            }

            registration.Reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        await sending.WaitAsync(Timeout);
        registration.Dispose();
    }

    [Fact]
    public async Task A_registration_disposed_before_its_socket_closes_leaves_the_others_served()
    {
        var (client, server, registration) = await ConnectAsync();
        registration.Dispose();
        server.Dispose();
        await client.SendAsync("lost"u8.ToArray()).WaitAsync(Timeout);

        // A new socket may take the closed one's descriptor number: it is read, and only it.
        var (next, _, nextRegistration) = await ConnectAsync();
        await next.SendAsync("next"u8.ToArray()).WaitAsync(Timeout);
        Assert.Equal("next"u8.ToArray(), await ReadAsync(nextRegistration.Reader, 4));
        nextRegistration.Dispose();
    }
}
