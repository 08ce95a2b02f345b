using System.Net;
using System.Net.Sockets;
using Resh.Ordering;

namespace Resh.Tests.Ordering;

/// <summary>
/// The connect of a socket the read loop reads (a replica's, a Remus link's), made outside .NET's socket engine: it connects, a refused connect is the socket's
/// error, and a cancelled one is a cancellation that leaves the socket closed.
/// </summary>
public sealed class LoopConnectTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static Socket Listening()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        return listener;
    }

    [Fact]
    public async Task Connects_to_a_listening_replica_and_carries_bytes()
    {
        using var listener = Listening();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        await SocketReadLoop.ConnectAsync(socket, listener.LocalEndPoint!, CancellationToken.None).WaitAsync(Timeout);
        using var accepted = await listener.AcceptAsync().WaitAsync(Timeout);
        socket.Send("ping"u8);
        var buffer = new byte[4];
        var read = await accepted.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeout);

        Assert.True(socket.Connected);
        Assert.Equal("ping"u8.ToArray(), buffer[..read]);
    }

    [Fact]
    public async Task A_refused_connect_is_the_sockets_error()
    {
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var error = await Assert.ThrowsAsync<SocketException>(() =>
            SocketReadLoop.ConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, port), CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_cancelled_connect_is_a_cancellation()
    {
        using var listener = Listening();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            SocketReadLoop.ConnectAsync(socket, listener.LocalEndPoint!, cancelled.Token).WaitAsync(Timeout));

        Assert.False(socket.Connected);
    }
}
