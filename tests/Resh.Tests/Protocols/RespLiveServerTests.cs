using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Protocols;
using Resh.Protocols.Resp;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

/// <summary>A real redis-server on a free loopback port, for the tests of this class.</summary>
public sealed class RedisServerFixture : IDisposable
{
    private const string ServerPath = "/usr/bin/redis-server";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;

    public RedisServerFixture()
    {
        if (!File.Exists(ServerPath))
        {
            throw new InvalidOperationException($"{ServerPath} is needed for these tests (apt-get install redis-server)");
        }

        Endpoint = new IPEndPoint(IPAddress.Loopback, FreePort());
        var start = new ProcessStartInfo(ServerPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", Endpoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--enable-debug-command", "local" })
        {
            start.ArgumentList.Add(arg);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        WaitUntilReady();
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Sends raw commands on a fresh connection and returns the framed replies.</summary>
    public List<string> Send(string requests, int replies) => Send(Bytes(requests), replies);

    public List<string> Send(byte[] requests, int replies)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect(Endpoint);
        socket.ReceiveTimeout = 10_000;
        socket.Send(requests);
        var framer = new RespReplyFramer();
        var buffer = new byte[1 << 16];
        var count = 0;
        var result = new List<string>();
        while (result.Count < replies)
        {
            var sequence = new ReadOnlySequence<byte>(buffer, 0, count);
            var status = framer.TryFrame(sequence, out var end);
            Assert.NotEqual(FrameStatus.Invalid, status);
            if (status == FrameStatus.Complete)
            {
                var length = end.GetInteger();
                result.Add(Show(buffer.AsSpan(0, length)));
                buffer.AsSpan(length, count - length).CopyTo(buffer);
                count -= length;
                continue;
            }

            if (count == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var read = socket.Receive(buffer, count, buffer.Length - count, SocketFlags.None);
            Assert.True(read > 0, "redis-server closed the connection");
            count += read;
        }

        return result;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(5000);
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void WaitUntilReady()
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Connect(Endpoint);
                socket.ReceiveTimeout = 1000;
                socket.Send("PING\r\n"u8);
                var reply = new byte[7];
                var read = socket.Receive(reply);
                if (read > 0 && Encoding.ASCII.GetString(reply, 0, read).StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }

            if (_process.HasExited || deadline.Elapsed > StartTimeout)
            {
                throw new InvalidOperationException($"redis-server on port {Endpoint.Port} did not become ready");
            }

            Thread.Sleep(20);
        }
    }
}

public sealed class RespLiveServerTests : IClassFixture<RedisServerFixture>
{
    private readonly RedisServerFixture _redis;

    public RespLiveServerTests(RedisServerFixture redis) => _redis = redis;

    [Fact]
    public async Task Probe_answers_true_for_a_live_server_false_otherwise()
    {
        var protocol = new RespProtocol();
        Assert.True(await protocol.ProbeAsync(_redis.Endpoint, CancellationToken.None));

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var silent = (IPEndPoint)listener.LocalEndpoint;
        var probe = protocol.ProbeAsync(silent, CancellationToken.None);
        using (var accepted = await listener.AcceptSocketAsync())
        {
            accepted.Send("-ERR not redis\r\n"u8);
            Assert.False(await probe);
        }

        listener.Stop();
        Assert.False(await protocol.ProbeAsync(silent, CancellationToken.None));

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => protocol.ProbeAsync(_redis.Endpoint, cancelled.Token));
    }

    [Fact]
    public async Task Probe_honours_cancellation_while_waiting_for_a_reply()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var cancel = new CancellationTokenSource();
        var probe = new RespProtocol().ProbeAsync((IPEndPoint)listener.LocalEndpoint, cancel.Token);
        using var accepted = await listener.AcceptSocketAsync();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe);
    }

    [Fact]
    public async Task Corrupt_overwrites_an_existing_key()
    {
        var protocol = new RespProtocol();
        Assert.Equal(["+OK\r\n"], _redis.Send("FLUSHALL\r\n", 1));

        var empty = await Assert.ThrowsAsync<InvalidOperationException>(() => protocol.CorruptAsync(_redis.Endpoint, CancellationToken.None));
        Assert.Equal("replica holds no key to corrupt", empty.Message);

        var key = "bin\0\u00ff'key";
        Assert.Equal(["+OK\r\n"], _redis.Send(Multibulk("SET", key, "original"), 1));

        var description = await protocol.CorruptAsync(_redis.Endpoint, CancellationToken.None);
        Assert.StartsWith("key 'bin\\x00\\xff\\'key' overwritten with 'resh-corrupted-", description, StringComparison.Ordinal);
        var value = description[(description.IndexOf("with '", StringComparison.Ordinal) + 6)..^1];
        Assert.Matches("^resh-corrupted-[0-9a-f]{8}$", value);
        Assert.Equal([$"${value.Length}\r\n{value}\r\n"], _redis.Send(Multibulk("GET", key), 1));
        Assert.Equal(["+OK\r\n", "+OK\r\n", "+OK\r\n"], _redis.Send(Multibulk("FLUSHALL") + Multibulk("SELECT", "3") + Multibulk("SET", "other", "x"), 3));

        Assert.Contains("in database 3", await protocol.CorruptAsync(_redis.Endpoint, CancellationToken.None), StringComparison.Ordinal);
    }

    [Fact]
    public void Rewritten_requests_are_accepted_by_redis()
    {
        var clock = new FakeClock(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 60_000);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var session = new RespProtocol(new RespOptions { Clock = clock, ExpiryRewrite = ExpiryRewrite.Absolute }).CreateSession(7);
        var input =
            "SELECT 9\r\nFLUSHDB\r\n" +
            "SET k1 v EX 100\r\nSETEX k2 100 v\r\nPSETEX k3 100000 v\r\nSET k4 v\r\nEXPIRE k4 100\r\nGETEX k1 PX 200000\r\n" +
            "EXPIRE k4 abc\r\nSET k5 v PX 0\r\n" +
            "XADD s * f v\r\nXADD s * f v\r\n" +
            "MULTI\r\nINCR n\r\nEXPIRE n 100\r\nEXEC\r\n" +
            "PEXPIRETIME k1\r\nPEXPIRETIME k2\r\nPEXPIRETIME k3\r\nPEXPIRETIME k4\r\nPEXPIRETIME n\r\nXLEN s\r\n";
        var actions = Drain(session, input);
        var submitted = actions.Where(a => a.Kind == SessionActionKind.Submit).ToList();
        var context = new ArrayBufferWriter<byte>();
        var switches = new RespProtocol().WriteContextSwitch(0, submitted[0].Context, context);
        var wire = context.WrittenSpan.ToArray().Concat(submitted.SelectMany(a => Bytes(a.Text))).ToArray();
        var replyCount = switches + submitted.Sum(a => a.ReplyCount);
        var replies = _redis.Send(wire, replyCount);

        // One result per submitted unit: all its replies, or only the last (EXEC).
        var results = new List<string>();
        var next = switches;
        foreach (var action in submitted)
        {
            var unit = replies.Skip(next).Take(action.ReplyCount).ToList();
            next += action.ReplyCount;
            results.Add(action.Selection == ReplySelection.Last ? unit[^1] : string.Concat(unit));
        }

        Assert.Equal("+OK\r\n", results[0]);
        Assert.Equal(["+OK\r\n", "+OK\r\n", "+OK\r\n", "+OK\r\n", ":1\r\n", "$1\r\nv\r\n"], results.Skip(1).Take(6));
        Assert.Equal("-ERR value is not an integer or out of range\r\n", results[7]);
        Assert.Equal("-ERR invalid expire time in 'set' command\r\n", results[8]);
        Assert.Contains($"{now}-0\r\n", results[9], StringComparison.Ordinal);
        Assert.Contains($"{now}-1\r\n", results[10], StringComparison.Ordinal);
        Assert.Equal("*2\r\n:1\r\n:1\r\n", results[11]);
        Assert.Equal(
            [$":{now + 200_000}\r\n", $":{now + 100_000}\r\n", $":{now + 100_000}\r\n", $":{now + 100_000}\r\n", $":{now + 100_000}\r\n", ":2\r\n"],
            results.Skip(12));
    }

    [Fact]
    public void Framer_handles_real_resp3_replies()
    {
        var requests =
            "HELLO 3\r\nSELECT 10\r\nFLUSHDB\r\nHSET h a 1 b 2\r\nSADD s x y\r\nZADD z 1.5 m\r\n" +
            "HGETALL h\r\nSMEMBERS s\r\nZSCORE z m\r\nZRANGE z 0 -1 WITHSCORES\r\nGET missing\r\nEXISTS h\r\n" +
            "CONFIG GET maxmemory\r\nDEBUG PROTOCOL bignum\r\nDEBUG PROTOCOL true\r\nDEBUG PROTOCOL verbatim\r\nDEBUG PROTOCOL attrib\r\nDEBUG PROTOCOL double\r\nDEBUG PROTOCOL null\r\n" +
            "MULTI\r\nSET a 1\r\nLPUSH a x\r\nEXEC\r\n";
        var replies = _redis.Send(requests, 23);

        Assert.StartsWith("%7\r\n", replies[0], StringComparison.Ordinal);
        Assert.StartsWith("%2\r\n", replies[6], StringComparison.Ordinal);
        Assert.StartsWith("~2\r\n", replies[7], StringComparison.Ordinal);
        Assert.Equal(",1.5\r\n", replies[8]);
        Assert.Equal("_\r\n", replies[10]);
        Assert.StartsWith("(", replies[13], StringComparison.Ordinal);
        Assert.Equal("#t\r\n", replies[14]);
        Assert.StartsWith("=", replies[15], StringComparison.Ordinal);
        Assert.StartsWith("|1\r\n", replies[16], StringComparison.Ordinal);
        Assert.Equal("*2\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", replies[22]);

        var output = new ArrayBufferWriter<byte>();
        var codeOnly = new RespProtocol(new RespOptions { ErrorComparison = ErrorComparison.CodeOnly });
        Assert.True(codeOnly.TryNormalize(Bytes(replies[22]), 0, output));
        Assert.Equal("*2\r\n+OK\r\n-WRONGTYPE\r\n", Show(output.WrittenSpan));
    }
}
