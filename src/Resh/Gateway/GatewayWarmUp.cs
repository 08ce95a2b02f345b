using System.Net;
using System.Net.Sockets;
using Resh.Diagnostics;
using Resh.Ordering;
using Resh.Protocols;

namespace Resh.Gateway;

/// <summary>
/// Runs requests through a gateway of the service's protocol on a loopback port, answered by that gateway itself, and
/// stops it. A standby (a Remus backup, a migration target) does this once before a takeover: its gateway has never
/// served, and the first clients after the takeover would otherwise wait for the request path's first compilation
/// (accepting, framing, ordering, writing replies) on a machine that is busy with the move (docs/benchmarks.md).
/// Nothing of it reaches the replicas, the service's log or its metrics.
/// </summary>
public static class GatewayWarmUp
{
    /// <summary>Requests sent, one at a time: enough for every method on the way to be compiled at least once.</summary>
    public const int Requests = 64;

    /// <summary>Runs the warm-up; returns the replies received (a failure only means less was warmed up).</summary>
    public static async Task<int> RunAsync(IProtocol protocol, GatewayOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        ArgumentNullException.ThrowIfNull(options);
        var warm = new GatewayOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            MaxClients = 1,
            MaxPendingPerSession = options.MaxPendingPerSession,
            MaxPendingBytes = options.MaxPendingBytes,
            WriteTimeout = options.WriteTimeout,
        };
        using var metrics = new ReshMetrics();
        await using var sequencer = new AnsweringSequencer(protocol.ErrorReply("resh: warm-up"));
        await using var gateway = new GatewayServer(warm, protocol, sequencer, metrics);
        gateway.Start();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var replies = 0;
        try
        {
            await socket.ConnectAsync(gateway.EndPoint, timeout.Token);
            var request = protocol.EncodeCommand("SET resh:warm-up 1");
            var buffer = new byte[4096];
            for (var i = 0; i < Requests; i++)
            {
                await socket.SendAsync(request, SocketFlags.None, timeout.Token);
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0)
                {
                    break;
                }

                replies++;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            // Only a warm-up: what was compiled stays compiled.
        }

        return replies;
    }

    /// <summary>Orders into a log of its own and answers every request at once with one fixed reply.</summary>
    private sealed class AnsweringSequencer(byte[] reply) : ISequencer
    {
        public OrderedLog Log { get; } = new();

        public ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default)
        {
            var sequence = Log.Append(entry);
            if (entry.Origin is { } origin)
            {
                // After the submit returned, as a group decides: the session has queued its reply slot by then.
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.Origin.Complete(s.Reply), (Origin: origin, Reply: reply), preferLocal: false);
            }

            return ValueTask.FromResult(sequence);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
