using System.Net;
using System.Net.Sockets;

namespace Resh.Domains;

/// <summary>Finds free TCP ports for replicas.</summary>
public static class PortAllocator
{
    /// <summary>
    /// Binds port 0 on <paramref name="address"/>, reads the port the kernel chose and closes the socket. The port is
    /// free at that moment; another process may still take it before the replica binds it.
    /// </summary>
    public static int GetFreeTcpPort(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>A free TCP port on the loopback address.</summary>
    public static int GetFreeTcpPort() => GetFreeTcpPort(IPAddress.Loopback);
}
