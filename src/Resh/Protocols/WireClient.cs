using System.Buffers;
using System.Net;
using System.Net.Sockets;

namespace Resh.Protocols;

/// <summary>
/// A minimal request/reply client for probes, fault drills and state transfers against one replica: sends bytes,
/// reads replies as framed by the protocol's <see cref="IReplyFramer"/>.
/// </summary>
internal sealed class WireClient : IDisposable
{
    private readonly Socket _socket;
    private readonly IReplyFramer _framer;
    private byte[] _buffer = new byte[4096];
    private int _start;
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
        await SendAsync(request, cancellationToken).ConfigureAwait(false);
        return await ReceiveAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends <paramref name="requests"/> (pipelined, in one go) and returns the <paramref name="replies"/> replies they produce, in order.</summary>
    public async Task<IReadOnlyList<byte[]>> PipelineAsync(ReadOnlyMemory<byte> requests, int replies, CancellationToken cancellationToken)
    {
        await SendAsync(requests, cancellationToken).ConfigureAwait(false);
        var received = new List<byte[]>(replies);
        while (received.Count < replies)
        {
            received.Add(await ReceiveAsync(cancellationToken).ConfigureAwait(false));
        }

        return received;
    }

    private async Task SendAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        while (!request.IsEmpty)
        {
            var sent = await _socket.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            request = request[sent..];
        }
    }

    private async Task<byte[]> ReceiveAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var status = _framer.TryFrame(new ReadOnlySequence<byte>(_buffer, _start, _count - _start), out var end);
            if (status == FrameStatus.Complete)
            {
                var length = end.GetInteger() - _start;
                var reply = _buffer.AsSpan(_start, length).ToArray();
                _start += length;
                if (_start == _count)
                {
                    (_start, _count) = (0, 0);
                }

                return reply;
            }

            if (status == FrameStatus.Invalid)
            {
                throw new InvalidDataException("the replica sent a malformed reply");
            }

            if (_count == _buffer.Length)
            {
                // Pipelined replies are taken from the front: move what is left there before growing.
                _buffer.AsSpan(_start, _count - _start).CopyTo(_buffer);
                (_start, _count) = (0, _count - _start);
                if (_count == _buffer.Length)
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2);
                }
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
