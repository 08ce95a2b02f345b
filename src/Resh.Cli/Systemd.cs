using Microsoft.Extensions.Hosting.Systemd;

namespace Resh.Cli;

/// <summary>
/// Tells systemd (a unit with <c>Type=notify</c>) when the gateway serves and when it begins to stop, through the
/// notification socket systemd names in <c>NOTIFY_SOCKET</c>; nothing when resh does not run under systemd. Readiness,
/// reloads (SIGHUP) and stopping are sent: a stop drains the clients (<c>drain-timeout</c>) before the replicas stop.
/// </summary>
internal static class Systemd
{
    private static readonly SystemdNotifier Notifier = new();

    /// <summary>READY=1, with the serving line (after a reload: its outcome) as the unit's status (systemctl status shows it).</summary>
    public static void Ready(string status)
    {
        if (Notifier.IsEnabled)
        {
            Notifier.Notify(new ServiceState($"READY=1\nSTATUS={status.ReplaceLineEndings(" ")}"));
        }
    }

    /// <summary>RELOADING=1 (with the monotonic time systemd asks of a notify-reload unit): a reload began.</summary>
    public static void Reloading()
    {
        if (Notifier.IsEnabled)
        {
            var now = (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000.0 / System.Diagnostics.Stopwatch.Frequency));
            Notifier.Notify(new ServiceState($"RELOADING=1\nMONOTONIC_USEC={now}"));
        }
    }

    /// <summary>STOPPING=1: the controlled stop began (drain, final checkpoint, replicas).</summary>
    public static void Stopping()
    {
        if (Notifier.IsEnabled)
        {
            Notifier.Notify(ServiceState.Stopping);
        }
    }
}
