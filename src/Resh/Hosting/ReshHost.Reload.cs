using Microsoft.Extensions.Logging;
using Resh.Group;

namespace Resh.Hosting;

/// <summary>
/// What a reload did: the keys whose new values the running gateway took, the changed keys that only a restart
/// applies (left as they run), and, when the new configuration was not valid, its problems (then nothing changed).
/// </summary>
public sealed record ReloadOutcome(IReadOnlyList<string> Applied, IReadOnlyList<string> NeedRestart, IReadOnlyList<string> Errors)
{
    public static ReloadOutcome Refused(IReadOnlyList<string> errors) => new([], [], errors);

    /// <summary>One line for a log or a terminal.</summary>
    public override string ToString() =>
        Errors.Count > 0 ? $"reload refused, nothing changed: {string.Join("; ", Errors)}"
        : Applied.Count == 0 && NeedRestart.Count == 0 ? "reloaded: no setting changed"
        : $"reloaded: {(Applied.Count > 0 ? "applied " + string.Join(", ", Applied) : "nothing applied")}"
            + (NeedRestart.Count > 0 ? $"; changed but kept until a restart: {string.Join(", ", NeedRestart)}" : "");
}

/// <summary>
/// A reload (SIGHUP, <c>systemctl reload</c>, <c>resh reload</c>): the host's owner reads the configuration again,
/// names the keys that changed, and the host takes the new values of those in <see cref="ReloadableKeys"/>. Each is
/// read where it is used, so it holds from the next use on: the client limits for the next request, accept or
/// check; the admin token for the next POST; the group's timeouts at the monitor's next tick; the checkpoint schedule
/// and retention at the next decision. Everything else (addresses, replicas, the mode, the protocol and its limits,
/// the ordering) shapes objects built at start, and is reported as needing a restart rather than half applied.
/// </summary>
public sealed partial class ReshHost
{
    /// <summary>The configuration keys a reload applies; a changed key under one of these counts as it.</summary>
    public static IReadOnlyList<string> ReloadableKeys { get; } =
    [
        "service.max-clients", "service.idle-timeout", "service.max-pending", "service.max-pending-bytes", "service.write-timeout",
        "service.limits.memory", "admin-token", "reply-timeout", "max-lag", "slow-delay", "drain-timeout",
        "checkpoint.interval", "checkpoint.min-interval", "checkpoint.max-log-bytes", "checkpoint.flush-timeout", "checkpoint.retention",
    ];

    /// <summary>Set by the host's owner when it can read the configuration again: what POST /reload runs.</summary>
    public Func<CancellationToken, Task<ReloadOutcome>>? Reloader { get; set; }

    Task<ReloadOutcome> Admin.IAdminTarget.ReloadAsync(CancellationToken cancellationToken) =>
        Reloader?.Invoke(cancellationToken) ?? throw new InvalidOperationException("this gateway was not started from a configuration file; there is nothing to reload");

    /// <summary>True when <paramref name="key"/> (a full path such as "checkpoint.retention.keep-last") is applied by a reload.</summary>
    public static bool IsReloadable(string key) =>
        ReloadableKeys.Any(k => key == k || key.StartsWith(k + ".", StringComparison.Ordinal));

    /// <summary>
    /// Takes from <paramref name="next"/> (a valid configuration) the values of the <paramref name="changed"/> keys
    /// that <see cref="IsReloadable"/>; returns which were applied and which wait for a restart.
    /// </summary>
    public ReloadOutcome Reload(ReshOptions next, IReadOnlyCollection<string> changed)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(changed);
        if (next.Validate() is { Count: > 0 } errors)
        {
            return RefuseReload(errors);
        }

        // Checkpoints turned on or off change what the group was built with.
        var checkpointsKept = (_options.Group.Checkpoint is null) == (next.Group.Checkpoint is null);
        var applied = changed.Where(k => IsReloadable(k) && (checkpointsKept || !k.StartsWith("checkpoint.", StringComparison.Ordinal))).Order(StringComparer.Ordinal).ToList();
        var restart = changed.Except(applied).Order(StringComparer.Ordinal).ToList();
        if (applied.Count > 0)
        {
            Apply(next, checkpointsKept);
        }

        var outcome = new ReloadOutcome(applied, restart, []);
        HostLog.Reloaded(_logger, outcome.ToString());
        Events.Record("+reload", null, outcome.ToString());
        return outcome;
    }

    /// <summary>A reload whose configuration could not be read or is not valid: logged and journaled; nothing changes.</summary>
    public ReloadOutcome RefuseReload(IReadOnlyList<string> errors)
    {
        var outcome = ReloadOutcome.Refused(errors);
        HostLog.ReloadRefused(_logger, outcome.ToString());
        Events.Record("+reload-refused", null, outcome.ToString());
        return outcome;
    }

    /// <summary>Copies every reloadable value (those unchanged are equal): plain fields in place, the checkpoint settings as a new object.</summary>
    private void Apply(ReshOptions next, bool checkpoints)
    {
        var (gateway, to) = (next.Gateway, _options.Gateway);
        to.MaxClients = gateway.MaxClients;
        to.IdleTimeout = gateway.IdleTimeout;
        to.MaxPendingPerSession = gateway.MaxPendingPerSession;
        to.MaxPendingBytes = gateway.MaxPendingBytes;
        to.WriteTimeout = gateway.WriteTimeout;
        to.MemoryLimit = gateway.MemoryLimit;
        _gateway?.LimitsChanged();
        _options.AdminToken = next.AdminToken;
        _options.DrainTimeout = next.DrainTimeout;
        _options.Group.ReplyTimeout = next.Group.ReplyTimeout;
        _options.Group.MaxLag = next.Group.MaxLag;
        _options.Group.SlowDelay = next.Group.SlowDelay;
        if (checkpoints && _options.Group.Checkpoint is { } running && next.Group.Checkpoint is { } read)
        {
            // The group reads the whole object at each use; a new one is never seen half written.
            _options.Group.Checkpoint = running.WithSchedule(read);
        }
    }
}
