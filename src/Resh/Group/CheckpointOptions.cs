using Resh.Checkpoints;
using Resh.Options;

namespace Resh.Group;

/// <summary>
/// Service checkpoints: how a replica writes its state to files (<see cref="Flush"/>), which files hold it,
/// how replicas prove they hold the same state (<see cref="Digest"/>), and how often.
/// </summary>
public sealed class CheckpointOptions
{
    /// <summary>Command that makes the service write its state to <see cref="Files"/> and answers when done (Redis: SAVE).</summary>
    public string Flush { get; set; } = "";

    /// <summary>Files, relative to the replica's data directory ({dir}), that hold the state after the flush (Redis: dump.rdb).</summary>
    public IReadOnlyList<string> Files { get; set; } = [];

    /// <summary>
    /// How replicas prove they hold the same state: <see cref="RdbDigest"/> ("rdb": Resh reads each replica's files as
    /// Redis RDB and digests the data in them, off the service's main thread), or a command whose reply is a digest
    /// (Redis: DEBUG DIGEST, which needs <c>--enable-debug-command local</c>). Without it, replicas are compared by the
    /// SHA-256 of their files.
    /// </summary>
    public string? Digest { get; set; }

    /// <summary>The <see cref="Digest"/> that makes Resh digest the files as Redis RDB.</summary>
    public const string RdbDigest = "rdb";

    /// <summary>
    /// A background flush (Redis: BGSAVE): the command polled on a side connection after the flush answered, until its
    /// reply contains <see cref="FlushDoneWhen"/> (Redis: INFO persistence). Null: the flush answers when it is done (SAVE).
    /// </summary>
    public string? FlushDone { get; set; }

    /// <summary>Text in the <see cref="FlushDone"/> reply once the flush finished (Redis: rdb_bgsave_in_progress:0).</summary>
    public string? FlushDoneWhen { get; set; }

    /// <summary>Text in the finished <see cref="FlushDone"/> reply that says the flush failed (Redis: rdb_last_bgsave_status:err).</summary>
    public string? FlushFailedWhen { get; set; }

    /// <summary>How long a background flush may take before the replica's part of the checkpoint is given up.</summary>
    public TimeSpan FlushTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The flush runs in the background: the replica goes on serving while it writes its files.</summary>
    public bool Background => FlushDone is not null;

    /// <summary>
    /// Replicas are compared by what Resh reads from their files after the flush, in a vote of its own (the RDB digest,
    /// or the files' SHA-256 for a background flush), not inside the vote on the flush's reply.
    /// </summary>
    public bool VotesOnFiles => Digest == RdbDigest || (Background && Digest is null);

    /// <summary>
    /// Which replicas flush each checkpoint voted on files: null (the default) is <see cref="CheckpointFlushers.Quorum"/>
    /// for such checkpoints and <see cref="CheckpointFlushers.All"/> for a checkpoint voted on a digest command's reply.
    /// </summary>
    public CheckpointFlushers? FlushBy { get; set; }

    /// <summary>What <see cref="FlushBy"/> comes to: f+1 replicas flush (in turn) only where the vote is on files.</summary>
    public CheckpointFlushers Flushers => FlushBy ?? (VotesOnFiles ? CheckpointFlushers.Quorum : CheckpointFlushers.All);

    /// <summary>The smallest <see cref="MaxLogBytes"/> accepted: below it checkpoints would follow each other back to back.</summary>
    public const long MinMaxLogBytes = 1 << 20;

    /// <summary>A checkpoint after this many new log entries (null: not by count).</summary>
    public long? EveryEntries { get; set; }

    /// <summary>A checkpoint this long after the previous one, if there were new entries (null: not by time).</summary>
    public TimeSpan? Every { get; set; }

    /// <summary>No checkpoint sooner than this after the previous one, whatever the entries (null: no floor).</summary>
    public TimeSpan? MinInterval { get; set; }

    /// <summary>
    /// A checkpoint is due once the entries appended since the last one take this many bytes (payloads and a record
    /// each), whatever <see cref="MinInterval"/> says: the log a checkpoint cuts, and so the gateway's memory for it, is
    /// bounded by about this plus what arrives while a checkpoint runs, at any request rate (null: no such bound).
    /// </summary>
    public long? MaxLogBytes { get; set; }

    /// <summary>The checkpoint store's directory; null for <c>STATE-DIR/store</c>.</summary>
    public string? StorePath { get; set; }

    /// <summary>Which stored checkpoints to keep; the newest is always kept.</summary>
    public RetentionPolicy Retention { get; set; } = new() { KeepLast = 3 };

    /// <summary>
    /// A copy of these settings with the schedule, flush timeout and retention of <paramref name="next"/>: what a reload
    /// changes while the group runs (the flush, files and digest shape the checkpoints already stored).
    /// </summary>
    public CheckpointOptions WithSchedule(CheckpointOptions next)
    {
        ArgumentNullException.ThrowIfNull(next);
        var copy = (CheckpointOptions)MemberwiseClone();
        copy.EveryEntries = next.EveryEntries;
        copy.Every = next.Every;
        copy.MinInterval = next.MinInterval;
        copy.MaxLogBytes = next.MaxLogBytes;
        copy.FlushTimeout = next.FlushTimeout;
        copy.Retention = next.Retention;
        return copy;
    }

    /// <summary>The keys of checkpoint.retention.</summary>
    public static OptionSchema<RetentionPolicy> RetentionKeys { get; } = new OptionSchema<RetentionPolicy>()
        .Value("keep-last", "the newest N", OptionValues.Integer(0, 1_000_000), (r, v) => r.KeepLast = (int)v)
        .Value("keep-hourly", "the newest of each of the last N hours", OptionValues.Integer(0, 1_000_000), (r, v) => r.KeepHourly = (int)v)
        .Value("keep-daily", "the newest of each of the last N days", OptionValues.Integer(0, 1_000_000), (r, v) => r.KeepDaily = (int)v)
        .Value("keep-within", "every one younger than this", OptionValues.Duration(allowZero: true), (r, v) => r.KeepWithin = v)
        .Value("density", "thin older ones to one per this span, growing with age", OptionValues.Duration(), (r, v) => r.DensityBase = v);

    /// <summary>The keys of the checkpoint: section.</summary>
    public static OptionSchema<CheckpointOptions> Keys { get; } = new OptionSchema<CheckpointOptions>()
        .Value("flush", "command that makes the service write its state to its files (Redis: SAVE)", OptionValues.Text, (o, v) => o.Flush = v, required: "flush: SAVE")
        .List("files", "the state files under the replica's directory", OptionValues.Text, (o, v) => o.Files = v, "[dump.rdb]", oneToo: true, required: "files: [dump.rdb]")
        .Value("digest", "how replicas prove equal state: rdb (Resh digests the Redis RDB files), or a command whose reply digests it (DEBUG DIGEST)", OptionValues.Text, (o, v) => o.Digest = v)
        .Value("flush-done", "a background flush: command polled until it finished (Redis: INFO persistence)", OptionValues.Text, (o, v) => o.FlushDone = v)
        .Value("flush-done-when", "text of the flush-done reply once the flush finished (Redis: rdb_bgsave_in_progress:0)", OptionValues.Text, (o, v) => o.FlushDoneWhen = v)
        .Value("flush-failed-when", "text of the finished flush-done reply when the flush failed (Redis: rdb_last_bgsave_status:err)", OptionValues.Text, (o, v) => o.FlushFailedWhen = v)
        .Value("flush-timeout", "how long a background flush may take", OptionValues.Duration(), (o, v) => o.FlushTimeout = v)
        .Value("flush-by", "which replicas flush each checkpoint", OptionValues.Choice("quorum (f+1 replicas in turn; the default where the vote is on files) or all", ("quorum", CheckpointFlushers.Quorum), ("all", CheckpointFlushers.All)), (o, v) => o.FlushBy = v)
        .Value("interval", "checkpoint every N log entries (10000) or every duration (5s)", OptionValues.EntriesOrDuration, (o, v) => (o.EveryEntries, o.Every) = v, required: "interval: 5s")
        .Value("min-interval", "no checkpoint sooner than this after the previous one (bounds the cost at high request rates)", OptionValues.Duration(), (o, v) => o.MinInterval = v)
        .Value("max-log-bytes", "a checkpoint is due once the entries since the last one take this much, even before min-interval (bounds the gateway's memory)", OptionValues.Size, (o, v) => o.MaxLogBytes = v)
        .Value("store", "checkpoint store directory", OptionValues.Path, (o, v) => o.StorePath = v)
        .Section("retention", "which checkpoints the store keeps", o => o.Retention = new RetentionPolicy(), RetentionKeys);

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Flush))
        {
            errors.Add("checkpoint.flush: needs the command that writes the service's state to disk, e.g. SAVE for redis-server");
        }

        if (Files.Count == 0)
        {
            errors.Add("checkpoint.files: needs at least one file the flush writes, relative to the replica's {dir}, e.g. [dump.rdb]");
        }

        foreach (var file in Files)
        {
            if (string.IsNullOrWhiteSpace(file) || Path.IsPathRooted(file) || file.Split('/', '\\').Any(part => part is ".." or "."))
            {
                errors.Add($"checkpoint.files: '{file}' must be a plain path inside the replica's data directory (no leading /, no . or ..)");
            }
        }

        if (Digest is not null && string.IsNullOrWhiteSpace(Digest))
        {
            errors.Add("checkpoint.digest: must be a command (e.g. DEBUG DIGEST) or left out");
        }

        if (FlushDone is not null && string.IsNullOrWhiteSpace(FlushDoneWhen))
        {
            errors.Add("checkpoint.flush-done-when: a background flush needs the text that says it finished, e.g. 'rdb_bgsave_in_progress:0' for INFO persistence");
        }

        if (FlushDone is null && (FlushDoneWhen is not null || FlushFailedWhen is not null))
        {
            errors.Add("checkpoint.flush-done: flush-done-when and flush-failed-when need the command that is polled, e.g. 'flush-done: INFO persistence'");
        }

        if (FlushDone is not null && Digest is not null && Digest != RdbDigest)
        {
            errors.Add($"checkpoint.digest: '{Digest}' cannot digest a background flush (the service has moved on when its files are ready); use 'digest: rdb' (Redis) or leave it out to compare the files' SHA-256");
        }

        if (FlushBy == CheckpointFlushers.Quorum && !VotesOnFiles)
        {
            errors.Add($"checkpoint.flush-by: quorum needs a vote on files ('digest: rdb', or a background flush compared by the files' SHA-256): the reply of '{Digest}' is voted like a request, by every replica; use 'flush-by: all' or leave it out");
        }

        if (EveryEntries is null && Every is null)
        {
            errors.Add("checkpoint.interval: needs a number of log entries (e.g. 10000) or a time (e.g. 5s)");
        }

        if (MaxLogBytes is < MinMaxLogBytes)
        {
            errors.Add($"checkpoint.max-log-bytes: must be at least 1MiB (got {MaxLogBytes} bytes), e.g. 256MiB");
        }

        if (EveryEntries is < 1)
        {
            errors.Add($"checkpoint.interval: must be at least 1 entry (got {EveryEntries})");
        }

        if (Every is { } every && every < TimeSpan.FromMilliseconds(100))
        {
            errors.Add($"checkpoint.interval: must be at least 100ms (got {every.TotalMilliseconds:0.###}ms)");
        }

        if (StorePath is not null && string.IsNullOrWhiteSpace(StorePath))
        {
            errors.Add("checkpoint.store: must name a directory or be left out");
        }

        errors.AddRange(Retention.Validate().Select(e => "checkpoint." + e));
        return errors;
    }
}

/// <summary>Which replicas flush a checkpoint.</summary>
public enum CheckpointFlushers
{
    /// <summary>
    /// f+1 voting replicas, a different set each time; the others rest and go on serving. f+1 equal digests verify the
    /// checkpoint, so this is what it needs, and it saves the rest's forks, saves and digests. A replica is checked at
    /// least every other checkpoint; a split among the f+1 fails the checkpoint and the next is flushed by all.
    /// </summary>
    Quorum,

    /// <summary>Every voting replica flushes every checkpoint: each is checked every time, at the cost of 2f+1 saves.</summary>
    All,
}
