using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Resh.Memory;

/// <summary>
/// How a device's effects stay exactly-once when a node restarts, and what a fallback of the whole cluster does to them.
/// An effect runs after its transaction committed, possibly again after a crash; every class deduplicates by the
/// effect's operation number, which grows with the log.
/// </summary>
public enum DeviceClass
{
    /// <summary>
    /// The device keeps the operation numbers with its effects and skips one it already holds; a fallback undoes the
    /// effects of transactions after the snapshot (a file is cut back). Example: <see cref="FileAppendDevice"/>.
    /// </summary>
    Compensable,

    /// <summary>
    /// The receiver deduplicates by operation number; a fallback cannot take a sent message back, so the device tells the
    /// receiver which numbers are void. Example: <see cref="TcpMessageDevice"/>.
    /// </summary>
    IdempotentReceiver,
}

/// <summary>An external effect that takes part in transactions: declared inside one, performed once it commits.</summary>
public interface IDevice
{
    /// <summary>The name transactions use (<see cref="Transaction.Emit"/>); unique on its node.</summary>
    string Name { get; }

    DeviceClass Class { get; }

    /// <summary>Performs one effect. May be called again for the same operation after a crash: it must then do nothing.</summary>
    Task PerformAsync(long operation, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken);

    /// <summary>The cluster fell back to the snapshot at <paramref name="position"/>: void every effect of a later transaction.</summary>
    Task FallBackAsync(long position, CancellationToken cancellationToken);
}

/// <summary>
/// Appends records to a file: each as [operation u64][length u32][bytes], little-endian. An operation at or below the
/// last one in the file is skipped (exactly once across restarts); a fallback cuts the file back to the end of the last
/// operation of a transaction at or before the snapshot. A torn last record (a crash mid-write) is cut off on open.
/// </summary>
public sealed class FileAppendDevice(string name, string path) : IDevice
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private long _last = -1;

    public string Name { get; } = name;

    public string Path { get; } = path;

    public DeviceClass Class => DeviceClass.Compensable;

    public async Task PerformAsync(long operation, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last < 0)
            {
                _last = Scan(keepUpTo: long.MaxValue);
            }

            if (operation <= _last)
            {
                return;
            }

            var record = new byte[12 + payload.Length];
            BinaryPrimitives.WriteInt64LittleEndian(record, operation);
            BinaryPrimitives.WriteInt32LittleEndian(record.AsSpan(8), payload.Length);
            payload.Span.CopyTo(record.AsSpan(12));
            await using (var file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read))
            {
                await file.WriteAsync(record, cancellationToken);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }

            _last = operation;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task FallBackAsync(long position, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            // Operation numbers are (position << 10 | index): keep those of transactions at or before the snapshot.
            _last = Scan(keepUpTo: (position << 10) | 1023);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Every record in the file: (operation, payload).</summary>
    public static IReadOnlyList<(long Operation, byte[] Payload)> ReadAll(string path)
    {
        var records = new List<(long, byte[])>();
        if (!File.Exists(path))
        {
            return records;
        }

        var bytes = File.ReadAllBytes(path);
        var at = 0;
        while (at + 12 <= bytes.Length)
        {
            var op = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at));
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 8));
            if (length < 0 || at + 12 + length > bytes.Length)
            {
                break;
            }

            records.Add((op, bytes.AsSpan(at + 12, length).ToArray()));
            at += 12 + length;
        }

        return records;
    }

    /// <summary>Cuts the file after the last whole record with an operation up to <paramref name="keepUpTo"/>; returns that operation.</summary>
    private long Scan(long keepUpTo)
    {
        if (!File.Exists(Path))
        {
            return 0;
        }

        using var file = new FileStream(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        var header = new byte[12];
        long at = 0;
        long last = 0;
        while (true)
        {
            file.Position = at;
            if (file.ReadAtLeast(header, 12, throwOnEndOfStream: false) < 12)
            {
                break;
            }

            var op = BinaryPrimitives.ReadInt64LittleEndian(header);
            var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
            if (length < 0 || at + 12 + length > file.Length || op > keepUpTo)
            {
                break;
            }

            last = op;
            at += 12 + length;
        }

        if (file.Length != at)
        {
            file.SetLength(at);
            file.Flush(flushToDisk: true);
        }

        return last;
    }
}

/// <summary>
/// Sends each effect as a message over TCP to a receiver (<see cref="MessageInbox"/>): [kind u8][operation u64][length
/// u32][bytes], acknowledged by the operation number. The receiver keeps the highest number it took and ignores any at or
/// below it, so a message sent again after a crash is taken once. A fallback sends a void notice: every operation after
/// the snapshot's is void.
/// </summary>
public sealed class TcpMessageDevice(string name, EndPoint receiver) : IDevice
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Socket? _socket;

    public string Name { get; } = name;

    public DeviceClass Class => DeviceClass.IdempotentReceiver;

    public Task PerformAsync(long operation, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        SendAsync(MessageInbox.Message, operation, payload, cancellationToken);

    public Task FallBackAsync(long position, CancellationToken cancellationToken) =>
        SendAsync(MessageInbox.Void, (position << 10) | 1023, ReadOnlyMemory<byte>.Empty, cancellationToken);

    private async Task SendAsync(byte kind, long operation, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var frame = new byte[13 + payload.Length];
            frame[0] = kind;
            BinaryPrimitives.WriteInt64LittleEndian(frame.AsSpan(1), operation);
            BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(9), payload.Length);
            payload.Span.CopyTo(frame.AsSpan(13));
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    if (_socket is null)
                    {
                        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                        try
                        {
                            await socket.ConnectAsync(receiver, cancellationToken);
                        }
                        catch
                        {
                            socket.Dispose();
                            throw;
                        }

                        _socket = socket;
                        var hello = System.Text.Encoding.UTF8.GetBytes(Name);
                        var helloFrame = new byte[13 + hello.Length];
                        helloFrame[0] = MessageInbox.Hello;
                        BinaryPrimitives.WriteInt32LittleEndian(helloFrame.AsSpan(9), hello.Length);
                        hello.CopyTo(helloFrame.AsSpan(13));
                        await _socket.SendAsync(helloFrame, SocketFlags.None, cancellationToken);
                        await ReadAckAsync(_socket, 0, cancellationToken);
                    }

                    await _socket.SendAsync(frame, SocketFlags.None, cancellationToken);
                    await ReadAckAsync(_socket, operation, cancellationToken);
                    return;
                }
                catch (Exception e) when (e is SocketException or IOException && attempt < 5)
                {
                    _socket?.Dispose();
                    _socket = null;
                    await Task.Delay(100 * attempt, cancellationToken);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task ReadAckAsync(Socket socket, long operation, CancellationToken cancellationToken)
    {
        var ack = new byte[8];
        await socket.ReceiveExactlyAsync(ack, cancellationToken);
        if (BinaryPrimitives.ReadInt64LittleEndian(ack) != operation)
        {
            throw new IOException($"message device {Name}: the receiver acknowledged another operation");
        }
    }
}

/// <summary>
/// The receiving end of <see cref="TcpMessageDevice"/>: takes each operation once per sender (the device's name, sent
/// first on each connection): the highest number taken from a sender is kept, and lower or equal ones are acknowledged
/// and dropped. A void notice drops the sender's messages above its number.
/// </summary>
public sealed class MessageInbox : IAsyncDisposable
{
    internal const byte Message = 1;
    internal const byte Void = 2;
    internal const byte Hello = 3;

    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accept;
    private readonly Lock _sync = new();
    private readonly List<(string Sender, long Operation, byte[] Payload)> _taken = [];
    private readonly Dictionary<string, long> _highest = [];

    public MessageInbox(IPEndPoint listen)
    {
        _listener = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(listen);
        _listener.Listen();
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accept = AcceptLoopAsync();
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The messages taken (each operation once), minus those a void notice voided.</summary>
    public IReadOnlyList<(string Sender, long Operation, byte[] Payload)> Messages
    {
        get
        {
            lock (_sync)
            {
                return [.. _taken];
            }
        }
    }

    /// <summary>Messages that arrived again and were dropped.</summary>
    public int Duplicates { get; private set; }

    private async Task AcceptLoopAsync()
    {
        var connections = new List<Task>();
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptAsync(_stop.Token);
                connections.Add(ServeAsync(socket));
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(connections);
    }

    private async Task ServeAsync(Socket socket)
    {
        using (socket)
        {
            var header = new byte[13];
            var sender = "";
            try
            {
                while (true)
                {
                    await socket.ReceiveExactlyAsync(header, _stop.Token);
                    var op = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(1));
                    var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(9));
                    if (length is < 0 or > 64 << 20)
                    {
                        return;
                    }

                    var payload = new byte[length];
                    await socket.ReceiveExactlyAsync(payload, _stop.Token);
                    lock (_sync)
                    {
                        var highest = _highest.GetValueOrDefault(sender);
                        if (header[0] == Hello)
                        {
                            sender = System.Text.Encoding.UTF8.GetString(payload);
                        }
                        else if (header[0] == Void)
                        {
                            var from = sender;
                            _taken.RemoveAll(m => m.Sender == from && m.Operation > op);
                            _highest[sender] = Math.Min(highest, op);
                        }
                        else if (op > highest)
                        {
                            _taken.Add((sender, op, payload));
                            _highest[sender] = op;
                        }
                        else
                        {
                            Duplicates++;
                        }
                    }

                    var ack = new byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(ack, op);
                    await socket.SendAsync(ack, SocketFlags.None, _stop.Token);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or EndOfStreamException or IOException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accept;
        _stop.Dispose();
    }
}

internal static class SocketExtensions
{
    public static async Task ReceiveExactlyAsync(this Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        var got = 0;
        while (got < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer[got..], SocketFlags.None, ct);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }

            got += n;
        }
    }
}
