using System.Net;
using Resh.Options;

namespace Resh.Gateway;

/// <summary>Settings of the client-facing listener.</summary>
public sealed class GatewayOptions
{
    public IPEndPoint Listen { get; set; } = new(IPAddress.Loopback, 6380);

    /// <summary>Connections beyond this get an error and are closed.</summary>
    public int MaxClients { get; set; } = 10_000;

    /// <summary>A client that sends nothing for this long while nothing is pending is closed; zero disables it (as Redis's timeout 0).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.Zero;

    /// <summary>Requests of one session that may wait for their reply at once; beyond it the gateway stops reading from that client.</summary>
    public int MaxPendingPerSession { get; set; } = 4096;

    /// <summary>
    /// Bytes of replies (and pushed messages) one client may leave unread: decided but not yet taken by the socket.
    /// A client over it is disconnected, so a client that sends and never reads cannot hold the gateway's memory.
    /// </summary>
    public long MaxPendingBytes { get; set; } = 256L << 20;

    /// <summary>A client whose socket takes nothing for this long while replies wait is disconnected; zero disables it.</summary>
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The gateway's managed heap (after a collection) beyond which new requests are refused with an OOM error
    /// until it is below again; 0: no limit. A refused request is not applied.
    /// </summary>
    public long MemoryLimit { get; set; }

    /// <summary>The gateway's keys of the limits: section.</summary>
    public static OptionSchema<GatewayOptions> LimitKeys { get; } = new OptionSchema<GatewayOptions>()
        .Value("memory", "the gateway's heap beyond which new requests get an OOM error (0: no limit)", OptionValues.SizeOrZero, (o, v) => o.MemoryLimit = v);

    /// <summary>The keys of the client listener in the service: section.</summary>
    public static OptionSchema<GatewayOptions> Keys { get; } = new OptionSchema<GatewayOptions>()
        .Value("listen", "address clients connect to, HOST:PORT", OptionValues.Endpoint, (o, v) => o.Listen = v, required: "listen: 127.0.0.1:6380")
        .Value("max-clients", "connections beyond this are refused", OptionValues.Integer(1, 1_000_000), (o, v) => o.MaxClients = (int)v)
        .Value("idle-timeout", "close a client idle this long (0: never)", OptionValues.Duration(allowZero: true), (o, v) => o.IdleTimeout = v)
        .Value("max-pending", "requests of one client awaiting replies before reading from it pauses", OptionValues.Integer(1, 1_000_000), (o, v) => o.MaxPendingPerSession = (int)v)
        .Value("max-pending-bytes", "bytes of replies one client may leave unread before it is disconnected", OptionValues.Size, (o, v) => o.MaxPendingBytes = v)
        .Value("write-timeout", "disconnect a client that takes no reply bytes for this long (0: never)", OptionValues.Duration(allowZero: true), (o, v) => o.WriteTimeout = v);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxClients < 1)
        {
            errors.Add($"service.max-clients: must be 1 or more (got {MaxClients})");
        }

        if (IdleTimeout < TimeSpan.Zero)
        {
            errors.Add("service.idle-timeout: must be 0 (off) or positive, e.g. 300s");
        }

        if (MaxPendingPerSession < 1)
        {
            errors.Add($"service.max-pending: must be 1 or more (got {MaxPendingPerSession})");
        }

        if (MaxPendingBytes < 1024)
        {
            errors.Add($"service.max-pending-bytes: must be at least 1kb (got {MaxPendingBytes})");
        }

        if (MemoryLimit is < 0 or (> 0 and < 16L << 20))
        {
            errors.Add($"service.limits.memory: must be 0 (no limit) or at least 16mb (got {MemoryLimit})");
        }

        if (WriteTimeout < TimeSpan.Zero)
        {
            errors.Add("service.write-timeout: must be 0 (off) or positive, e.g. 60s");
        }

        return errors;
    }
}
