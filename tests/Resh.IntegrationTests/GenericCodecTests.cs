using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using Resh.Group;

namespace Resh.IntegrationTests;

/// <summary>The line and length-prefixed codecs in front of a real (tiny) service, with a replica crashing.</summary>
public sealed class GenericCodecTests
{
    private static IReadOnlyList<ReplicaSpec> Replicas(string framing)
    {
        Tools.Require("python3", "apt-get install python3");
        var script = Path.Combine(AppContext.BaseDirectory, "Services", "kv_server.py");
        return [.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", $"python3 '{script}' --port {{port}} --framing {framing}"))];
    }

    private sealed class Connection(Socket socket, bool lengthPrefixed) : IDisposable
    {
        private readonly NetworkStream _stream = new(socket, ownsSocket: true);

        public async Task<string> CallAsync(string request)
        {
            var body = Encoding.UTF8.GetBytes(request);
            if (lengthPrefixed)
            {
                var frame = new byte[4 + body.Length];
                BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
                body.CopyTo(frame, 4);
                await _stream.WriteAsync(frame);
                var header = new byte[4];
                await _stream.ReadExactlyAsync(header).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                var reply = new byte[BinaryPrimitives.ReadUInt32BigEndian(header)];
                await _stream.ReadExactlyAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                return Encoding.UTF8.GetString(reply);
            }

            await _stream.WriteAsync(Encoding.UTF8.GetBytes(request + "\n"));
            var line = new List<byte>();
            var one = new byte[1];
            while (true)
            {
                await _stream.ReadExactlyAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                if (one[0] == '\n')
                {
                    return Encoding.UTF8.GetString([.. line]);
                }

                line.Add(one[0]);
            }
        }

        public void Dispose() => _stream.Dispose();
    }

    [Theory]
    [InlineData("line", "line")]
    [InlineData("length-prefixed", "length")]
    public async Task A_generic_protocol_service_is_replicated_and_a_crash_is_masked(string protocol, string framing)
    {
        await using var cluster = await Cluster.StartAsync(Replicas(framing), o => o.Protocol = protocol);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(cluster.EndPoint);
        using var client = new Connection(socket, protocol == "length-prefixed");

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal("OK", await client.CallAsync($"SET k{i} value {i}"));
            if (i == 50)
            {
                await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
            }
        }

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal($"value {i}", await client.CallAsync($"GET k{i}"));
        }

        Assert.Equal("1", await client.CallAsync("INCR n"));
        Assert.Equal("2", await client.CallAsync("INCR n"));
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Recoveries >= 1 && s.Replicas.All(r => r.State == "up"), "r2 to be rebuilt");
        Assert.Equal("3", await client.CallAsync("INCR n"));
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+disagreement");
    }
}
