namespace Resh.Modes;

/// <summary>The composition of a group: the policy of the configured mode (the host's one place that picks it).</summary>
public static class ModePolicies
{
    /// <param name="standby">Mode remus, the backup: its replica stands by until the takeover.</param>
    public static IGroupPolicy For(GroupOptions options, bool standby = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Mode switch
        {
            ReplicationMode.Spare => new SparePolicy(),
            ReplicationMode.Remus when standby => new StandbyPolicy(),
            _ => new ActivePolicy(),
        };
    }
}
