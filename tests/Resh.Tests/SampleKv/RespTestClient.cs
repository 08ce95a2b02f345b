using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

/// <summary>A raw RESP client for tests: sends requests, reads back whole replies as Latin-1 text.</summary>
internal sealed class RespTestClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RespTestClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RespTestClient> ConnectAsync(IPEndPoint endPoint)
    {
        var tcp = new TcpClient(endPoint.AddressFamily) { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(endPoint);
            return new RespTestClient(tcp);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    public static Task<RespTestClient> ConnectAsync(KvServer server) => ConnectAsync(server.EndPoint);

    /// <summary>How long a read may wait for the server before failing with <see cref="OperationCanceledException"/>.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Latin-1: one char per byte, so any byte string round-trips through a .NET string.</summary>
    public static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    public static string Text(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>The multibulk form of a request.</summary>
    public static byte[] Encode(params string[] args)
    {
        var builder = new StringBuilder();
        builder.Append('*').Append(args.Length).Append("\r\n");
        foreach (string arg in args)
        {
            builder.Append('$').Append(arg.Length).Append("\r\n").Append(arg).Append("\r\n");
        }

        return Bytes(builder.ToString());
    }

    public Task SendAsync(params string[] args) => SendRawAsync(Encode(args));

    public async Task SendRawAsync(byte[] data)
    {
        await _stream.WriteAsync(data);
        await _stream.FlushAsync();
    }

    public Task SendRawAsync(string data) => SendRawAsync(Bytes(data));

    /// <summary>Sends one request and reads its reply.</summary>
    public async Task<string> CommandAsync(params string[] args)
    {
        await SendAsync(args);
        return await ReadReplyAsync();
    }

    /// <summary>Reads one whole reply (nested aggregates included), exactly as sent.</summary>
    public async Task<string> ReadReplyAsync()
    {
        var reply = new StringBuilder();
        await ReadFrameAsync(reply);
        return reply.ToString();
    }

    /// <summary>Reads <paramref name="count"/> replies.</summary>
    public async Task<List<string>> ReadRepliesAsync(int count)
    {
        var replies = new List<string>(count);
        for (int i = 0; i < count; i++)
        {
            replies.Add(await ReadReplyAsync());
        }

        return replies;
    }

    /// <summary>True when the server closed the connection with nothing more to read.</summary>
    public async Task<bool> IsClosedByServerAsync()
    {
        try
        {
            return _start == _end && await FillAsync() == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task ReadFrameAsync(StringBuilder reply)
    {
        string line = await ReadLineAsync();
        reply.Append(line);
        char type = line[0];
        long length = type is '+' or '-' or ':' or '_' or ',' or '#' or '(' ? 0 : long.Parse(line.AsSpan(1, line.Length - 3), System.Globalization.CultureInfo.InvariantCulture);
        switch (type)
        {
            case '$' or '=' or '!' when length >= 0:
                reply.Append(await ReadExactAsync((int)length + 2));
                break;
            case '*' or '~' or '>' or '%':
                long items = type == '%' ? length * 2 : length;
                for (long i = 0; i < items; i++)
                {
                    await ReadFrameAsync(reply);
                }

                break;
        }
    }

    private async Task<string> ReadLineAsync()
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end && await FillAsync() == 0)
            {
                throw new EndOfStreamException($"Connection closed after '{line}'.");
            }

            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            int stop = newline < 0 ? _end : newline + 1;
            line.Append(Text(_buffer.AsSpan(_start, stop - _start)));
            _start = stop;
            if (newline >= 0)
            {
                return line.ToString();
            }
        }
    }

    private async Task<string> ReadExactAsync(int count)
    {
        var data = new StringBuilder(count);
        while (data.Length < count)
        {
            if (_start == _end && await FillAsync() == 0)
            {
                throw new EndOfStreamException("Connection closed inside a bulk string.");
            }

            int take = Math.Min(count - data.Length, _end - _start);
            data.Append(Text(_buffer.AsSpan(_start, take)));
            _start += take;
        }

        return data.ToString();
    }

    private async Task<int> FillAsync()
    {
        using var timeout = new CancellationTokenSource(ReadTimeout);
        _start = 0;
        _end = await _stream.ReadAsync(_buffer, timeout.Token);
        return _end;
    }
}
