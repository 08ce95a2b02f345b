
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
