// Over 400 lines: the YAML binder still binds every option by hand; once options declare their own keys it becomes a small generic binder.
using System.Globalization;
using System.Net;
using Resh.Checkpoints;
using Resh.Dresh;
using Resh.Gateway;
using Resh.Group;
using Resh.Hosting;
using Resh.Modes;
using Resh.Protocols.Resp;
using Resh.Remus;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Resh.Cli;

/// <summary>A configuration problem: where it is and what fixes it.</summary>
public sealed record ConfigError(string File, int Line, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}: {Message}" : $"{File}: {Message}";
}

public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

// Over 600 lines, one idea: reading the YAML file, with each key's parsing beside its error text. It grows by a
// branch per setting; the planned generic binder, where every options type declares its own keys, defaults and
// ranges, replaces these branches rather than splitting them into more files now.

/// <summary>
/// Reads the YAML configuration into <see cref="ReshOptions"/>. Every problem is reported with its line,
/// the key, and what would fix it; unknown keys are errors (with the nearest known key suggested).
/// Relative paths are relative to the configuration file's directory.
/// </summary>
public sealed class ConfigLoader
{
    private static readonly string[] TopKeys = ["service", "admin", "admin-token", "mode", "faults", "replicas", "state-dir", "reply-timeout", "startup-timeout", "max-lag", "slow-delay", "drain-timeout", "normalize", "log", "checkpoint", "spare", "remus", "ordering"];
    private static readonly string[] ServiceKeys = ["protocol", "listen", "max-clients", "idle-timeout", "max-pending", "limits", "databases", "expiry", "reject", "allow", "requirepass", "users"];
    private static readonly string[] LimitKeys = ["max-inline-bytes", "max-bulk-bytes", "max-arguments", "max-query-buffer-bytes", "max-queued-commands", "max-line-bytes", "max-frame-bytes"];
    private static readonly string[] ReplicaKeys = ["command", "id", "env"];
    private static readonly string[] ShortReplicaKeys = ["count", "command", "env"];
    private static readonly string[] NormalizeKeys = ["errors"];
    private static readonly string[] LogKeys = ["fsync"];

    private readonly string _file;
    private readonly string _baseDirectory;
    private readonly List<ConfigError> _errors = [];

    private ConfigLoader(string file, string baseDirectory)
    {
        _file = file;
        _baseDirectory = baseDirectory;
    }

    public static ReshOptions LoadFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new ConfigException([new ConfigError(path, 0, "file not found")]);
        }

        var full = Path.GetFullPath(path);
        return Load(File.ReadAllText(full), path, Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full));
    }

    /// <summary>Parses YAML text; <paramref name="name"/> names the default state directory.</summary>
    public static ReshOptions Load(string yaml, string file, string baseDirectory, string name = "resh")
    {
        var loader = new ConfigLoader(file, baseDirectory);
        var options = loader.Parse(yaml, name);
        if (loader._errors.Count > 0 || options is null)
        {
            throw new ConfigException(loader._errors);
        }

        return options;
    }

    private ReshOptions? Parse(string yaml, string name)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            Error(e.Start.Line > 0 ? (int)e.Start.Line : 0, $"not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return null;
        }
        catch (InvalidOperationException e)
        {
            // The scanner reports some truncated documents (e.g. an unclosed [ at the end) this way.
            Error(0, $"not valid YAML (unexpected end of the document; an unclosed bracket or quote?): {e.Message}");
            return null;
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            Error(1, "expected a mapping with at least service:, mode:, faults: and replicas:");
            return null;
        }

        var options = new ReshOptions();
        options.Group.StateDirectory = Path.Combine(_baseDirectory, ".resh-state", name);
        var keys = Keys(root, TopKeys, "");
        RequireKey(root, keys, "service", "service: { protocol: resp, listen: 127.0.0.1:6380 }");
        RequireKey(root, keys, "replicas", "replicas: [ { command: redis-server --port {port} --dir {dir} } ]");
        if (keys.TryGetValue("service", out var service))
        {
            ParseService(service, options);
        }

        if (keys.TryGetValue("admin", out var admin))
        {
            options.Admin = Scalar(admin, "admin") is { } a ? Endpoint(admin, "admin", a) : null;
        }

        if (keys.TryGetValue("admin-token", out var token))
        {
            options.AdminToken = Scalar(token, "admin-token");
        }

        if (keys.TryGetValue("mode", out var mode))
        {
            options.Replication.Mode = Choice(mode, "mode", "resh (2f+1 active replicas), spare (f+1 active, f+1 passive) or remus (primary and backup)", ("resh", ReplicationMode.Resh), ("spare", ReplicationMode.Spare), ("remus", ReplicationMode.Remus)) ?? options.Replication.Mode;
        }

        if (keys.TryGetValue("faults", out var faults))
        {
            options.Group.Faults = (int)(Integer(faults, "faults", 0, 31) ?? options.Group.Faults);
        }

        if (keys.TryGetValue("state-dir", out var stateDir) && Scalar(stateDir, "state-dir") is { } dir)
        {
            options.Group.StateDirectory = Path.GetFullPath(Path.Combine(_baseDirectory, dir));
        }

        if (keys.TryGetValue("reply-timeout", out var replyTimeout))
        {
            options.Group.ReplyTimeout = Duration(replyTimeout, "reply-timeout") ?? options.Group.ReplyTimeout;
        }

        if (keys.TryGetValue("startup-timeout", out var startupTimeout))
        {
            options.Group.StartupTimeout = Duration(startupTimeout, "startup-timeout") ?? options.Group.StartupTimeout;
        }

        if (keys.TryGetValue("slow-delay", out var slowDelay))
        {
            options.Group.SlowDelay = Duration(slowDelay, "slow-delay") ?? options.Group.SlowDelay;
        }

        if (keys.TryGetValue("drain-timeout", out var drain))
        {
            options.DrainTimeout = Duration(drain, "drain-timeout") ?? options.DrainTimeout;
        }

        if (keys.TryGetValue("max-lag", out var maxLag))
        {
            options.Group.MaxLag = Integer(maxLag, "max-lag", 1, long.MaxValue) ?? options.Group.MaxLag;
        }

        if (keys.TryGetValue("normalize", out var normalize) && Mapping(normalize, "normalize") is { } n)
        {
            var nk = Keys(n, NormalizeKeys, "normalize.");
            if (nk.TryGetValue("errors", out var errorsNode))
            {
                options.Resp.ErrorComparison = Choice(errorsNode, "normalize.errors", "exact or code-only", ("exact", ErrorComparison.Exact), ("code-only", ErrorComparison.CodeOnly)) ?? options.Resp.ErrorComparison;
            }
        }

        if (keys.TryGetValue("log", out var logNode) && Mapping(logNode, "log") is { } logMap)
        {
            var lk = Keys(logMap, LogKeys, "log.");
            RequireKey(logMap, lk, "fsync", "fsync: always", "log.");
            if (lk.TryGetValue("fsync", out var fsyncNode))
            {
                options.DurableLog = Choice(fsyncNode, "log.fsync", "always (a reply waits until its request is on disk), everysec or no", ("always", Ordering.LogFsync.Always), ("everysec", Ordering.LogFsync.EverySecond), ("no", Ordering.LogFsync.No)) ?? options.DurableLog;
            }
        }

        if (keys.TryGetValue("checkpoint", out var checkpointNode))
        {
            options.Group.Checkpoint = ParseCheckpoint(checkpointNode);
        }

        if (keys.TryGetValue("spare", out var spareNode))
        {
            if (options.Replication.Mode != ReplicationMode.Spare)
            {
                Error(spareNode, "spare: only mode spare reads this section; set mode: spare or remove it");
            }

            ParseSpare(spareNode, options.Replication.Spare);
        }

        if (keys.TryGetValue("remus", out var remusNode))
        {
            if (options.Replication.Mode != ReplicationMode.Remus)
            {
                Error(remusNode, "remus: only mode remus reads this section; set mode: remus or remove it");
            }

            ParseRemus(remusNode, options.Replication.Remus);
        }
        else if (options.Replication.Mode == ReplicationMode.Remus)
        {
            Error(keys.TryGetValue("mode", out var m) ? m : root, "remus: missing; mode remus needs e.g. 'remus: { backup: 127.0.0.1:6391 }'");
        }

        if (keys.TryGetValue("ordering", out var orderingNode))
        {
            options.Ordering = ParseOrdering(orderingNode);
        }

        if (keys.TryGetValue("replicas", out var replicas))
        {
            options.Group.Replicas = ParseReplicas(replicas);
        }

        if (_errors.Count == 0)
        {
            // Semantic checks of the options themselves, reported against the file.
            foreach (var message in options.Validate())
            {
                var key = message.Split(':', 2)[0].Split('.')[0].Split('[')[0];
                Error(keys.TryGetValue(key, out var node) ? (int)node.Start.Line : 0, message);
            }
        }

        return options;
    }

    private void ParseService(YamlNode node, ReshOptions options)
    {
        if (Mapping(node, "service") is not { } map)
        {
            return;
        }

        var keys = Keys(map, ServiceKeys, "service.");
        RequireKey(map, keys, "listen", "listen: 127.0.0.1:6380", "service.");
        if (keys.TryGetValue("protocol", out var protocol))
        {
            options.Protocol = Scalar(protocol, "service.protocol") ?? options.Protocol;
        }

        var gateway = new GatewayOptions();
        if (keys.TryGetValue("listen", out var listen) && Scalar(listen, "service.listen") is { } l && Endpoint(listen, "service.listen", l) is { } ep)
        {
            gateway.Listen = ep;
        }

        if (keys.TryGetValue("max-clients", out var maxClients))
        {
            gateway.MaxClients = (int)(Integer(maxClients, "service.max-clients", 1, 1_000_000) ?? gateway.MaxClients);
        }

        if (keys.TryGetValue("idle-timeout", out var idle))
        {
            gateway.IdleTimeout = Duration(idle, "service.idle-timeout", allowZero: true) ?? gateway.IdleTimeout;
        }

        if (keys.TryGetValue("max-pending", out var maxPending))
        {
            gateway.MaxPendingPerSession = (int)(Integer(maxPending, "service.max-pending", 1, 1_000_000) ?? gateway.MaxPendingPerSession);
        }

        options.Gateway = gateway;
        var resp = options.Resp;
        if (keys.TryGetValue("databases", out var databases))
        {
            resp.Databases = (int)(Integer(databases, "service.databases", 1, 1_000_000) ?? resp.Databases);
        }

        if (keys.TryGetValue("expiry", out var expiry))
        {
            resp.ExpiryRewrite = Choice(expiry, "service.expiry", "owned (the gateway fixes every deadline and deletes expired keys through the log), absolute (relative TTLs become absolute deadlines chosen by the gateway) or passthrough", ("owned", ExpiryRewrite.Owned), ("absolute", ExpiryRewrite.Absolute), ("passthrough", ExpiryRewrite.Passthrough)) ?? resp.ExpiryRewrite;
        }

        if (keys.TryGetValue("requirepass", out var requirepass) && Scalar(requirepass, "service.requirepass") is { } password)
        {
            resp.Users["default"] = password;
        }

        if (keys.TryGetValue("users", out var users) && Mapping(users, "service.users") is { } userMap)
        {
            foreach (var (name, value) in userMap.Children)
            {
                if (name is YamlScalarNode { Value: { } user } && Scalar(value, $"service.users.{user}") is { } secret)
                {
                    resp.Users[user] = secret;
                }
            }
        }

        if (keys.TryGetValue("reject", out var reject))
        {
            foreach (var command in StringList(reject, "service.reject"))
            {
                resp.RejectedCommands.Add(command.ToUpperInvariant());
            }
        }

        if (keys.TryGetValue("allow", out var allow))
        {
            foreach (var command in StringList(allow, "service.allow"))
            {
                resp.RejectedCommands.Remove(command.ToUpperInvariant());
            }
        }

        if (keys.TryGetValue("limits", out var limitsNode) && Mapping(limitsNode, "service.limits") is { } limits)
        {
            var lk = Keys(limits, LimitKeys, "service.limits.");
            if (lk.TryGetValue("max-inline-bytes", out var v1))
            {
                resp.MaxInlineBytes = (Size(v1, "service.limits.max-inline-bytes") ?? resp.MaxInlineBytes);
            }

            if (lk.TryGetValue("max-bulk-bytes", out var v2))
            {
                resp.MaxBulkBytes = Size(v2, "service.limits.max-bulk-bytes") ?? resp.MaxBulkBytes;
            }

            if (lk.TryGetValue("max-arguments", out var v3))
            {
                resp.MaxArguments = (int)(Integer(v3, "service.limits.max-arguments", 1, int.MaxValue) ?? resp.MaxArguments);
            }

            if (lk.TryGetValue("max-query-buffer-bytes", out var v4))
            {
                resp.MaxQueryBufferBytes = Size(v4, "service.limits.max-query-buffer-bytes") ?? resp.MaxQueryBufferBytes;
            }

            if (lk.TryGetValue("max-queued-commands", out var v5))
            {
                resp.MaxQueuedCommands = (int)(Integer(v5, "service.limits.max-queued-commands", 1, int.MaxValue) ?? resp.MaxQueuedCommands);
            }

            if (lk.TryGetValue("max-line-bytes", out var v6))
            {
                options.MaxLineBytes = (int)(Size(v6, "service.limits.max-line-bytes") ?? options.MaxLineBytes);
            }

            if (lk.TryGetValue("max-frame-bytes", out var v7))
            {
                options.MaxFrameBytes = (int)(Size(v7, "service.limits.max-frame-bytes") ?? options.MaxFrameBytes);
            }
        }
    }

    private List<ReplicaSpec> ParseReplicas(YamlNode node)
    {
        var result = new List<ReplicaSpec>();
        if (node is YamlMappingNode shortForm)
        {
            // Short form: { count: 3, command: ... }
            var keys = Keys(shortForm, ShortReplicaKeys, "replicas.");
            RequireKey(shortForm, keys, "count", "count: 3", "replicas.");
            RequireKey(shortForm, keys, "command", "command: redis-server --port {port} --dir {dir}", "replicas.");
            var count = keys.TryGetValue("count", out var c) ? Integer(c, "replicas.count", 1, 64) : null;
            var command = keys.TryGetValue("command", out var cmd) ? Scalar(cmd, "replicas.command") : null;
            var env = keys.TryGetValue("env", out var e) ? Environment(e, "replicas.env") : null;
            for (var i = 0; i < (count ?? 0); i++)
            {
                result.Add(new ReplicaSpec($"r{i + 1}", ResolveProgram(command ?? ""), env));
            }

            return result;
        }

        if (node is not YamlSequenceNode list)
        {
            Error(node, "replicas: expected a list of { command: ... } entries, or { count: N, command: ... }");
            return result;
        }

        for (var i = 0; i < list.Children.Count; i++)
        {
            var item = list.Children[i];
            var prefix = $"replicas[{i}].";
            if (item is YamlScalarNode scalar)
            {
                result.Add(new ReplicaSpec($"r{i + 1}", ResolveProgram(scalar.Value ?? "")));
                continue;
            }

            if (Mapping(item, $"replicas[{i}]") is not { } map)
            {
                continue;
            }

            var keys = Keys(map, ReplicaKeys, prefix);
            RequireKey(map, keys, "command", "command: redis-server --port {port} --dir {dir}", prefix);
            var command = keys.TryGetValue("command", out var cmd) ? Scalar(cmd, prefix + "command") ?? "" : "";
            var id = keys.TryGetValue("id", out var idNode) ? Scalar(idNode, prefix + "id") ?? $"r{i + 1}" : $"r{i + 1}";
            if (!System.Text.RegularExpressions.Regex.IsMatch(id, "^[A-Za-z0-9_-]{1,32}$"))
            {
                Error(idNode ?? item, $"{prefix}id: '{id}' must be 1-32 letters, digits, '-' or '_'");
            }

            var env = keys.TryGetValue("env", out var e) ? Environment(e, prefix + "env") : null;
            result.Add(new ReplicaSpec(id, ResolveProgram(command), env));
        }

        return result;
    }

    private static readonly string[] OrderingKeys = ["etcd", "cluster", "member", "max-batch", "max-in-flight", "max-batch-bytes", "lease", "peer-listen", "trim"];

    private EtcdOrderingOptions? ParseOrdering(YamlNode node)
    {
        if (Mapping(node, "ordering") is not { } map)
        {
            return null;
        }

        var keys = Keys(map, OrderingKeys, "ordering.");
        RequireKey(map, keys, "etcd", "etcd: [http://127.0.0.1:2379]", "ordering.");
        RequireKey(map, keys, "cluster", "cluster: redis", "ordering.");
        var options = new EtcdOrderingOptions();
        if (keys.TryGetValue("etcd", out var etcd))
        {
            var texts = etcd is YamlSequenceNode ? StringList(etcd, "ordering.etcd") : Scalar(etcd, "ordering.etcd") is { } one ? [one] : [];
            var endpoints = new List<Uri>();
            foreach (var text in texts)
            {
                if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
                {
                    endpoints.Add(uri);
                }
                else
                {
                    Error(etcd, $"ordering.etcd: '{text}' is not an etcd client URL; write e.g. http://10.0.0.1:2379");
                }
            }

            options.Endpoints = endpoints;
        }

        if (keys.TryGetValue("cluster", out var cluster))
        {
            options.Cluster = Scalar(cluster, "ordering.cluster") ?? "";
        }

        if (keys.TryGetValue("member", out var member))
        {
            options.Member = (int)(Integer(member, "ordering.member", 1, 1023) ?? options.Member);
        }

        if (keys.TryGetValue("max-batch", out var maxBatch))
        {
            options.MaxBatch = (int)(Integer(maxBatch, "ordering.max-batch", 1, 1_000_000) ?? options.MaxBatch);
        }

        if (keys.TryGetValue("max-in-flight", out var inFlight))
        {
            options.MaxInFlight = (int)(Integer(inFlight, "ordering.max-in-flight", 1, 1024) ?? options.MaxInFlight);
        }

        if (keys.TryGetValue("max-batch-bytes", out var batchBytes))
        {
            options.MaxBatchBytes = (int)Math.Min(int.MaxValue, Size(batchBytes, "ordering.max-batch-bytes") ?? options.MaxBatchBytes);
        }

        if (keys.TryGetValue("lease", out var lease))
        {
            options.Lease = Duration(lease, "ordering.lease") ?? options.Lease;
        }

        if (keys.TryGetValue("peer-listen", out var peerListen) && Scalar(peerListen, "ordering.peer-listen") is { } peer)
        {
            options.PeerListen = Endpoint(peerListen, "ordering.peer-listen", peer);
        }

        if (keys.TryGetValue("trim", out var trim))
        {
            options.Trim = Flag(trim, "ordering.trim") ?? options.Trim;
        }

        return options;
    }

    /// <summary>true/yes or false/no; anything else is an error naming the key.</summary>
    private bool? Flag(YamlNode node, string key)
    {
        switch (Scalar(node, key))
        {
            case "true" or "yes":
                return true;
            case "false" or "no":
                return false;
            case { } other:
                Error(node, $"{key}: '{other}' is not true or false");
                return null;
            default:
                return null;
        }
    }

    private static readonly string[] RemusKeys = ["backup", "epoch", "failover-timeout", "apply-interval", "start-backup", "takeover-command"];

    private void ParseRemus(YamlNode node, RemusOptions remus)
    {
        if (Mapping(node, "remus") is not { } map)
        {
            return;
        }

        var keys = Keys(map, RemusKeys, "remus.");
        RequireKey(map, keys, "backup", "backup: 127.0.0.1:6391", "remus.");
        if (keys.TryGetValue("backup", out var backup))
        {
            var texts = backup is YamlSequenceNode ? StringList(backup, "remus.backup") : Scalar(backup, "remus.backup") is { } one ? [one] : [];
            remus.Backups = [.. texts.Select(t => Endpoint(backup, "remus.backup", t)).OfType<IPEndPoint>()];
        }

        if (keys.TryGetValue("epoch", out var epoch))
        {
            remus.Epoch = Duration(epoch, "remus.epoch", allowZero: true) ?? remus.Epoch;
        }

        if (keys.TryGetValue("failover-timeout", out var failover))
        {
            remus.FailoverTimeout = Duration(failover, "remus.failover-timeout") ?? remus.FailoverTimeout;
        }

        if (keys.TryGetValue("apply-interval", out var apply))
        {
            remus.ApplyInterval = Duration(apply, "remus.apply-interval") ?? remus.ApplyInterval;
        }

        if (keys.TryGetValue("start-backup", out var start))
        {
            remus.StartBackup = Flag(start, "remus.start-backup") ?? remus.StartBackup;
        }

        if (keys.TryGetValue("takeover-command", out var takeover))
        {
            remus.TakeoverCommand = Scalar(takeover, "remus.takeover-command");
        }
    }

    private static readonly string[] SpareKeys = ["update-interval", "rejuvenate-every", "digest"];

    private void ParseSpare(YamlNode node, SpareOptions spare)
    {
        if (Mapping(node, "spare") is not { } map)
        {
            return;
        }

        var keys = Keys(map, SpareKeys, "spare.");
        if (keys.TryGetValue("update-interval", out var interval) && Scalar(interval, "spare.update-interval") is { } text)
        {
            if (EntriesOrDuration(interval, "spare.update-interval", text) is { } parsed)
            {
                (spare.UpdateEveryEntries, spare.UpdateEvery) = parsed;
            }
        }

        if (keys.TryGetValue("rejuvenate-every", out var rejuvenate))
        {
            spare.RejuvenateEvery = Scalar(rejuvenate, "spare.rejuvenate-every") is "off" or "never" ? null : Duration(rejuvenate, "spare.rejuvenate-every");
        }

        if (keys.TryGetValue("digest", out var digest))
        {
            spare.Digest = Scalar(digest, "spare.digest");
        }
    }

    /// <summary>An interval written as a number of log entries (10000) or a duration (5s).</summary>
    private (long? Entries, TimeSpan? Every)? EntriesOrDuration(YamlNode node, string key, string text)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var entries) && entries > 0)
        {
            return (entries, null);
        }

        if (!text.All(char.IsAsciiDigit) && TryParseDuration(text, out var every) && every > TimeSpan.Zero)
        {
            return (null, every);
        }

        Error(node, $"{key}: '{text}' is neither a number of log entries (e.g. 10000) nor a duration (e.g. 5s)");
        return null;
    }

    private static readonly string[] CheckpointKeys = ["flush", "files", "digest", "interval", "store", "retention"];
    private static readonly string[] RetentionKeys = ["keep-last", "keep-hourly", "keep-daily", "keep-within", "density"];

    private CheckpointOptions? ParseCheckpoint(YamlNode node)
    {
        if (Mapping(node, "checkpoint") is not { } map)
        {
            return null;
        }

        var keys = Keys(map, CheckpointKeys, "checkpoint.");
        RequireKey(map, keys, "flush", "flush: SAVE", "checkpoint.");
        RequireKey(map, keys, "files", "files: [dump.rdb]", "checkpoint.");
        RequireKey(map, keys, "interval", "interval: 5s", "checkpoint.");
        var options = new CheckpointOptions();
        if (keys.TryGetValue("flush", out var flush))
        {
            options.Flush = Scalar(flush, "checkpoint.flush") ?? "";
        }

        if (keys.TryGetValue("digest", out var digest))
        {
            options.Digest = Scalar(digest, "checkpoint.digest");
        }

        if (keys.TryGetValue("files", out var files))
        {
            if (files is YamlSequenceNode list)
            {
                options.Files = [.. list.Children.Select(f => Scalar(f, "checkpoint.files") ?? "")];
            }
            else if (Scalar(files, "checkpoint.files") is { } one)
            {
                options.Files = [one];
            }
        }

        if (keys.TryGetValue("interval", out var interval) && Scalar(interval, "checkpoint.interval") is { } text
            && EntriesOrDuration(interval, "checkpoint.interval", text) is { } parsed)
        {
            (options.EveryEntries, options.Every) = parsed;
        }

        if (keys.TryGetValue("store", out var store) && Scalar(store, "checkpoint.store") is { } storePath)
        {
            options.StorePath = Path.GetFullPath(Path.Combine(_baseDirectory, storePath));
        }

        if (keys.TryGetValue("retention", out var retentionNode) && Mapping(retentionNode, "checkpoint.retention") is { } rmap)
        {
            var rk = Keys(rmap, RetentionKeys, "checkpoint.retention.");
            var retention = new RetentionPolicy();
            if (rk.TryGetValue("keep-last", out var last))
            {
                retention.KeepLast = (int)(Integer(last, "checkpoint.retention.keep-last", 0, 1_000_000) ?? 0);
            }

            if (rk.TryGetValue("keep-hourly", out var hourly))
            {
                retention.KeepHourly = (int)(Integer(hourly, "checkpoint.retention.keep-hourly", 0, 1_000_000) ?? 0);
            }

            if (rk.TryGetValue("keep-daily", out var daily))
            {
                retention.KeepDaily = (int)(Integer(daily, "checkpoint.retention.keep-daily", 0, 1_000_000) ?? 0);
            }

            if (rk.TryGetValue("keep-within", out var within))
            {
                retention.KeepWithin = Duration(within, "checkpoint.retention.keep-within", allowZero: true);
            }

            if (rk.TryGetValue("density", out var density))
            {
                retention.DensityBase = Duration(density, "checkpoint.retention.density");
            }

            options.Retention = retention;
        }

        return options;
    }

    /// <summary>A program written as ./x or ../x is relative to the configuration file, not to where resh runs.</summary>
    private string ResolveProgram(string command)
    {
        var trimmed = command.TrimStart();
        if (!trimmed.StartsWith("./", StringComparison.Ordinal) && !trimmed.StartsWith("../", StringComparison.Ordinal))
        {
            return command;
        }

        var end = trimmed.IndexOfAny([' ', '\t']);
        var program = end < 0 ? trimmed : trimmed[..end];
        var full = Path.GetFullPath(Path.Combine(_baseDirectory, program));
        return "'" + full.Replace("'", "'\\''", StringComparison.Ordinal) + "'" + (end < 0 ? "" : trimmed[end..]);
    }

    // ---- node helpers -----------------------------------------------------------------------

    private Dictionary<string, YamlNode> Keys(YamlMappingNode map, string[] known, string prefix)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            if (!known.Contains(key))
            {
                var hint = Nearest(key, known) is { } near ? $" (did you mean '{prefix}{near}'?)" : "";
                Error(keyNode, $"{prefix}{key}: unknown key{hint}; known keys here: {string.Join(", ", known)}");
                continue;
            }

            if (!result.TryAdd(key, value))
            {
                Error(keyNode, $"{prefix}{key}: given twice; keep one");
            }
        }

        return result;
    }

    private void RequireKey(YamlMappingNode map, Dictionary<string, YamlNode> keys, string key, string example, string prefix = "")
    {
        if (!keys.ContainsKey(key))
        {
            Error(map, $"{prefix}{key}: missing; add e.g. '{example}'");
        }
    }

    private YamlMappingNode? Mapping(YamlNode node, string key)
    {
        if (node is YamlMappingNode map)
        {
            return map;
        }

        Error(node, $"{key}: expected a mapping of keys");
        return null;
    }

    /// <summary>One of a fixed set of words, or null (with an error naming the words when it is another).</summary>
    private T? Choice<T>(YamlNode node, string key, string words, params (string Word, T Value)[] choices)
        where T : struct
    {
        var value = Scalar(node, key);
        foreach (var (word, choice) in choices)
        {
            if (value == word)
            {
                return choice;
            }
        }

        if (value is not null)
        {
            Error(node, $"{key}: '{value}' is not known; use {words}");
        }

        return null;
    }

    private string? Scalar(YamlNode node, string key)
    {
        if (node is YamlScalarNode s)
        {
            return s.Value;
        }

        Error(node, $"{key}: expected a single value");
        return null;
    }

    private long? Integer(YamlNode node, string key, long min, long max)
    {
        var text = Scalar(node, key);
        if (text is null)
        {
            return null;
        }

        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            Error(node, $"{key}: '{text}' is not a whole number from {min} to {max}");
            return null;
        }

        return value;
    }

    private TimeSpan? Duration(YamlNode node, string key, bool allowZero = false)
    {
        var text = Scalar(node, key);
        if (text is null)
        {
            return null;
        }

        if (TryParseDuration(text, out var value) && (value > TimeSpan.Zero || (allowZero && value == TimeSpan.Zero)))
        {
            return value;
        }

        Error(node, $"{key}: '{text}' is not a {(allowZero ? "" : "positive ")}duration; write e.g. 500ms, 5s, 2m");
        return null;
    }

    internal static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        var t = text.Trim();
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n >= 0)
            {
                value = TimeSpan.FromSeconds(n * scale);
                return true;
            }
        }

        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            value = TimeSpan.FromSeconds(seconds);
            return true;
        }

        return false;
    }

    private long? Size(YamlNode node, string key)
    {
        var text = Scalar(node, key);
        if (text is null)
        {
            return null;
        }

        if (TryParseSize(text, out var value) && value > 0)
        {
            return value;
        }

        Error(node, $"{key}: '{text}' is not a positive size; write e.g. 65536, 64KiB, 512MiB");
        return null;
    }

    internal static bool TryParseSize(string text, out long value)
    {
        value = 0;
        var t = text.Trim();
        (string Suffix, long Scale)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) && long.TryParse(t[..^suffix.Length].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            {
                value = n * scale;
                return n >= 0 && n <= long.MaxValue / scale;
            }
        }

        return long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }

    private IPEndPoint? Endpoint(YamlNode node, string key, string text)
    {
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port is > 0 and <= 65535 && text.Contains(':', StringComparison.Ordinal))
        {
            return ep;
        }

        if (text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) && int.TryParse(text[10..], out var port) && port is > 0 and <= 65535)
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        Error(node, $"{key}: '{text}' is not an address; write HOST:PORT with an IP address, e.g. 127.0.0.1:6380");
        return null;
    }

    private List<string> StringList(YamlNode node, string key)
    {
        if (node is YamlSequenceNode seq)
        {
            return [.. seq.Children.Select(c => Scalar(c, key)).OfType<string>()];
        }

        Error(node, $"{key}: expected a list, e.g. [KEYS, FLUSHALL]");
        return [];
    }

    private Dictionary<string, string>? Environment(YamlNode node, string key)
    {
        if (Mapping(node, key) is not { } map)
        {
            return null;
        }

        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            if (Scalar(k, key) is { } name && Scalar(v, $"{key}.{name}") is { } value)
            {
                env[name] = value;
            }
        }

        return env;
    }

    private void Error(YamlNode node, string message) => Error((int)node.Start.Line, message);

    private void Error(int line, string message) => _errors.Add(new ConfigError(_file, line, message));

    private static string? Nearest(string key, string[] known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var k in known)
        {
            var d = Levenshtein(key, k);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }

        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    private static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
