using System.Text;
using System.Text.Json;

namespace Resh.Protocols.Resp;

/// <summary>
/// The configuration that CONFIG SET gave the replicas, by place in the log: a checkpoint holds the service's files
/// (dump.rdb), not its configuration, so the configuration as of a checkpoint is stored in the checkpoint's labels
/// and sent to a replica restored from it before it replays the log after it. Seen by the order observer in log
/// order (on every gateway alike, and again for a log recovered from disk or etcd); seeded from the checkpoint a
/// gateway continues from. CONFIG SET is rare: every change is kept.
/// </summary>
internal sealed class RespConfigHistory
{
    public const string Label = "resh.service-config";

    private readonly Lock _lock = new();
    private readonly List<(long Sequence, string Name, string Value)> _changes = [];

    /// <summary>Records the CONFIG SETs of a request (alone or in a MULTI block) at <paramref name="sequence"/>.</summary>
    public void Observe(long sequence, ReadOnlySpan<byte> payload)
    {
        if (sequence < 0 || !MayHoldConfigSet(payload))
        {
            return;
        }

        foreach (var args in RespKeySpecs.Commands(payload))
        {
            if (args.Length >= 4 && args.Length % 2 == 0 && Ascii.EqualsIgnoreCase(args[0], "CONFIG"u8) && Ascii.EqualsIgnoreCase(args[1], "SET"u8))
            {
                lock (_lock)
                {
                    for (var i = 2; i + 1 < args.Length; i += 2)
                    {
                        _changes.Add((sequence, Encoding.UTF8.GetString(args[i]).ToLowerInvariant(), Encoding.UTF8.GetString(args[i + 1])));
                    }
                }
            }
        }
    }

    /// <summary>The configuration as of <paramref name="sequence"/> (later changes left out), as checkpoint labels; null when none was set.</summary>
    public IReadOnlyDictionary<string, string>? LabelsAt(long sequence)
    {
        var state = new SortedDictionary<string, string>(StringComparer.Ordinal);
        lock (_lock)
        {
            foreach (var (at, name, value) in _changes.OrderBy(c => c.Sequence))
            {
                if (at <= sequence)
                {
                    state[name] = value;
                }
            }
        }

        return state.Count == 0 ? null : new Dictionary<string, string> { [Label] = JsonSerializer.Serialize(state) };
    }

    /// <summary>Seeds the history with the configuration stored with the checkpoint at <paramref name="sequence"/>.</summary>
    public void Seed(long sequence, IReadOnlyDictionary<string, string> labels)
    {
        var state = Parse(labels);
        lock (_lock)
        {
            foreach (var (name, value) in state)
            {
                _changes.Add((sequence, name, value));
            }
        }
    }

    /// <summary>CONFIG SET requests that give a restored replica the configuration stored in <paramref name="labels"/>.</summary>
    public static IReadOnlyList<byte[]> Requests(IReadOnlyDictionary<string, string> labels) =>
        [.. Parse(labels).Select(p => RespEncoding.Command("CONFIG", "SET", p.Key, p.Value))];

    private static SortedDictionary<string, string> Parse(IReadOnlyDictionary<string, string> labels)
    {
        if (!labels.TryGetValue(Label, out var json))
        {
            return [];
        }

        try
        {
            return JsonSerializer.Deserialize<SortedDictionary<string, string>>(json) ?? [];
        }
        catch (JsonException)
        {
            // A damaged label: the replica starts with its command line's configuration, as before this label existed.
            return [];
        }
    }

    /// <summary>A cheap look at the first command: CONFIG, or MULTI (a block may hold one); anything else is skipped.</summary>
    private static bool MayHoldConfigSet(ReadOnlySpan<byte> payload)
    {
        var first = payload.IndexOf("\r\n"u8);
        if (first < 0 || payload.Length < first + 2 + 4 + 6)
        {
            return false;
        }

        var rest = payload[(first + 2)..];
        return (rest.StartsWith("$6\r\n"u8) && Ascii.EqualsIgnoreCase(rest.Slice(4, 6), "CONFIG"u8))
            || (rest.StartsWith("$5\r\n"u8) && Ascii.EqualsIgnoreCase(rest.Slice(4, 5), "MULTI"u8));
    }
}
