using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Resh.Clients;

/// <summary>A parsed RESP reply (RESP2 types, plus RESP3 null/double/boolean/map read as their closest RESP2 shape).</summary>
public sealed record RespValue(char Type, string? Text, long Integer, byte[]? Bulk, IReadOnlyList<RespValue>? Items)
{
    public bool IsError => Type is '-' or '!';

    public bool IsNull => (Type is '$' or '*' && Bulk is null && Items is null) || Type == '_';

    /// <summary>The value as a string: simple strings and errors as they are, bulk strings as UTF-8, integers in decimal.</summary>
    public string? AsString() => Type switch
    {
        '+' or '-' or '!' or ',' or '#' or '(' => Text,
        ':' => Integer.ToString(CultureInfo.InvariantCulture),
        '$' or '=' => Bulk is null ? null : Encoding.UTF8.GetString(Bulk),
        _ => null,
    };

    public override string ToString() => Type switch
    {
        '*' or '%' or '~' or '>' => Items is null ? "(nil)" : "[" + string.Join(", ", Items) + "]",
        _ => IsNull ? "(nil)" : AsString() ?? "",
    };
}

/// <summary>
/// A small RESP client for tools and tests: one connection, requests sent as multibulk, replies read in order.
/// Not thread safe.
/// </summary>
public sealed class RespClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _input;

    private RespClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _input = new BufferedStream(_stream, 64 * 1024);
    }

    public static async Task<RespClient> ConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var tcp = new TcpClient(endpoint.AddressFamily) { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(endpoint, cancellationToken);
            return new RespClient(tcp);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Sends one command and reads its reply.</summary>
    public async Task<RespValue> CallAsync(params string[] args) => await CallAsync(CancellationToken.None, args);

    public async Task<RespValue> CallAsync(CancellationToken cancellationToken, params string[] args)
    {
        await SendAsync(Encode(args), cancellationToken);
        return await ReadAsync(cancellationToken);
    }

    /// <summary>Sends raw bytes as they are (for malformed-input tests and pipelines).</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        await _stream.WriteAsync(bytes, cancellationToken);
        await _stream.FlushAsync(cancellationToken);
    }

    /// <summary>Sends many commands in one write, then reads all replies (pipelining).</summary>
    public async Task<IReadOnlyList<RespValue>> PipelineAsync(IReadOnlyList<string[]> commands, CancellationToken cancellationToken = default)
    {
        using var buffer = new MemoryStream();
        foreach (var c in commands)
        {
            buffer.Write(Encode(c));
        }

        await SendAsync(buffer.ToArray(), cancellationToken);
        var replies = new List<RespValue>(commands.Count);
        for (var i = 0; i < commands.Count; i++)
        {
            replies.Add(await ReadAsync(cancellationToken));
        }

        return replies;
    }

    /// <summary>Reads one reply. Throws <see cref="EndOfStreamException"/> when the server closed the connection.</summary>
    public async Task<RespValue> ReadAsync(CancellationToken cancellationToken = default)
    {
        var line = await ReadLineAsync(cancellationToken);
        if (line.Length == 0)
        {
            throw new InvalidDataException("empty reply line");
        }

        var type = line[0];
        var rest = line[1..];
        switch (type)
        {
            case '+' or '-' or ',' or '#' or '(':
                return new RespValue(type, rest, 0, null, null);
            case ':':
                return new RespValue(type, null, long.Parse(rest, CultureInfo.InvariantCulture), null, null);
            case '_':
                return new RespValue(type, null, 0, null, null);
            case '$' or '!' or '=':
                var length = int.Parse(rest, CultureInfo.InvariantCulture);
                if (length < 0)
                {
                    return new RespValue('$', null, 0, null, null);
                }

                var data = new byte[length + 2];
                await _input.ReadExactlyAsync(data, cancellationToken);
                var body = data[..length];
                return type == '!' ? new RespValue('!', Encoding.UTF8.GetString(body), 0, null, null) : new RespValue(type, null, 0, body, null);
            case '*' or '~' or '>' or '%':
                var count = int.Parse(rest, CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return new RespValue('*', null, 0, null, null);
                }

                var n = type == '%' ? count * 2 : count;
                var items = new List<RespValue>(n);
                for (var i = 0; i < n; i++)
                {
                    items.Add(await ReadAsync(cancellationToken));
                }

                return new RespValue(type, null, 0, null, items);
            default:
                throw new InvalidDataException($"unexpected reply type '{type}'");
        }
    }

    public static byte[] Encode(params string[] args)
    {
        var sb = new StringBuilder();
        sb.Append('*').Append(args.Length).Append("\r\n");
        foreach (var a in args)
        {
            sb.Append('$').Append(Encoding.UTF8.GetByteCount(a)).Append("\r\n").Append(a).Append("\r\n");
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        // The socket first: a read still waiting on a peer that is gone (a lost host) ends with it, and only then
        // can the buffered stream, which serializes its operations, be disposed.
        _tcp.Dispose();
        try
        {
            await _input.DisposeAsync();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        var bytes = new List<byte>(64);
        var one = new byte[1];
        while (true)
        {
            var read = await _input.ReadAsync(one, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }

            if (one[0] == '\n' && bytes.Count > 0 && bytes[^1] == '\r')
            {
                bytes.RemoveAt(bytes.Count - 1);
                return Encoding.UTF8.GetString([.. bytes]);
            }

            bytes.Add(one[0]);
        }
    }
}
