using Resh.Options;

namespace Resh.Protocols.Resp;

/// <summary>How the voter compares error replies.</summary>
public enum ErrorComparison
{
    /// <summary>Errors must match byte for byte.</summary>
    Exact,

    /// <summary>Only the error code (the first word, e.g. WRONGTYPE) must match; useful for N-version replicas whose messages differ.</summary>
    CodeOnly,
}

/// <summary>What the gateway does with commands whose effect depends on the replica's clock.</summary>
public enum ExpiryRewrite
{
    /// <summary>
    /// Relative times are turned into absolute deadlines once, by the gateway, from
    /// <see cref="RespOptions.Clock"/>, before the request is logged, so every replica sets the same deadline
    /// however late it executes the request: EXPIRE k s [NX|XX|GT|LT] → PEXPIREAT k now+s*1000 [..];
    /// PEXPIRE → PEXPIREAT; SET .. EX s / PX ms → SET .. PXAT deadline; SETEX/PSETEX k t v → SET k v PXAT
    /// deadline; GETEX k EX/PX → GETEX k PXAT; RESTORE k ttl v → RESTORE k deadline v .. ABSTTL;
    /// HEXPIRE/HPEXPIRE → HPEXPIREAT; XADD k .. * → XADD k .. &lt;now-ms&gt;-* (stream ids agree too).
    /// A value that is not an integer (or that Redis refuses, or that would overflow) leaves the request
    /// unchanged, so the replicas produce Redis's own error, identically; only SETEX/PSETEX with a
    /// non-positive time are answered by the gateway ("invalid expire time in 'setex' command"), because
    /// their rewritten form (SET) would word the error differently. Inside MULTI the times are fixed when a
    /// command is queued, not at EXEC. EXAT/PXAT/EXPIREAT/PEXPIREAT are already absolute and left alone.
    /// </summary>
    Absolute,

    /// <summary>Requests are forwarded as they are: every replica reads its own clock.</summary>
    Passthrough,

    /// <summary>
    /// As <see cref="Absolute"/>, and expiry itself is the gateway's (the default): every future deadline, absolute
    /// ones (EXPIREAT, PEXPIREAT, EXAT, PXAT, RESTORE ABSTTL) included, reaches the replicas shifted far into the
    /// future, so no replica expires a key by its own clock, and the gateway deletes each key at its deadline
    /// through the ordered log (<see cref="RespExpiryKeeper"/>). TTL, PTTL, EXPIRETIME and PEXPIRETIME are answered
    /// from the voted deadline. Needs Lua scripting on the replicas (Garnet: --lua).
    /// </summary>
    Owned,
}

/// <summary>Options of the RESP codec. Byte limits apply to client requests.</summary>
public sealed class RespOptions
{
    public const long DefaultMaxInlineBytes = 64 * 1024;
    public const long DefaultMaxBulkBytes = 512L * 1024 * 1024;
    public const int DefaultMaxArguments = 1024 * 1024;
    public const long DefaultMaxQueryBufferBytes = 1024L * 1024 * 1024;
    public const int DefaultMaxQueuedCommands = 10_000;
    public const int DefaultDatabases = 16;

    /// <summary>Largest value of any byte limit: a request is held in one array.</summary>
    public static readonly long MaxByteLimit = Array.MaxLength;

    /// <summary>Largest database count: the database index is the low 16 bits of a session context.</summary>
    public const int MaxDatabases = 1 << 16;

    /// <summary>Longest inline (telnet-style) request line, without its line ending.</summary>
    public long MaxInlineBytes { get; set; } = DefaultMaxInlineBytes;

    /// <summary>Longest single argument of a multibulk request.</summary>
    public long MaxBulkBytes { get; set; } = DefaultMaxBulkBytes;

    /// <summary>Most arguments in one request.</summary>
    public int MaxArguments { get; set; } = DefaultMaxArguments;

    /// <summary>Largest single request, and largest MULTI..EXEC block held by the gateway.</summary>
    public long MaxQueryBufferBytes { get; set; } = DefaultMaxQueryBufferBytes;

    /// <summary>Most commands queued inside one MULTI block.</summary>
    public int MaxQueuedCommands { get; set; } = DefaultMaxQueuedCommands;

    public ErrorComparison ErrorComparison { get; set; } = ErrorComparison.Exact;

    /// <summary>Number of databases of the replicas (SELECT 0..Databases-1).</summary>
    public int Databases { get; set; } = DefaultDatabases;

    public ExpiryRewrite ExpiryRewrite { get; set; } = ExpiryRewrite.Owned;

    /// <summary>Clock used to turn relative expiry times into absolute ones.</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>
    /// Commands answered with "not supported under replication". Names are case-insensitive; an entry
    /// "name|subcommand" (e.g. "script|kill") rejects one subcommand only. Starts as
    /// <see cref="RespProfile.Defaults"/>; add or remove names freely.
    /// </summary>
    public ISet<string> RejectedCommands { get; set; } = RespProfile.CreateDefaultSet();

    /// <summary>
    /// Users and their passwords (service.requirepass is the user "default"). When any is set, a session must AUTH
    /// (or HELLO ... AUTH) before anything else; the gateway checks, and nothing of an unauthenticated session reaches
    /// the log. Every user may run every command the profile allows.
    /// </summary>
    public IDictionary<string, string> Users { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The RESP keys of the service: section.</summary>
    public static OptionSchema<RespOptions> Keys { get; } = new OptionSchema<RespOptions>()
        .Value("databases", "how many databases SELECT may choose from", OptionValues.Integer(1, 1_000_000), (o, v) => o.Databases = (int)v)
        .Value("expiry", "who fixes deadlines", OptionValues.Choice("owned (the gateway fixes every deadline and deletes expired keys through the log), absolute (relative TTLs become absolute deadlines chosen by the gateway) or passthrough", ("owned", ExpiryRewrite.Owned), ("absolute", ExpiryRewrite.Absolute), ("passthrough", ExpiryRewrite.Passthrough)), (o, v) => o.ExpiryRewrite = v)
        .Value("requirepass", "password of the user default", OptionValues.Text, (o, v) => o.Users["default"] = v)
        .Map("users", "users and their passwords", (o, user, password) => o.Users[user] = password)
        .List("reject", "commands refused besides the profile's", OptionValues.Text, (o, v) => v.ForEach(c => o.RejectedCommands.Add(c.ToUpperInvariant())), "[KEYS, FLUSHALL]")
        .List("allow", "commands of the profile's refused list to let through", OptionValues.Text, (o, v) => v.ForEach(c => o.RejectedCommands.Remove(c.ToUpperInvariant())), "[KEYS, FLUSHALL]");

    /// <summary>The RESP keys of service.limits.</summary>
    public static OptionSchema<RespOptions> LimitKeys { get; } = new OptionSchema<RespOptions>()
        .Value("max-inline-bytes", "longest inline command", OptionValues.Size, (o, v) => o.MaxInlineBytes = v)
        .Value("max-bulk-bytes", "largest argument", OptionValues.Size, (o, v) => o.MaxBulkBytes = v)
        .Value("max-arguments", "most arguments of one command", OptionValues.Integer(1, int.MaxValue), (o, v) => o.MaxArguments = (int)v)
        .Value("max-query-buffer-bytes", "most unparsed bytes held per client", OptionValues.Size, (o, v) => o.MaxQueryBufferBytes = v)
        .Value("max-queued-commands", "most commands queued in one MULTI", OptionValues.Integer(1, int.MaxValue), (o, v) => o.MaxQueuedCommands = (int)v);

    /// <summary>The keys of normalize:, how replies are compared.</summary>
    public static OptionSchema<RespOptions> NormalizeKeys { get; } = new OptionSchema<RespOptions>()
        .Value("errors", "how error replies are compared", OptionValues.Choice("exact or code-only", ("exact", ErrorComparison.Exact), ("code-only", ErrorComparison.CodeOnly)), (o, v) => o.ErrorComparison = v);

    /// <summary>Problems with these options, each naming its configuration key; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        CheckRange(errors, "service.limits.max-inline-bytes", MaxInlineBytes, MaxByteLimit);
        CheckRange(errors, "service.limits.max-bulk-bytes", MaxBulkBytes, MaxByteLimit);
        CheckRange(errors, "service.limits.max-arguments", MaxArguments, int.MaxValue);
        CheckRange(errors, "service.limits.max-query-buffer-bytes", MaxQueryBufferBytes, MaxByteLimit);
        CheckRange(errors, "service.limits.max-queued-commands", MaxQueuedCommands, int.MaxValue);
        if (MaxQueryBufferBytes >= 1 && MaxInlineBytes > MaxQueryBufferBytes)
        {
            errors.Add($"service.limits.max-inline-bytes ({MaxInlineBytes}) must not exceed service.limits.max-query-buffer-bytes ({MaxQueryBufferBytes})");
        }

        if (MaxQueryBufferBytes >= 1 && MaxBulkBytes > MaxQueryBufferBytes)
        {
            errors.Add($"service.limits.max-bulk-bytes ({MaxBulkBytes}) must not exceed service.limits.max-query-buffer-bytes ({MaxQueryBufferBytes})");
        }

        if (!Enum.IsDefined(ErrorComparison))
        {
            errors.Add($"normalize.errors must be exact or code-only (got {(int)ErrorComparison})");
        }

        CheckRange(errors, "service.databases", Databases, MaxDatabases);
        if (!Enum.IsDefined(ExpiryRewrite))
        {
            errors.Add($"service.expiry must be owned, absolute or passthrough (got {(int)ExpiryRewrite})");
        }

        if (Clock is null)
        {
            errors.Add("the RESP clock must be set");
        }

        foreach (var (user, password) in Users)
        {
            if (string.IsNullOrEmpty(user) || user.Any(c => c <= ' ' || c >= 0x7f))
            {
                errors.Add($"service.users: '{user}' is not a user name (printable ASCII without blanks)");
            }

            if (string.IsNullOrEmpty(password))
            {
                errors.Add($"service.users.{user}: the password must not be empty");
            }
        }

        if (RejectedCommands is null)
        {
            errors.Add("service.reject: the rejected command set must not be null (it may be empty)");
        }
        else
        {
            foreach (var name in RejectedCommands)
            {
                if (!RespCommandSet.IsValidEntry(name))
                {
                    errors.Add($"service.reject has an invalid entry '{name}': use a command name such as 'keys', or 'command|subcommand' such as 'script|kill'");
                }
            }
        }

        return errors;
    }

    private static void CheckRange(List<string> errors, string key, long value, long max)
    {
        if (value < 1 || value > max)
        {
            errors.Add($"{key} must be between 1 and {max} (got {value})");
        }
    }
}
