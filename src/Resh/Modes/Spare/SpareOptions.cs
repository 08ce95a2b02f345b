using Resh.Group;
using Resh.Options;


namespace Resh.Modes;

/// <summary>How a replica group replicates.</summary>
public enum ReplicationMode
{
    /// <summary>2f+1 active replicas; a reply is released at f+1 equal replies.</summary>
    Resh,

    /// <summary>f+1 active replicas that must all agree, and f+1 frozen passive replicas woken on a mismatch or a missing reply.</summary>
    Spare,

    /// <summary>One primary replica; a backup process holds a paused copy fed by epochs; replies wait for the backup's acknowledgement.</summary>
    Remus,
}

/// <summary>Settings of mode spare: how often the passive replicas are brought up to date and how often replicas are rotated.</summary>
public sealed class SpareOptions
{
    /// <summary>Passive replicas are thawed, fed the verified log and frozen again this often (null: not by time).</summary>
    public TimeSpan? UpdateEvery { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>... or after this many new log entries (null: not by count).</summary>
    public long? UpdateEveryEntries { get; set; }

    /// <summary>Proactive recovery: every this long a passive replica is activated and the oldest active domain is replaced by a fresh passive one (null: off).</summary>
    public TimeSpan? RejuvenateEvery { get; set; }

    /// <summary>
    /// A command whose reply is a digest of the service's state (Redis: DEBUG DIGEST). When set, every passive
    /// update ends with it, voted by the active replicas, so a passive replica whose state went bad is found at
    /// its next update even if nothing it replays reads the bad part. Null: the checkpoint digest, if any.
    /// </summary>
    public string? Digest { get; set; }

    /// <summary>
    /// How passive replicas are brought up to date: by replaying every write, by being given the state the writes changed
    /// (read from the active replicas and voted; Redis: DUMP and RESTORE of the keys), or by whichever costs less as
    /// measured on earlier updates (the default).
    /// </summary>
    public PassiveUpdateMethod UpdateBy { get; set; } = PassiveUpdateMethod.Auto;

    /// <summary>The keys of the spare: section.</summary>
    public static OptionSchema<SpareOptions> Keys { get; } = new OptionSchema<SpareOptions>()
        .Value("update-interval", "bring the passive replicas up to date every N log entries (10000) or every duration (1s)", OptionValues.EntriesOrDuration, (o, v) => (o.UpdateEveryEntries, o.UpdateEvery) = v)
        .Value("update-by", "how passive replicas are brought up to date: auto (whichever costs less, measured), replay (every write again), state (the keys the writes changed)", OptionValues.Choice("auto, replay or state", ("auto", PassiveUpdateMethod.Auto), ("replay", PassiveUpdateMethod.Replay), ("state", PassiveUpdateMethod.State)), (o, v) => o.UpdateBy = v)
        .Value("rejuvenate-every", "rotate a passive replica in and the oldest active one out this often (off: never)", OffOr(OptionValues.Duration()), (o, v) => o.RejuvenateEvery = v)
        .Value("digest", "command whose reply digests the service's state, voted after each passive update", OptionValues.Text, (o, v) => o.Digest = v);

    private static OptionParser<TimeSpan?> OffOr(OptionParser<TimeSpan> duration) => (string text, OptionContext context, out TimeSpan? value, out string problem) =>
    {
        (value, problem) = (null, "");
        if (text is "off" or "never")
        {
            return true;
        }

        var ok = duration(text, context, out var parsed, out problem);
        value = parsed;
        return ok;
    };

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (UpdateEvery is null && UpdateEveryEntries is null)
        {
            errors.Add("spare.update-interval: needs a time (e.g. 1s) or a number of log entries (e.g. 10000)");
        }

        if (UpdateEvery is { } every && every < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"spare.update-interval: must be at least 10ms (got {every.TotalMilliseconds:0.###}ms)");
        }

        if (UpdateEveryEntries is < 1)
        {
            errors.Add($"spare.update-interval: must be at least 1 entry (got {UpdateEveryEntries})");
        }

        if (RejuvenateEvery is { } rejuvenate && rejuvenate < TimeSpan.FromSeconds(1))
        {
            errors.Add($"spare.rejuvenate-every: must be at least 1s (got {rejuvenate.TotalMilliseconds:0.###}ms)");
        }

        if (Digest is not null && string.IsNullOrWhiteSpace(Digest))
        {
            errors.Add("spare.digest: must be a command (e.g. DEBUG DIGEST) or left out");
        }

        return errors;
    }
}
