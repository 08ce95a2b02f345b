using System.Net;
using Resh.Dresh;
using Resh.Gateway;
using Resh.Group;
using Resh.Modes;
using Resh.Options;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Hosting;

/// <summary>Everything one `resh run` needs, independent of how it was written down (YAML, code).</summary>
public sealed class ReshOptions
{
    /// <summary>"resp", "line" or "length-prefixed".</summary>
    public string Protocol { get; set; } = "resp";

    public RespOptions Resp { get; set; } = new();

    /// <summary>Largest request or reply line of the "line" protocol.</summary>
    public int MaxLineBytes { get; set; } = 64 * 1024;

    /// <summary>Largest frame of the "length-prefixed" protocol.</summary>
    public int MaxFrameBytes { get; set; } = 16 * 1024 * 1024;

    public GatewayOptions Gateway { get; set; } = new();

    /// <summary>Loopback address of the admin HTTP endpoint; null disables it.</summary>
    public IPEndPoint? Admin { get; set; }

    /// <summary>Bearer token required for admin mutations (POST); null or empty means none.</summary>
    public string? AdminToken { get; set; }

    public GroupOptions Group { get; set; } = new();

    /// <summary>The replication mode and its settings.</summary>
    public ModeOptions Replication { get; set; } = new();

    /// <summary>D-RESH: order the log through etcd, shared with the other gateways of the cluster; null orders locally.</summary>
    public EtcdOrderingOptions? Ordering { get; set; }

    /// <summary>Keep the ordered log on disk in state-dir/log with this fsync mode; null keeps it in memory only.</summary>
    public Ordering.LogFsync? DurableLog { get; set; }

    /// <summary>How long a controlled shutdown waits for clients to finish before closing them.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a controlled shutdown waits for its final checkpoint (when checkpoints are on).</summary>
    public TimeSpan FinalCheckpointTimeout { get; set; } = TimeSpan.FromSeconds(60);

    private static readonly OptionSchema<ReshOptions> LimitKeys = new OptionSchema<ReshOptions>()
        .Include(o => o.Resp, RespOptions.LimitKeys)
        .Include(o => o.Gateway, GatewayOptions.LimitKeys)
        .Value("max-line-bytes", "longest request or reply line of the line protocol", OptionValues.Size, (o, v) => o.MaxLineBytes = (int)Math.Min(int.MaxValue, v))
        .Value("max-frame-bytes", "largest frame of the length-prefixed protocol", OptionValues.Size, (o, v) => o.MaxFrameBytes = (int)Math.Min(int.MaxValue, v));

    private static readonly OptionSchema<ReshOptions> ServiceKeys = new OptionSchema<ReshOptions>()
        .Value("protocol", "resp, line or length-prefixed", OptionValues.Text, (o, v) => o.Protocol = v)
        .Include(o => o.Gateway, GatewayOptions.Keys)
        .Include(o => o.Resp, RespOptions.Keys)
        .Section("limits", "sizes beyond which a request is refused", o => o, LimitKeys);

    private static readonly OptionSchema<ReshOptions> LogKeys = new OptionSchema<ReshOptions>()
        .Value("fsync", "when the log on disk is synced", OptionValues.Choice("always (a reply waits until its request is on disk), everysec or no", ("always", Resh.Ordering.LogFsync.Always), ("everysec", Resh.Ordering.LogFsync.EverySecond), ("no", Resh.Ordering.LogFsync.No)), (o, v) => o.DurableLog = v, required: "fsync: always");

    /// <summary>Every key of the configuration file, each declared by the options type it sets.</summary>
    public static OptionSchema<ReshOptions> Keys { get; } = new OptionSchema<ReshOptions>()
        .Section("service", "the service clients see: protocol, address, limits", o => o, ServiceKeys, required: "service: { protocol: resp, listen: 127.0.0.1:6380 }")
        .Value("admin", "loopback address of the admin endpoint", OptionValues.Endpoint, (o, v) => o.Admin = v)
        .Value("admin-token", "bearer token the admin endpoint's POSTs need", OptionValues.Text, (o, v) => o.AdminToken = v)
        .Include(o => o.Replication, ModeOptions.Keys)
        .Include(o => o.Group, GroupOptions.Keys)
        .Value("drain-timeout", "how long a controlled stop waits for clients", OptionValues.Duration(), (o, v) => o.DrainTimeout = v)
        .Section("normalize", "how replies are compared", o => o.Resp, RespOptions.NormalizeKeys)
        .Section("log", "keep the ordered log on disk", o => o, LogKeys)
        .Section("ordering", "D-RESH: order the log through etcd", o => o.Ordering ??= new EtcdOrderingOptions(), EtcdOrderingOptions.Keys);

    public static readonly IReadOnlyList<string> Protocols = ["resp", "line", "length-prefixed"];

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Protocols.Contains(Protocol))
        {
            errors.Add($"service.protocol: '{Protocol}' is not known; use one of {string.Join(", ", Protocols)}");
        }

        if (Protocol == "resp")
        {
            errors.AddRange(Resp.Validate());
        }

        if (MaxLineBytes < 2)
        {
            errors.Add($"service.limits.max-line-bytes: must be at least 2 (got {MaxLineBytes})");
        }

        if (MaxFrameBytes < 1)
        {
            errors.Add($"service.limits.max-frame-bytes: must be at least 1 (got {MaxFrameBytes})");
        }

        errors.AddRange(Gateway.Validate());
        if (Admin is not null && !IPAddress.IsLoopback(Admin.Address))
        {
            errors.Add($"admin: {Admin} is not a loopback address; the admin endpoint binds loopback only, e.g. 127.0.0.1:6390");
        }

        if (Admin is not null && Admin.Equals(Gateway.Listen) && Admin.Port != 0)
        {
            errors.Add($"admin: {Admin} is also service.listen; give the admin endpoint its own port");
        }

        errors.AddRange(Group.Validate());
        errors.AddRange(Replication.Validate(Group));
        if (Ordering is not null)
        {
            errors.AddRange(Ordering.Validate());
            if (Replication.Mode != ReplicationMode.Resh)
            {
                errors.Add($"ordering.etcd: only mode resh orders through etcd in this version (mode is {Replication.Name})");
            }

            if (Ordering.PeerListen is not null && Group.Checkpoint is null)
            {
                errors.Add("ordering.peer-listen: serves this host's checkpoints to its peers, so it needs a checkpoint: section");
            }

            if (Ordering.PeerListen is { } peers && !System.Net.IPAddress.IsLoopback(peers.Address) && string.IsNullOrEmpty(AdminToken))
            {
                errors.Add($"ordering.peer-listen: {peers} is not a loopback address and would serve the whole data set to anyone who asks; set admin-token (the peers send it), or bind a loopback address");
            }

            if (DurableLog is not null)
            {
                errors.Add("log: etcd keeps the ordered log with ordering.etcd; leave log: out (checkpoints are kept as usual)");
            }
        }

        if (DrainTimeout < TimeSpan.Zero)
        {
            errors.Add("drain-timeout: must be 0 or positive, e.g. 10s");
        }

        return errors;
    }

    /// <summary>Log entries between the checkpoints a configuration gets by default (<see cref="DefaultCheckpoint"/>).</summary>
    public const long DefaultCheckpointEntries = 100_000;

    /// <summary>The default checkpoints come no more often than this, so a high request rate does not turn into constant saving.</summary>
    public static readonly TimeSpan DefaultCheckpointMinInterval = TimeSpan.FromSeconds(10);

    /// <summary>...unless the entries since the last one reach this size first: the gateway's memory stays bounded at any rate.</summary>
    public const long DefaultCheckpointMaxLogBytes = 128L << 20;

    /// <summary>
    /// The checkpoints a configuration without a checkpoint: section takes when its service is known to support them:
    /// every replica runs redis-server with its data directory ({dir}), so each gets background saves (BGSAVE) at one
    /// log position, verified by the RDB digest, every <see cref="DefaultCheckpointEntries"/> entries but at most one per
    /// <see cref="DefaultCheckpointMinInterval"/>, unless the entries since the last one take <see cref="DefaultCheckpointMaxLogBytes"/>; the log in
    /// memory is truncated behind them. Null when the service is not known to (Garnet, other protocols, a redis-server
    /// without {dir}): then the whole log stays in memory (<see cref="Warnings"/> says so).
    /// </summary>
    public CheckpointOptions? DefaultCheckpoint()
    {
        var redis = Protocol == "resp" && Group.Replicas.Count > 0
            && Group.Replicas.All(r => IsRedisServer(r.Command) && r.Command.Contains("{dir}", StringComparison.Ordinal));
        if (!redis)
        {
            return null;
        }

        var checkpoint = RedisBackgroundCheckpoint();
        checkpoint.EveryEntries = DefaultCheckpointEntries;
        checkpoint.MinInterval = DefaultCheckpointMinInterval;
        checkpoint.MaxLogBytes = DefaultCheckpointMaxLogBytes;
        return checkpoint;
    }

    /// <summary>Background checkpoints of redis-server replicas: BGSAVE, its end read from INFO persistence, dump.rdb digested as RDB; no interval yet.</summary>
    public static CheckpointOptions RedisBackgroundCheckpoint() => new()
    {
        Flush = "BGSAVE",
        FlushDone = "INFO persistence",
        FlushDoneWhen = "rdb_bgsave_in_progress:0",
        FlushFailedWhen = "rdb_last_bgsave_status:err",
        Files = ["dump.rdb"],
        Digest = CheckpointOptions.RdbDigest,
    };

    /// <summary>What is allowed but an operator should know: one line each, naming the setting.</summary>
    public IReadOnlyList<string> Warnings()
    {
        var warnings = new List<string>();
        if (Group.Checkpoint is null)
        {
            warnings.Add("checkpoint: none, so the ordered log is kept whole in memory (about 600 bytes per request, more for large ones) and a busy gateway grows without bound; add a checkpoint: section (see docs/operator-guide.md, \"Memory\")");
        }

        if (!System.Net.IPAddress.IsLoopback(Gateway.Listen.Address) && !(Protocol == "resp" && Resp.Users.Count > 0))
        {
            warnings.Add($"service.listen: {Gateway.Listen} is reachable from other hosts and clients need no password; bind 127.0.0.1, or set service.requirepass (resp) and firewall the port");
        }

        if (Ordering?.Endpoints.FirstOrDefault(e => e.Scheme == Uri.UriSchemeHttp && !(IPAddress.TryParse(e.Host, out var a) ? IPAddress.IsLoopback(a) : e.IsLoopback)) is { } plain)
        {
            warnings.Add($"ordering.etcd: {plain} carries the ordered log across the network in the clear; use https:// with ordering.ca-certificate (and ordering.client-certificate for an etcd with --client-cert-auth), and ordering.user");
        }

        if (Ordering is { PeerListen: { } peers, PeerTlsCertificate: null } && !IPAddress.IsLoopback(peers.Address))
        {
            warnings.Add($"ordering.peer-listen: {peers} sends checkpoints (the whole data set) and the admin token across the network in the clear; set ordering.peer-tls-certificate and ordering.peer-tls-key on every host (resh link-certificate makes a pair)");
        }

        foreach (var replica in Group.Replicas.Where(r => IsRedisServer(r.Command) && !r.Command.Contains("--bind", StringComparison.Ordinal)))
        {
            warnings.Add($"replica {replica.Id}: redis-server without --bind listens on every interface, where another host could write to it behind the voting; add --bind 127.0.0.1");
        }

        return warnings;
    }

    private static bool IsRedisServer(string command)
    {
        var program = command.TrimStart().Split(' ', 2)[0];
        return Path.GetFileName(program) is "redis-server";
    }

    /// <summary>Creates the configured protocol.</summary>
    public IProtocol CreateProtocol() => Protocol switch
    {
        "resp" => new RespProtocol(Resp),
        "line" => new LineProtocol(MaxLineBytes),
        "length-prefixed" => new LengthPrefixedProtocol(MaxFrameBytes),
        _ => throw new InvalidOperationException($"service.protocol: '{Protocol}' is not known"),
    };
}
