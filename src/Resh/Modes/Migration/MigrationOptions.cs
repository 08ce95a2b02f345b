using System.Net;
using Resh.Options;
using Resh.Remus;

namespace Resh.Migration;

/// <summary>
/// Settings of `resh migrate` (the source, mode resh, and `resh receive` on the target): when the pre-copy rounds
/// end, how the link is secured and timed, and the commands that move the service address.
/// </summary>
public sealed class MigrationOptions
{
    /// <summary>The push phase ends when a round leaves at most this many entries for the next one (the stop-and-copy's delta).</summary>
    public long DeltaThreshold { get; set; } = 1000;

    /// <summary>The push phase ends when the delta did not shrink for this many rounds in a row (the writes outpace the link).</summary>
    public int StallRounds { get; set; } = 3;

    /// <summary>The push phase ends after this many rounds whatever the delta.</summary>
    public int MaxRounds { get; set; } = 30;

    /// <summary>A round that does not finish within this long fails the migration (the target cannot keep up).</summary>
    public TimeSpan RoundTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The target applies what it received to its frozen replicas this often (what is left at the takeover is less).</summary>
    public TimeSpan ApplyInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Either side gives the link up after hearing nothing for this long (heartbeats every third of it).</summary>
    public TimeSpan LinkTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A command the target runs before it serves (e.g. add the service address on its host).</summary>
    public string? TakeoverCommand { get; set; }

    /// <summary>A command the source runs before the target takes over (e.g. remove the service address from its host).</summary>
    public string? ReleaseCommand { get; set; }

    /// <summary>PEM certificate both hosts share for mutual TLS on the link (with <see cref="TlsKey"/>); required for a non-loopback target.</summary>
    public string? TlsCertificate { get; set; }

    /// <summary>PEM private key of <see cref="TlsCertificate"/>.</summary>
    public string? TlsKey { get; set; }

    /// <summary>The keys of the migration: section.</summary>
    public static OptionSchema<MigrationOptions> Keys { get; } = new OptionSchema<MigrationOptions>()
        .Value("delta-threshold", "pre-copy ends when a round leaves at most this many log entries (1000)", OptionValues.Integer(0, long.MaxValue), (o, v) => o.DeltaThreshold = v)
        .Value("stall-rounds", "pre-copy ends when the delta did not shrink for this many rounds (3)", OptionValues.Integer(1, 1000), (o, v) => o.StallRounds = (int)v)
        .Value("max-rounds", "pre-copy ends after this many rounds (30)", OptionValues.Integer(1, 10000), (o, v) => o.MaxRounds = (int)v)
        .Value("round-timeout", "a round that takes longer fails the migration (5m)", OptionValues.Duration(), (o, v) => o.RoundTimeout = v)
        .Value("apply-interval", "the target applies what it received this often (200ms)", OptionValues.Duration(), (o, v) => o.ApplyInterval = v)
        .Value("link-timeout", "the link is given up after hearing nothing this long (5s)", OptionValues.Duration(), (o, v) => o.LinkTimeout = v)
        .Value("takeover-command", "command the target runs before it serves", OptionValues.Text, (o, v) => o.TakeoverCommand = v)
        .Value("release-command", "command the source runs before the target takes over", OptionValues.Text, (o, v) => o.ReleaseCommand = v)
        .Value("tls-certificate", "PEM certificate both hosts share for mutual TLS on the link", OptionValues.Path, (o, v) => o.TlsCertificate = v)
        .Value("tls-key", "PEM private key of tls-certificate", OptionValues.Path, (o, v) => o.TlsKey = v);

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (ApplyInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"migration.apply-interval: must be at least 10ms (got {ApplyInterval.TotalMilliseconds:0.###}ms)");
        }

        if (LinkTimeout < TimeSpan.FromMilliseconds(100))
        {
            errors.Add($"migration.link-timeout: must be at least 100ms (got {LinkTimeout.TotalMilliseconds:0.###}ms)");
        }

        if (RoundTimeout < TimeSpan.FromSeconds(1))
        {
            errors.Add($"migration.round-timeout: must be at least 1s (got {RoundTimeout.TotalMilliseconds:0.###}ms)");
        }

        if ((TlsCertificate is null) != (TlsKey is null))
        {
            errors.Add("migration.tls-certificate and migration.tls-key: give both (the certificate both hosts share and its key), or neither");
        }

        foreach (var (name, command) in (ReadOnlySpan<(string, string?)>)[("takeover-command", TakeoverCommand), ("release-command", ReleaseCommand)])
        {
            if (command is not null && string.IsNullOrWhiteSpace(command))
            {
                errors.Add($"migration.{name}: must be a command or left out");
            }
        }

        return errors;
    }

    /// <summary>Why the link to <paramref name="target"/> may not be used as configured, or null.</summary>
    public string? TargetProblem(IPEndPoint target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return TlsCertificate is null && !IPAddress.IsLoopback(target.Address)
            ? $"{target} is not a loopback address, and the link would carry every write and the power to take the service over unauthenticated; set migration.tls-certificate and migration.tls-key on both hosts (resh link-certificate makes a pair)"
            : null;
    }

    /// <summary>The link's settings in the form the backup link and server take (a migration is a Remus link that gates nothing).</summary>
    internal RemusOptions Link(IPEndPoint target) => new()
    {
        Backups = [target],
        Epoch = TimeSpan.FromMilliseconds(10),
        FailoverTimeout = LinkTimeout,
        ApplyInterval = ApplyInterval,
        TakeoverCommand = TakeoverCommand,
        ReleaseCommand = ReleaseCommand,
        TlsCertificate = TlsCertificate,
        TlsKey = TlsKey,
    };
}
