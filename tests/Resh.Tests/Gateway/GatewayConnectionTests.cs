using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Diagnostics;
using Resh.Gateway;
using Resh.Ordering;
using Resh.Protocols.Resp;

namespace Resh.Tests.Gateway;

/// <summary>Client connections at the edges: replies that come late or never (nobody applies the log here), a log that cannot be written.</summary>
public sealed class GatewayConnectionTests
{
    [Fact]
    public async Task A_drain_closes_a_connection_whose_reply_never_comes_without_sending_it()
    {
        await using var setup = await OneSetAsync();
        var (log, gateway, stream) = (setup.Log, setup.Gateway, setup.Stream);

        // The reply slot waits for a vote that never happens: the drain gives up on it and closes the connection.
        await gateway.DrainAsync(TimeSpan.FromMilliseconds(200)).WaitAsync(TimeSpan.FromSeconds(30));

        var buffer = new byte[64];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, read);
        Assert.Equal(LogEventKind.Request, log[1].Kind);
    }

    [Fact]
    public async Task A_drain_still_delivers_a_reply_that_comes_within_the_timeout()
    {
        await using var setup = await OneSetAsync();
        var (log, gateway, stream) = (setup.Log, setup.Gateway, setup.Stream);

        var drain = gateway.DrainAsync(TimeSpan.FromSeconds(30));
        log[1].Origin!.Complete(Encoding.ASCII.GetBytes("+OK\r\n"));
        await drain.WaitAsync(TimeSpan.FromSeconds(30));

        var received = new MemoryStream();
        var buffer = new byte[64];
        int read;
        while ((read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10))) > 0)
        {
            received.Write(buffer, 0, read);
        }

        Assert.Equal("+OK\r\n", Encoding.ASCII.GetString(received.ToArray()));
    }

    [Fact]
    public async Task A_session_the_log_cannot_open_is_closed_and_the_gateway_keeps_accepting()
    {
        var log = new OrderedLog();
        var sequencer = new RefusingSequencer(log);
        using var metrics = new ReshMetrics();
        await using var gateway = new GatewayServer(new GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) }, new RespProtocol(new RespOptions { ExpiryRewrite = ExpiryRewrite.Absolute }), sequencer, metrics);
        gateway.Start();
        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(gateway.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            var stream = client.GetStream();
            var read = await stream.ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(0, read);
        }

        Assert.Equal(0, log.Count);
        Assert.Equal(2, sequencer.Refused);
    }

    /// <summary>A log on a full disk: every submission fails at the call, as the durable log's append does.</summary>
    private sealed class RefusingSequencer(OrderedLog log) : ISequencer
    {
        private int _refused;

        public OrderedLog Log { get; } = log;

        public int Refused => Volatile.Read(ref _refused);

        public ValueTask<long> SubmitAsync(LogEntry entry, CancellationToken cancellationToken = default)
        {
            if (entry.Kind == LogEventKind.Open)
            {
                Interlocked.Increment(ref _refused);
            }

            throw new IOException("No space left on device");
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>A gateway whose log nobody applies, and a client whose SET is in the log (after its Open), waiting for its reply.</summary>
    private static async Task<PendingSet> OneSetAsync()
    {
        var log = new OrderedLog();
        var metrics = new ReshMetrics();
        var gateway = new GatewayServer(new GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) }, new RespProtocol(new RespOptions { ExpiryRewrite = ExpiryRewrite.Absolute }), new LocalSequencer(log), metrics);
        var client = new TcpClient();
        var setup = new PendingSet(log, gateway, metrics, client);
        try
        {
            gateway.Start();
            await client.ConnectAsync(gateway.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            await setup.Stream.WriteAsync(Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            await Tools.WaitUntilAsync(() => log.Count >= 2, TimeSpan.FromSeconds(10));
            return setup;
        }
        catch
        {
            await setup.DisposeAsync();
            throw;
        }
    }

    private sealed record PendingSet(OrderedLog Log, GatewayServer Gateway, ReshMetrics Metrics, TcpClient Client) : IAsyncDisposable
    {
        public NetworkStream Stream => Client.GetStream();

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Gateway.DisposeAsync();
            Metrics.Dispose();
        }
    }
}
