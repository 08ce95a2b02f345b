using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Resh.SampleKv.Engine;
using Resh.SampleKv.Protocol;

namespace Resh.SampleKv;

/// <summary>
/// A RESP (Redis protocol) key-value server for strings, usable in-process. Every connection has its
/// own selected database, protocol version and MULTI state; all commands of all connections run one
/// at a time under a single lock, and each connection's pipelined requests are answered in order.
/// </summary>
public sealed class KvServer : IAsyncDisposable
{
    private const int FlushThreshold = 64 * 1024;

    private readonly Socket _listener;
    private readonly CommandProcessor _processor;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly Task _acceptLoop;
    private long _connectionCount;
    private int _disposed;

    private KvServer(Socket listener, Variant variant, CommandProcessor processor)
    {
        _listener = listener;
        _processor = processor;
        Variant = variant;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The address the server listens on, with the actual port when port 0 was asked for.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The implementation serving the keyspace.</summary>
    public Variant Variant { get; }

    /// <summary>
    /// Binds <paramref name="endPoint"/> (port 0 picks a free port) and starts serving. The token only
    /// cancels the start; stop the server with <see cref="DisposeAsync"/>.
    /// </summary>
    /// <exception cref="SocketException">The address cannot be bound.</exception>
    public static Task<KvServer> StartAsync(IPEndPoint endPoint, Variant variant, CancellationToken cancellationToken = default) =>
        StartAsync(endPoint, variant, clock: null, cancellationToken);

    internal static Task<KvServer> StartAsync(IPEndPoint endPoint, Variant variant, Func<long>? clock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        if (!Enum.IsDefined(variant))
        {
            throw new ArgumentOutOfRangeException(nameof(variant), variant, null);
        }

        cancellationToken.ThrowIfCancellationRequested();
        var processor = new CommandProcessor(VariantParts.Create(variant, CommandProcessor.DatabaseCount), clock);
        var listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endPoint);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        return Task.FromResult(new KvServer(listener, variant, processor));
    }

    /// <summary>Stops accepting, closes every connection and waits for them to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        await Task.WhenAll(_connections.Values);
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stopping = _stopping.Token;
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(stopping);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                // A connection reset before it was accepted: keep serving the others.
                continue;
            }

            client.NoDelay = true;
            long id = Interlocked.Increment(ref _connectionCount);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _connections[id] = done.Task;
            _ = Task.Run(async () =>
            {
                try
                {
                    await ServeAsync(client, stopping);
                }
                catch (Exception ex)
                {
                    // A bug, not a network failure: drop this connection, keep serving the others.
                    await Console.Error.WriteLineAsync($"resh-samplekv: connection failed: {ex}");
                }
                finally
                {
                    _connections.TryRemove(id, out _);
                    done.SetResult();
                }
            }, CancellationToken.None);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken stopping)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        PipeReader input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        PipeWriter output = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var session = new ClientSession();
        var replies = new ReplyWriter(output, _processor.Integers, session);
        var parser = new RequestParser(_processor.Integers);
        try
        {
            bool open = true;
            while (open)
            {
                ReadResult read = await input.ReadAsync(stopping);
                ReadOnlySequence<byte> buffer = read.Buffer;
                while (open)
                {
                    ParseStatus status = parser.TryParse(ref buffer, out byte[][] args, out byte[] error);
                    if (status == ParseStatus.Incomplete)
                    {
                        break;
                    }

                    if (status == ParseStatus.ProtocolError)
                    {
                        replies.Error(error);
                        open = false;
                    }
                    else if (args.Length > 0 && _processor.Execute(session, args, replies))
                    {
                        open = false;
                    }
                    else if (output.CanGetUnflushedBytes && output.UnflushedBytes > FlushThreshold)
                    {
                        await output.FlushAsync(stopping);
                    }
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                await output.FlushAsync(stopping);
                if (read.IsCompleted || read.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // The peer went away or the server is stopping: nothing to answer any more.
        }
        finally
        {
            await CompleteQuietlyAsync(input, output);
            await stream.DisposeAsync();
        }
    }

    private static async Task CompleteQuietlyAsync(PipeReader input, PipeWriter output)
    {
        try
        {
            await input.CompleteAsync();
            await output.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Unsent replies to a connection that is gone.
        }
    }
}
