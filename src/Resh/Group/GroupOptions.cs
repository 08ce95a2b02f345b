using Resh.Options;


namespace Resh.Group;

/// <summary>How to run one replica: a command template with {port}, {dir} and {id} placeholders.</summary>
public sealed record ReplicaSpec(string Id, string Command, IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>The settings of a replica group that do not depend on the protocol.</summary>
public sealed class GroupOptions
{
    /// <summary>f: how many faulty replicas are tolerated (the mode's policy says how many replicas that takes).</summary>
    public int Faults { get; set; } = 1;

    public IReadOnlyList<ReplicaSpec> Replicas { get; set; } = [];

    /// <summary>Where replica data and log directories live.</summary>
    public string StateDirectory { get; set; } = ".resh-state";

    /// <summary>A replica that has not answered an entry this long after it was decided (or answered by others) is suspected.</summary>
    public TimeSpan ReplyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a replica may take to start and answer its readiness probe.</summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A replica this many entries behind the decided head is suspected.</summary>
    public long MaxLag { get; set; } = 100_000;

    /// <summary>Service checkpoints; null when the service is not checkpointed (replicas are rebuilt from the whole log).</summary>
    public CheckpointOptions? Checkpoint { get; set; }

    /// <summary>
    /// How often the keys written since the last round are compared across the voting replicas (0: only at checkpoints).
    /// Needs a protocol that reads state by keys (RESP) and the group's own order (not mode d-resh).
    /// </summary>
    public TimeSpan VerifyEvery { get; set; } = TimeSpan.Zero;

    /// <summary>Delay the "slow" fault drill adds to every reply.</summary>
    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The group's keys, at the top of the configuration.</summary>
    public static OptionSchema<GroupOptions> Keys { get; } = new OptionSchema<GroupOptions>()
        .Value("faults", "f: how many faulty replicas are masked", OptionValues.Integer(0, 31), (o, v) => o.Faults = (int)v)
        .Custom("replicas", "the replicas: a list of { command, id, env } (or of commands), or { count, command, env }", BindReplicas, required: "replicas: [ { command: redis-server --port {port} --dir {dir} } ]")
        .Value("state-dir", "where replica data, logs and the log live", OptionValues.Path, (o, v) => o.StateDirectory = v)
        .Value("reply-timeout", "a replica silent this long is suspected", OptionValues.Duration(), (o, v) => o.ReplyTimeout = v)
        .Value("startup-timeout", "how long a replica may take to answer its first probe", OptionValues.Duration(), (o, v) => o.StartupTimeout = v)
        .Value("max-lag", "a replica this many entries behind is suspected", OptionValues.Integer(1, long.MaxValue), (o, v) => o.MaxLag = v)
        .Value("verify-every", "compare the keys written since the last round across the replicas this often (0: only at checkpoints)", OptionValues.Duration(allowZero: true), (o, v) => o.VerifyEvery = v)
        .Value("slow-delay", "delay the slow fault drill adds to every reply", OptionValues.Duration(), (o, v) => o.SlowDelay = v)
        .Section("checkpoint", "service checkpoints", o => o.Checkpoint ??= new CheckpointOptions(), CheckpointOptions.Keys);

    private static readonly OptionParser<string> ReplicaId = (string text, OptionContext _, out string value, out string problem) =>
    {
        (value, problem) = (text, $"'{text}' must be 1-32 letters, digits, '-' or '_'");
        return System.Text.RegularExpressions.Regex.IsMatch(text, "^[A-Za-z0-9_-]{1,32}$");
    };

    private static readonly OptionSchema<ReplicaEntry> EntryKeys = new OptionSchema<ReplicaEntry>()
        .Value("command", "the command line, with {port}, {dir} and {id}", OptionValues.Text, (e, v) => e.Command = v, required: "command: redis-server --port {port} --dir {dir}")
        .Value("id", "the replica's name", ReplicaId, (e, v) => e.Id = v)
        .Map("env", "environment variables", (e, name, value) => (e.Environment ??= new(StringComparer.Ordinal))[name] = value);

    private static readonly OptionSchema<ReplicaEntry> CountKeys = new OptionSchema<ReplicaEntry>()
        .Value("count", "how many replicas run the command", OptionValues.Integer(1, 64), (e, v) => e.Count = (int)v, required: "count: 3")
        .Value("command", "the command line, with {port}, {dir} and {id}", OptionValues.Text, (e, v) => e.Command = v, required: "command: redis-server --port {port} --dir {dir}")
        .Map("env", "environment variables", (e, name, value) => (e.Environment ??= new(StringComparer.Ordinal))[name] = value);

    /// <summary>replicas: a list (of commands, or of { command, id, env }), or the short form { count, command, env }.</summary>
    private static void BindReplicas(GroupOptions options, ConfigNode node, OptionBinder binder, string key)
    {
        var result = new List<ReplicaSpec>();
        if (node.Entries is not null)
        {
            var entry = new ReplicaEntry();
            binder.Bind(entry, node, CountKeys, key + ".");
            for (var i = 0; i < entry.Count; i++)
            {
                result.Add(new ReplicaSpec($"r{i + 1}", ResolveProgram(entry.Command ?? "", binder.Context), entry.Environment));
            }
        }
        else if (node.Items is null)
        {
            binder.Problem(node, $"{key}: expected a list of {{ command: ... }} entries, or {{ count: N, command: ... }}");
        }
        else
        {
            for (var i = 0; i < node.Items.Count; i++)
            {
                var item = node.Items[i];
                var entry = new ReplicaEntry { Command = item.IsScalar ? item.Text ?? "" : "" };
                if (!item.IsScalar)
                {
                    binder.Bind(entry, item, EntryKeys, $"{key}[{i}].");
                }

                result.Add(new ReplicaSpec(entry.Id ?? $"r{i + 1}", ResolveProgram(entry.Command ?? "", binder.Context), entry.Environment));
            }
        }

        options.Replicas = result;
    }

    /// <summary>A program written as ./x or ../x is relative to the configuration file, not to where resh runs.</summary>
    private static string ResolveProgram(string command, OptionContext context)
    {
        var trimmed = command.TrimStart();
        if (!trimmed.StartsWith("./", StringComparison.Ordinal) && !trimmed.StartsWith("../", StringComparison.Ordinal))
        {
            return command;
        }

        var end = trimmed.IndexOfAny([' ', '\t']);
        var program = end < 0 ? trimmed : trimmed[..end];
        var full = Path.GetFullPath(Path.Combine(context.BaseDirectory, program));
        return "'" + full.Replace("'", "'\\''", StringComparison.Ordinal) + "'" + (end < 0 ? "" : trimmed[end..]);
    }

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Faults < 0)
        {
            errors.Add($"faults: must be 0 or more (got {Faults})");
        }

        if (Replicas.Count > 64)
        {
            errors.Add("replicas: at most 64 replicas are supported");
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Replicas.Count; i++)
        {
            var r = Replicas[i];
            if (string.IsNullOrWhiteSpace(r.Command))
            {
                errors.Add($"replicas[{i}].command: must not be empty; e.g. redis-server --port {{port}} --dir {{dir}}");
            }
            else if (!r.Command.Contains("{port}", StringComparison.Ordinal))
            {
                errors.Add($"replicas[{i}].command: must contain {{port}} so each replica listens on its own port");
            }

            if (!ids.Add(r.Id))
            {
                errors.Add($"replicas[{i}].id: '{r.Id}' is used twice; ids must be unique");
            }
        }

        if (ReplyTimeout <= TimeSpan.Zero)
        {
            errors.Add("reply-timeout: must be positive, e.g. 5s");
        }

        if (StartupTimeout <= TimeSpan.Zero)
        {
            errors.Add("startup-timeout: must be positive, e.g. 20s");
        }

        if (VerifyEvery < TimeSpan.Zero)
        {
            errors.Add("verify-every: must be 0 (off) or positive, e.g. 1s");
        }

        if (MaxLag < 1)
        {
            errors.Add("max-lag: must be 1 or more log entries, e.g. 100000");
        }

        if (string.IsNullOrWhiteSpace(StateDirectory))
        {
            errors.Add("state-dir: must name a directory");
        }

        if (Checkpoint is not null)
        {
            errors.AddRange(Checkpoint.Validate());
        }

        return errors;
    }
}

/// <summary>One replica as written in the configuration, before it becomes a <see cref="ReplicaSpec"/>.</summary>
internal sealed class ReplicaEntry
{
    public int Count { get; set; }

    public string? Command { get; set; }

    public string? Id { get; set; }

    public Dictionary<string, string>? Environment { get; set; }
}
