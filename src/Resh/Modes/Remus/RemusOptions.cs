using System.Net;
using Resh.Options;

namespace Resh.Remus;

/// <summary>Settings of mode remus: where the backup is, how long an epoch lasts, when the backup takes over.</summary>
public sealed class RemusOptions
{
    /// <summary>
    /// Backup link addresses (`resh backup --listen ADDR`). The primary connects to the first one that answers;
    /// a backup that took over connects to the others (a new backup attached later).
    /// </summary>
    public IReadOnlyList<IPEndPoint> Backups { get; set; } = [];

    /// <summary>How long an epoch lasts: its input is shipped to the backup at its end. Zero ships every request at once.</summary>
    public TimeSpan Epoch { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>The backup takes over when it has heard nothing from the primary (epochs or heartbeats) for this long.</summary>
    public TimeSpan FailoverTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The backup thaws its domain, applies the acknowledged epochs and freezes it again this often.</summary>
    public TimeSpan ApplyInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>`resh run` also starts `resh backup` on this machine for the first backup address (single host).</summary>
    public bool StartBackup { get; set; }

    /// <summary>A command the backup runs before it serves after a takeover (e.g. move the service address to this host).</summary>
    public string? TakeoverCommand { get; set; }

    /// <summary>A command the primary runs in a switchover before the backup takes over (e.g. remove the service address here).</summary>
    public string? ReleaseCommand { get; set; }

    /// <summary>What the primary does when its replica fails: rebuild it here (clients wait), or hand the service to the backup.</summary>
    public ReplicaFailureAction OnReplicaFailure { get; set; } = ReplicaFailureAction.Rebuild;

    /// <summary>PEM certificate the pair shares for mutual TLS on the link (with <see cref="TlsKey"/>); required for a non-loopback link.</summary>
    public string? TlsCertificate { get; set; }

    /// <summary>PEM private key of <see cref="TlsCertificate"/>.</summary>
    public string? TlsKey { get; set; }

    /// <summary>The keys of the remus: section.</summary>
    public static OptionSchema<RemusOptions> Keys { get; } = new OptionSchema<RemusOptions>()
        .List("backup", "the backup's address (resh backup --listen), or a list of them", OptionValues.Endpoint, (o, v) => o.Backups = v, "[127.0.0.1:6391]", oneToo: true, required: "backup: 127.0.0.1:6391")
        .Value("epoch", "how long the primary collects requests before shipping them (0: at once)", OptionValues.Duration(allowZero: true), (o, v) => o.Epoch = v)
        .Value("failover-timeout", "the backup takes over after hearing nothing this long", OptionValues.Duration(), (o, v) => o.FailoverTimeout = v)
        .Value("apply-interval", "the backup applies what it holds this often", OptionValues.Duration(), (o, v) => o.ApplyInterval = v)
        .Value("start-backup", "resh run also starts the backup process", OptionValues.Flag, (o, v) => o.StartBackup = v)
        .Value("takeover-command", "command the backup runs when it takes over", OptionValues.Text, (o, v) => o.TakeoverCommand = v)
        .Value("release-command", "command the primary runs when it hands over in a switchover", OptionValues.Text, (o, v) => o.ReleaseCommand = v)
        .Value("on-replica-failure", "what the primary does when its replica fails", OptionValues.Choice("rebuild (here, from the checkpoint and the log; clients wait) or failover (hand the service to the backup at once)", ("rebuild", ReplicaFailureAction.Rebuild), ("failover", ReplicaFailureAction.Failover)), (o, v) => o.OnReplicaFailure = v)
        .Value("tls-certificate", "PEM certificate both hosts share for mutual TLS on the link", OptionValues.Path, (o, v) => o.TlsCertificate = v)
        .Value("tls-key", "PEM private key of tls-certificate", OptionValues.Path, (o, v) => o.TlsKey = v);

    /// <summary>Returns one message per problem, each naming the setting and what would fix it.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Backups.Count == 0)
        {
            errors.Add("remus.backup: needs the address of `resh backup --listen ADDR`, e.g. 127.0.0.1:6391");
        }

        if (Epoch < TimeSpan.Zero || Epoch > TimeSpan.FromSeconds(10))
        {
            errors.Add($"remus.epoch: must be 0 (every request) up to 10s (got {Epoch.TotalMilliseconds:0.###}ms)");
        }

        if (FailoverTimeout < TimeSpan.FromMilliseconds(50))
        {
            errors.Add($"remus.failover-timeout: must be at least 50ms (got {FailoverTimeout.TotalMilliseconds:0.###}ms)");
        }

        if (FailoverTimeout <= Epoch)
        {
            errors.Add("remus.failover-timeout: must be longer than remus.epoch, or every epoch would look like a lost primary");
        }

        if (ApplyInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"remus.apply-interval: must be at least 10ms (got {ApplyInterval.TotalMilliseconds:0.###}ms)");
        }

        if ((TlsCertificate is null) != (TlsKey is null))
        {
            errors.Add("remus.tls-certificate and remus.tls-key: give both (the certificate the pair shares and its key), or neither");
        }

        if (TlsCertificate is null && Backups.FirstOrDefault(b => !IPAddress.IsLoopback(b.Address)) is { } open)
        {
            errors.Add($"remus.backup: {open} is not a loopback address, and the link would carry every write and the power to take over unauthenticated; set remus.tls-certificate and remus.tls-key (see docs/security.md)");
        }

        if (ReleaseCommand is not null && string.IsNullOrWhiteSpace(ReleaseCommand))
        {
            errors.Add("remus.release-command: must be a command or left out");
        }

        if (TakeoverCommand is not null && string.IsNullOrWhiteSpace(TakeoverCommand))
        {
            errors.Add("remus.takeover-command: must be a command or left out");
        }

        return errors;
    }
}

/// <summary>What a Remus primary does when its replica fails (remus.on-replica-failure).</summary>
public enum ReplicaFailureAction
{
    /// <summary>Rebuild the replica on this host from the newest checkpoint and the log; clients wait meanwhile.</summary>
    Rebuild,

    /// <summary>Hand the service to the backup, whose replica is at most an apply interval behind; clients reconnect there.</summary>
    Failover,
}
