using System.Text;
using System.Text.Json;

namespace Resh.Protocols.Resp;

/// <summary>
/// The CONFIG SETs the replicas ran, by place in the log: a checkpoint holds the service's files (dump.rdb), not its
/// configuration, so the CONFIG SETs up to a checkpoint's place are stored in its labels and sent, whole and in log
/// order, to a replica restored from it before it replays the log after it. Whole commands, not a folded table: one
/// that the replicas refused (Redis 7 refuses a multi-parameter CONFIG SET as a whole) is refused again alike, and
/// aliases apply in the order they were set. Seen by the order observer in log order (on every gateway alike, again
/// for a log recovered from disk or etcd; a transaction aborted by WATCH is not seen), and seeded from the
/// checkpoint a gateway continues from. CONFIG SET is rare; at most <see cref="MaxCommands"/> are kept.
/// </summary>
internal sealed class RespConfigHistory
{
    public const string Label = "resh.service-config";

    /// <summary>The most CONFIG SETs kept; beyond it the oldest are dropped (and a restored replica misses them).</summary>
    public const int MaxCommands = 10_000;

    private readonly Lock _lock = new();
    private readonly List<(long Sequence, string[] Pairs)> _commands = [];

    /// <summary>Records the CONFIG SETs of a request (alone or in a MULTI block) at <paramref name="sequence"/>.</summary>
    public void Observe(long sequence, ReadOnlySpan<byte> payload)
    {
        if (sequence < 0 || !(RespKeySpecs.FirstCommandIs(payload, "CONFIG"u8) || RespKeySpecs.FirstCommandIs(payload, "MULTI"u8)))
        {
            return;
        }

        foreach (var args in RespKeySpecs.Commands(payload))
        {
            if (args.Length >= 4 && Ascii.EqualsIgnoreCase(args[0], "CONFIG"u8) && Ascii.EqualsIgnoreCase(args[1], "SET"u8))
            {
                lock (_lock)
                {
                    _commands.Add((sequence, [.. args.Skip(2).Select(a => Encoding.UTF8.GetString(a))]));
                    if (_commands.Count > MaxCommands)
                    {
                        _commands.RemoveAt(0);
                    }
                }
            }
        }
    }

    /// <summary>The CONFIG SETs up to <paramref name="sequence"/>, as checkpoint labels; null when there were none.</summary>
    public IReadOnlyDictionary<string, string>? LabelsAt(long sequence)
    {
        List<string[]> commands;
        lock (_lock)
        {
            commands = [.. _commands.Where(c => c.Sequence <= sequence).OrderBy(c => c.Sequence).Select(c => c.Pairs)];
        }

        return commands.Count == 0 ? null : new Dictionary<string, string> { [Label] = JsonSerializer.Serialize(commands) };
    }

    /// <summary>Seeds the history with the CONFIG SETs stored with the checkpoint at <paramref name="sequence"/>.</summary>
    public void Seed(long sequence, IReadOnlyDictionary<string, string> labels)
    {
        var commands = Parse(labels);
        lock (_lock)
        {
            _commands.InsertRange(0, commands.Select(c => (sequence, c)));
        }
    }

    /// <summary>The CONFIG SET requests that give a restored replica the configuration stored in <paramref name="labels"/>.</summary>
    public static IReadOnlyList<byte[]> Requests(IReadOnlyDictionary<string, string> labels) =>
        [.. Parse(labels).Select(c => RespEncoding.Command(["CONFIG", "SET", .. c]))];

    private static List<string[]> Parse(IReadOnlyDictionary<string, string> labels)
    {
        if (!labels.TryGetValue(Label, out var json))
        {
            return [];
        }

        try
        {
            return JsonSerializer.Deserialize<List<string[]>>(json) ?? [];
        }
        catch (JsonException)
        {
            // A damaged label: the replica starts with its command line's configuration, as before this label existed.
            return [];
        }
    }
}
