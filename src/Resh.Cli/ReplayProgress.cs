using Resh.Group;

namespace Resh.Cli;

/// <summary>
/// How far the replicas are in replaying the log they started behind (a restart from an older checkpoint, a long
/// durable log): the position that f + 1 active replicas have reached, so a crashed or lagging one does not hold the
/// bar back once the group can answer from the log's head.
/// </summary>
internal static class ReplayProgress
{
    /// <summary>Shorter replays are not worth a bar (they take well under a second).</summary>
    public const long Threshold = 10_000;

    /// <summary>The position the (f + 1)-th furthest active replica applied, or -1 when fewer are running.</summary>
    public static long Reached(GroupStatus status)
    {
        ArgumentNullException.ThrowIfNull(status);
        var positions = status.Replicas.Where(r => r.Role == "active").Select(r => r.Applied).OrderDescending().ToList();
        return positions.Count > status.Faults ? positions[status.Faults] : -1;
    }

    /// <summary>Entries replayed of those between <paramref name="from"/> and <paramref name="target"/>.</summary>
    public static (long Done, long Total) Of(GroupStatus status, long from, long target) =>
        (Math.Clamp(Reached(status) - from, 0, Math.Max(0, target - from)), Math.Max(0, target - from));

    /// <summary>
    /// Draws the replay on the terminal (stderr, only when it is one) while the group is more than
    /// <see cref="Threshold"/> entries behind the head it started with; returns when it caught up or is stopped.
    /// </summary>
    public static async Task ShowAsync(Func<GroupStatus> status, CancellationToken ct)
    {
        var first = status();
        var from = Math.Max(first.LogFirst - 1, Reached(first));
        var target = first.Head;
        if (target - from < Threshold)
        {
            return;
        }

        await TerminalProgress.WatchAsync("replaying the log", () => Of(status(), from, target), ct);
    }
}
