using Resh.Composition;
using Resh.Dresh;
using Resh.Group;
using Resh.Options;
using Resh.Remus;

namespace Resh.Modes;

/// <summary>The composition of a group: the policy of the configured mode (the host's one place that picks it).</summary>
public static class ModePolicies
{
    /// <param name="mode">The configured mode with its own settings.</param>
    /// <param name="standby">Mode remus, the backup: its replica stands by until the takeover.</param>
    public static IGroupPolicy For(ModeOptions mode, bool standby = false)
    {
        ArgumentNullException.ThrowIfNull(mode);
        return mode.Mode switch
        {
            ReplicationMode.Spare => new SparePolicy(mode.Spare),
            ReplicationMode.Remus when standby => new StandbyPolicy(mode.Remus),
            ReplicationMode.Remus => new PrimaryPolicy(),
            _ => new ActivePolicy(),
        };
    }
}

/// <summary>The one place the host picks what a mode adds beside its policy (its order, attachments, status, standby).</summary>
public static class ModeHostings
{
    /// <param name="ordering">D-RESH: the etcd ordering; null orders the log on this host.</param>
    public static IModeHosting For(IModeHost host, ModeOptions mode, EtcdOrderingOptions? ordering)
    {
        ArgumentNullException.ThrowIfNull(mode);
        return (ordering, mode.Mode) switch
        {
            ({ } etcd, _) => new DreshHosting(host, etcd),
            (null, ReplicationMode.Remus) => new RemusHosting(host, mode.Remus, mode.Migration),
            _ => new LocalHosting(host, mode),
        };
    }
}

/// <summary>The replication mode and the settings of each mode (only the configured mode's are used and validated).</summary>
public sealed class ModeOptions
{
    /// <summary>How the group replicates: resh (2f+1 active), spare (f+1 active, f+1 passive) or remus (primary and backup).</summary>
    public ReplicationMode Mode { get; set; } = ReplicationMode.Resh;

    /// <summary>The mode as written in the configuration.</summary>
    public string Name => Mode.ToString().ToLowerInvariant();

    /// <summary>Settings of mode spare.</summary>
    public SpareOptions Spare { get; set; } = new();

    /// <summary>Settings of mode remus.</summary>
    public RemusOptions Remus { get; set; } = new();

    /// <summary>Settings of `resh migrate` and `resh receive` (modes resh, spare and remus).</summary>
    public Resh.Migration.MigrationOptions Migration { get; set; } = new();

    /// <summary>The mode's keys, at the top of the configuration: mode, and the section of each mode.</summary>
    public static OptionSchema<ModeOptions> Keys { get; } = new OptionSchema<ModeOptions>()
        .Value("mode", "how the replicas are organised", OptionValues.Choice("resh (2f+1 active replicas), spare (f+1 active, f+1 passive) or remus (primary and backup)", ("resh", ReplicationMode.Resh), ("spare", ReplicationMode.Spare), ("remus", ReplicationMode.Remus)), (o, v) => o.Mode = v)
        .Section("spare", "settings of mode spare", o => o.Spare, SpareOptions.Keys)
        .Section("remus", "settings of mode remus", o => o.Remus, RemusOptions.Keys)
        .Section("migration", "settings of resh migrate and resh receive (modes resh, spare and remus)", o => o.Migration, Resh.Migration.MigrationOptions.Keys)
        .Rule("spare", (o, given) => given && o.Mode != ReplicationMode.Spare ? "spare: only mode spare reads this section; set mode: spare or remove it" : null)
        .Rule("remus", (o, given) => (given, o.Mode) switch
        {
            (true, not ReplicationMode.Remus) => "remus: only mode remus reads this section; set mode: remus or remove it",
            (false, ReplicationMode.Remus) => "remus: missing; mode remus needs e.g. 'remus: { backup: 127.0.0.1:6391 }'",
            _ => null,
        }, atKey: "mode");

    /// <summary>The configured mode's own problems, and whether the group's replica count fits it.</summary>
    public IReadOnlyList<string> Validate(GroupOptions group)
    {
        ArgumentNullException.ThrowIfNull(group);
        var errors = new List<string>();
        if (group.Faults >= 0 && ModePolicies.For(this).ReplicaCountProblem(group.Faults, group.Replicas.Count) is { } problem)
        {
            errors.Add(problem);
        }

        errors.AddRange(Mode switch
        {
            ReplicationMode.Spare => Spare.Validate(),
            ReplicationMode.Remus => Remus.Validate(),
            _ => Migration.Validate(),
        });
        return errors;
    }
}
