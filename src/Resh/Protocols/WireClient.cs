using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Resh.Protocols;

/// <summary>
/// A minimal request/reply client for probes and fault drills against one replica: sends bytes, reads
/// one reply as framed by the protocol's <see cref="IReplyFramer"/>.
/// </summary>
internal sealed class WireClient : IDisposable
{
    private readonly Socket _socket;
    private readonly IReplyFramer _framer;
    private byte[] _buffer = new byte[4096];
    private int _count;

    private WireClient(Socket socket, IReplyFramer framer)
    {
        _socket = socket;
        _framer = framer;
    }

    public static async Task<WireClient> ConnectAsync(IPEndPoint endpoint, IReplyFramer framer, CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return new WireClient(socket, framer);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="request"/> and returns the one reply it produces.</summary>
    public async Task<byte[]> RequestAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        while (!request.IsEmpty)
        {
            var sent = await _socket.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            request = request[sent..];
        }

        while (true)
        {
            var status = _framer.TryFrame(new ReadOnlySequence<byte>(_buffer, 0, _count), out var end);
            if (status == FrameStatus.Complete)
            {
                var length = end.GetInteger();
                var reply = _buffer.AsSpan(0, length).ToArray();
                _buffer.AsSpan(length, _count - length).CopyTo(_buffer);
                _count -= length;
                return reply;
            }

            if (status == FrameStatus.Invalid)
            {
                throw new InvalidDataException("the replica sent a malformed reply");
            }

            if (_count == _buffer.Length)
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }

            var read = await _socket.ReceiveAsync(_buffer.AsMemory(_count), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("the replica closed the connection");
            }

            _count += read;
        }
    }

    public void Dispose() => _socket.Dispose();

    /// <summary>Whether a TCP connection to <paramref name="endpoint"/> can be opened; false on any failure but cancellation.</summary>
    public static async Task<bool> CanConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return false;
        }
    }
}
