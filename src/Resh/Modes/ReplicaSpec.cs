namespace Resh.Modes;

/// <summary>How to run one replica: a command template with {port}, {dir} and {id} placeholders.</summary>
public sealed record ReplicaSpec(string Id, string Command, IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>The settings of a replica group that do not depend on the protocol.</summary>
public sealed class GroupOptions
{
    /// <summary>How the group replicates: resh (2f+1 active) or spare (f+1 active, f+1 passive).</summary>
    public ReplicationMode Mode { get; set; } = ReplicationMode.Resh;

    /// <summary>f: how many faulty replicas are tolerated.</summary>
    public int Faults { get; set; } = 1;

    /// <summary>Settings of mode spare.</summary>
    public SpareOptions Spare { get; set; } = new();

    /// <summary>Settings of mode remus.</summary>
    public RemusOptions Remus { get; set; } = new();

    /// <summary>f as the voter sees it: mode remus has one executing replica and no vote.</summary>
    public int VotingFaults => Mode == ReplicationMode.Remus ? 0 : Faults;

    /// <summary>The mode as written in the configuration.</summary>
    public string ModeName => Mode.ToString().ToLowerInvariant();

    /// <summary>How many replicas the mode needs: 2f+1 for resh, 2f+2 (f+1 active, f+1 passive) for spare.</summary>
    public int ReplicasNeeded => Mode switch
    {
        ReplicationMode.Spare => 2 * Faults + 2,
        ReplicationMode.Remus => 1,
        _ => 2 * Faults + 1,
    };

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

    /// <summary>Delay the "slow" fault drill adds to every reply.</summary>
    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Faults < 0)
        {
            errors.Add($"faults: must be 0 or more (got {Faults})");
        }

        var needed = ReplicasNeeded;
        if (Faults >= 0 && Replicas.Count != needed)
        {
            errors.Add(Mode == ReplicationMode.Remus
                ? $"replicas: mode remus runs exactly one replica here (the backup runs the same command); got {Replicas.Count}"
                : $"replicas: mode {ModeName} with faults: {Faults} needs exactly {(Mode == ReplicationMode.Spare ? "2f+2 (f+1 active, f+1 passive)" : "2f+1")} = {needed} replicas (got {Replicas.Count}); add or remove entries, or change faults");
        }

        if (Mode == ReplicationMode.Spare)
        {
            errors.AddRange(Spare.Validate());
        }

        if (Mode == ReplicationMode.Remus)
        {
            errors.AddRange(Remus.Validate());
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
