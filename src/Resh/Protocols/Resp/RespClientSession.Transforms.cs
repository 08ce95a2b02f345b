using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>The reply transforms of the gateway-owned commands: what the client receives from the voted reply.</summary>
internal sealed partial class RespClientSession
{
    /// <summary>The client's TTL reading from the voted PEXPIRETIME: relative to the gateway's clock when the reply is released.</summary>
    private sealed class ExpiryReadTransform(RespCommandKind kind, TimeProvider clock) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) => ValueTask.FromResult(Apply(reply));

        private ReadOnlyMemory<byte> Apply(ReadOnlyMemory<byte> reply)
        {
            if (!RespReplyReader.TryReadInteger(reply.Span, out var stored) || stored < 0)
            {
                return reply;
            }

            var deadline = RespExpiryKeeper.Unshift(stored);
            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            if (deadline <= now)
            {
                // Past its deadline, its deletion not yet through the log: the key no longer exists for clients.
                return RespReplyReader.Integer(-2);
            }

            return RespReplyReader.Integer(kind switch
            {
                RespCommandKind.Ttl => (deadline - now + 500) / 1000,
                RespCommandKind.PTtl => deadline - now,
                RespCommandKind.ExpireTime => deadline / 1000,
                _ => deadline,
            });
        }
    }

    /// <summary>The first page of a new iteration, from the voted snapshot of the collection.</summary>
    private sealed class ScanStartTransform(RespCursors cursors, int unit, int count, byte[]? match) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) => ValueTask.FromResult(Apply(reply));

        private ReadOnlyMemory<byte> Apply(ReadOnlyMemory<byte> reply)
        {
            if (!RespReplyReader.TryReadStrings(reply.Span, out var elements) || elements.Count % unit != 0)
            {
                return reply;
            }

            var output = new ArrayBufferWriter<byte>();
            cursors.Start(elements, unit, count, match, output);
            return output.WrittenMemory;
        }
    }

    /// <summary>
    /// INFO as the replicated service: one replica's sections, with the gateway's clients, a master without replicas,
    /// and average TTLs left out (a replica's are measured against shifted deadlines).
    /// </summary>
    private sealed class InfoTransform(RespProtocol protocol) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) => ValueTask.FromResult(Apply(reply));

        private ReadOnlyMemory<byte> Apply(ReadOnlyMemory<byte> reply)
        {
            if (reply.Length < 4 || reply.Span[0] is not ((byte)'$' or (byte)'='))
            {
                return reply;
            }

            var text = Encoding.UTF8.GetString(reply.Span);
            var start = text.IndexOf("\r\n", StringComparison.Ordinal) + 2;
            var end = text.Length - 2;
            if (start < 2 || end < start)
            {
                return reply;
            }

            var verbatim = reply.Span[0] == (byte)'=';
            var body = text[start..end];
            var prefix = verbatim && body.Length >= 4 ? body[..4] : string.Empty;
            var lines = body[prefix.Length..].Split("\r\n");
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                if (line.StartsWith("connected_clients:", StringComparison.Ordinal))
                {
                    lines[i] = $"connected_clients:{protocol.ConnectedClients}";
                }
                else if (line.StartsWith("role:", StringComparison.Ordinal))
                {
                    lines[i] = "role:master";
                }
                else if (line.StartsWith("connected_slaves:", StringComparison.Ordinal))
                {
                    lines[i] = "connected_slaves:0";
                }
                else if (line.StartsWith("db", StringComparison.Ordinal) && line.Contains(",avg_ttl=", StringComparison.Ordinal))
                {
                    lines[i] = line[..line.IndexOf(",avg_ttl=", StringComparison.Ordinal)] + ",avg_ttl=0";
                }
            }

            var result = Encoding.UTF8.GetBytes(prefix + string.Join("\r\n", lines));
            var output = new ArrayBufferWriter<byte>(result.Length + 16);
            RespEncoding.WriteLine(output, verbatim ? (byte)'=' : (byte)'$', result.Length);
            output.Write(result);
            output.Write("\r\n"u8);
            return output.WrittenMemory;
        }
    }

    /// <summary>CONFIG GET answers the gateway's own address for "port" and "bind" (a client asking where it is connected).</summary>
    private sealed class ConfigGetTransform(RespProtocol protocol) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) =>
            ValueTask.FromResult(protocol.ListenPort is null ? reply : RewritePort(reply, protocol.ListenPort.Value));

        private static ReadOnlyMemory<byte> RewritePort(ReadOnlyMemory<byte> reply, int port)
        {
            if (reply.Length < 4 || reply.Span[0] is not ((byte)'*' or (byte)'%') || !RespReplyReader.TryReadStrings(reply.Span, out var items) || items.Count % 2 != 0)
            {
                return reply;
            }

            var changed = false;
            for (var i = 0; i < items.Count; i += 2)
            {
                if (items[i].AsSpan().SequenceEqual("port"u8))
                {
                    items[i + 1] = Encoding.ASCII.GetBytes(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    changed = true;
                }
            }

            if (!changed)
            {
                return reply;
            }

            var output = new ArrayBufferWriter<byte>(reply.Length + 8);
            if (reply.Span[0] == (byte)'%')
            {
                RespEncoding.WriteLine(output, (byte)'%', items.Count / 2);
            }
            else
            {
                RespEncoding.WriteArrayHeader(output, items.Count);
            }

            foreach (var item in items)
            {
                RespEncoding.WriteBulk(output, item);
            }

            return output.WrittenMemory;
        }
    }

    /// <summary>HTTL/HPTTL from the voted HPEXPIRETIME array: each field's deadline against the gateway's clock.</summary>
    private sealed class HashExpiryReadTransform(bool seconds, TimeProvider clock) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
        {
            if (reply.Length < 3 || reply.Span[0] != (byte)'*' || !RespReplyReader.TryReadStrings(reply.Span, out var items))
            {
                return ValueTask.FromResult(reply);
            }

            var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
            var output = new ArrayBufferWriter<byte>(reply.Length);
            RespEncoding.WriteArrayHeader(output, items.Count);
            foreach (var item in items)
            {
                if (!RespEncoding.TryParseInteger(item, out var deadline))
                {
                    return ValueTask.FromResult(reply);
                }

                var remaining = deadline - now;
                RespEncoding.WriteLine(output, (byte)':', deadline < 0 ? deadline : remaining <= 0 ? -2 : seconds ? (remaining + 500) / 1000 : remaining);
            }

            return ValueTask.FromResult(output.WrittenMemory);
        }
    }
}
