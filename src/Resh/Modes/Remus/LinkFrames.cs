using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Resh.Ordering;

namespace Resh.Remus;

/// <summary>Frame types of the Remus backup link.</summary>
public enum LinkFrame : byte
{
    /// <summary>Primary → backup, first frame: term, the primary's log range and last session id.</summary>
    Hello = 1,

    /// <summary>Backup → primary: the term is accepted; the next log position the backup needs.</summary>
    Welcome = 2,

    /// <summary>Backup → primary: the primary's term is older than one the backup has seen; it must not serve.</summary>
    Fenced = 3,

    /// <summary>Primary → backup: one epoch's ordered input.</summary>
    Epoch = 4,

    /// <summary>Backup → primary: the backup holds everything below a log position.</summary>
    Ack = 5,

    /// <summary>Either way: nothing to send, still alive.</summary>
    Heartbeat = 6,

    /// <summary>Primary → backup: a piece of one file of a checkpoint (path, offset, bytes).</summary>
    SnapshotFile = 7,

    /// <summary>Primary → backup: the checkpoint is complete; the log continues after its position.</summary>
    SnapshotEnd = 8,

    /// <summary>Primary → backup: controlled shutdown; do not take over.</summary>
    Goodbye = 9,

    /// <summary>Primary → backup: a planned switchover; the primary serves no more and everything acknowledged was shipped: take over now.</summary>
    Handover = 10,

    /// <summary>
    /// Primary → backup: the service migrates to another host, whose primary attaches in a newer term (the number given):
    /// keep the log, fence older terms, and do not take over until that primary attached and then fell silent.
    /// </summary>
    Moving = 11,
}

/// <summary>Primary → backup, the first frame.</summary>
public readonly record struct HelloFrame(ulong Term, long First, long Count, long LastSession)
{
    public byte[] Encode()
    {
        var b = new byte[32];
        BinaryPrimitives.WriteUInt64BigEndian(b, Term);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(8), First);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(16), Count);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(24), LastSession);
        return b;
    }

    public static HelloFrame Decode(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadInt64BigEndian(b[8..]), BinaryPrimitives.ReadInt64BigEndian(b[16..]), BinaryPrimitives.ReadInt64BigEndian(b[24..]));
}

/// <summary>A term and a position: Welcome (term, next position wanted), Ack (epoch number, count held), Heartbeat (term, -), SnapshotEnd (-, sequence).</summary>
public readonly record struct NumberFrame(ulong Number, long Position)
{
    public byte[] Encode()
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(b, Number);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(8), Position);
        return b;
    }

    public static NumberFrame Decode(ReadOnlySpan<byte> b) => new(BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadInt64BigEndian(b[8..]));
}

/// <summary>Epoch frames: number and first sequence (big-endian), then the entries as a <see cref="LogEntryCodec"/> batch.</summary>
public static class EpochFrame
{
    public static byte[] Encode(ulong number, long first, IReadOnlyList<LogEntry> entries)
    {
        var b = new byte[16 + LogEntryCodec.BatchLength(entries)];
        BinaryPrimitives.WriteUInt64BigEndian(b, number);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(8), first);
        LogEntryCodec.EncodeBatch(entries, b.AsSpan(16));
        return b;
    }

    /// <summary>Decodes an epoch; throws <see cref="InvalidDataException"/> on malformed bytes.</summary>
    public static (ulong Number, long First, List<LogEntry> Entries) Decode(ReadOnlyMemory<byte> frame)
    {
        var s = frame.Span;
        if (s.Length < 20)
        {
            throw new InvalidDataException("epoch frame too short");
        }

        var number = BinaryPrimitives.ReadUInt64BigEndian(s);
        try
        {
            return (number, BinaryPrimitives.ReadInt64BigEndian(s[8..]), LogEntryCodec.DecodeBatch(frame[16..]));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"epoch {number}: {e.Message}", e);
        }
    }
}

/// <summary>A file piece of a checkpoint: path (u16 length + UTF-8), offset, bytes.</summary>
public readonly record struct SnapshotFileFrame(string Path, long Offset, ReadOnlyMemory<byte> Data)
{
    public byte[] Encode()
    {
        var path = Encoding.UTF8.GetBytes(Path);
        var b = new byte[2 + path.Length + 8 + Data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)path.Length);
        path.CopyTo(b, 2);
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(2 + path.Length), Offset);
        Data.Span.CopyTo(b.AsSpan(10 + path.Length));
        return b;
    }

    public static SnapshotFileFrame Decode(ReadOnlyMemory<byte> frame)
    {
        var s = frame.Span;
        var n = BinaryPrimitives.ReadUInt16BigEndian(s);
        if (2 + n + 8 > s.Length)
        {
            throw new InvalidDataException("snapshot file frame too short");
        }

        return new SnapshotFileFrame(Encoding.UTF8.GetString(s.Slice(2, n)), BinaryPrimitives.ReadInt64BigEndian(s[(2 + n)..]), frame[(10 + n)..]);
    }
}

/// <summary>
/// One link connection: frames of u32 big-endian length (type byte + payload), then the type and the payload.
/// Sends are serialized; one reader. Knows frames, not what they mean.
/// </summary>
public sealed class LinkConnection : IAsyncDisposable
{
    /// <summary>Largest frame accepted (an epoch of many large requests, a checkpoint piece).</summary>
    public const int MaxFrameBytes = 256 << 20;

    /// <summary>Largest first frame (a Hello) read from a peer not yet known: nothing large is allocated for a stranger.</summary>
    public const int MaxHelloBytes = 1024;

    private readonly Socket _socket;
    private readonly Stream _stream;

    // Reads go through a buffer: a frame's header and payload (and the frames queued behind it, e.g. a backup's
    // acknowledgements) come from one receive instead of two or more. Writes go to the stream itself.
    private readonly Stream _input;
    private readonly SocketReadLoop.Registration? _registration;
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly byte[] _header = new byte[5];

    private LinkConnection(Socket socket, Stream stream, SocketReadLoop.Registration? registration = null)
    {
        _socket = socket;
        _stream = stream;
        _registration = registration;
        _input = registration is null ? new BufferedStream(stream, 64 * 1024) : registration.Reader.AsStream();
    }

    /// <summary>
    /// The primary's end of a connected socket: TLS-authenticated when <paramref name="tls"/> is given. Without TLS,
    /// and where the process's read loop runs, the backup's acknowledgements are read by that loop, on the thread that
    /// reads the clients and the replica (connect the socket with <see cref="SocketReadLoop.ConnectAsync"/>): an
    /// acknowledgement releases its replies there, with no hand-off to .NET's socket engine and the thread pool.
    /// </summary>
    public static async Task<LinkConnection> ConnectAsync(Socket socket, PinnedTls? tls, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.NoDelay = true;
        if (tls is null)
        {
            return new LinkConnection(socket, new NetworkStream(socket, ownsSocket: true), SocketReadLoop.TryRegisterPeer(socket));
        }

        return new LinkConnection(socket, await tls.ConnectAsync(socket, ct));
    }

    /// <summary>The backup's end of an accepted socket: TLS-authenticated when <paramref name="tls"/> is given.</summary>
    public static async Task<LinkConnection> AcceptAsync(Socket socket, PinnedTls? tls, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.NoDelay = true;
        var stream = tls is null ? new NetworkStream(socket, ownsSocket: true) : await tls.AcceptAsync(socket, ct);
        return new LinkConnection(socket, stream);
    }

    public string Remote => _socket.RemoteEndPoint?.ToString() ?? "?";

    public async Task SendAsync(LinkFrame type, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        // Header and payload in one write: one send per frame.
        var frame = ArrayPool<byte>.Shared.Rent(payload.Length + 5);
        try
        {
            BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(payload.Length + 1));
            frame[4] = (byte)type;
            payload.CopyTo(frame.AsMemory(5));
            await _send.WaitAsync(ct);
            try
            {
                await _stream.WriteAsync(frame.AsMemory(0, payload.Length + 5), ct);
            }
            finally
            {
                _send.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(frame);
        }
    }

    /// <summary>Reads the next frame (at most <paramref name="maxBytes"/>); throws <see cref="EndOfStreamException"/> when the peer closed the link.</summary>
    public async Task<(LinkFrame Type, byte[] Payload)> ReceiveAsync(CancellationToken ct, int maxBytes = MaxFrameBytes)
    {
        await _input.ReadExactlyAsync(_header, ct);
        var length = BinaryPrimitives.ReadUInt32BigEndian(_header);
        if (length < 1 || length > maxBytes)
        {
            throw new InvalidDataException($"link frame of {length} bytes (at most {maxBytes})");
        }

        var payload = new byte[length - 1];
        await _input.ReadExactlyAsync(payload, ct);
        return ((LinkFrame)_header[4], payload);
    }

    public async ValueTask DisposeAsync()
    {
        // Out of the read loop before the socket closes (its descriptor may be reused at once).
        _registration?.Dispose();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        await _stream.DisposeAsync();
        _send.Dispose();
    }
}
