using System.Text.Json;
using System.Text.Json.Serialization;

namespace Resh.Dresh;

/// <summary>
/// Where in etcd's log a checkpoint stands, and the sequencer's state there, so that a gateway that restores the
/// checkpoint goes on exactly after it: the revision to watch from (the checkpoint's batch, or an earlier batch
/// that was still waiting for its predecessor), the batch and how many of its entries the checkpoint covers,
/// every run's next batch number, the open sessions, the highest session id per member, the runs that left and
/// the members alive. Stored as the label <see cref="Label"/> of the checkpoint.
/// </summary>
public sealed class EtcdCursor
{
    public const string Label = "resh.etcd.cursor";

    [JsonPropertyName("cluster")]
    public string Cluster { get; init; } = "";

    /// <summary>The revision to watch from.</summary>
    [JsonPropertyName("revision")]
    public long Revision { get; init; }

    /// <summary>The run whose batch holds the checkpoint entry, the batch's number, and its entries up to and with the checkpoint.</summary>
    [JsonPropertyName("run")]
    public string Run { get; init; } = "";

    [JsonPropertyName("number")]
    public long Number { get; init; }

    [JsonPropertyName("skip")]
    public int Skip { get; init; }

    [JsonPropertyName("next")]
    public Dictionary<string, long> Next { get; init; } = [];

    [JsonPropertyName("open")]
    public Dictionary<long, string> Open { get; init; } = [];

    [JsonPropertyName("last")]
    public Dictionary<int, long> Last { get; init; } = [];

    [JsonPropertyName("closed")]
    public List<string> Closed { get; init; } = [];

    [JsonPropertyName("members")]
    public Dictionary<string, MemberInfo> Members { get; init; } = [];

    public string ToJson() => JsonSerializer.Serialize(this, EtcdJson.Default.EtcdCursor);

    /// <summary>Reads a cursor label; a damaged one is an error that names the label.</summary>
    public static EtcdCursor Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, EtcdJson.Default.EtcdCursor) ?? throw new InvalidDataException($"the checkpoint label {Label} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"the checkpoint label {Label} is damaged: {e.Message}", e);
        }
    }
}

public sealed partial class EtcdSequencer
{
    private readonly SortedDictionary<long, EtcdCursor> _cursors = [];
    private EtcdCursor? _resume;

    /// <summary>
    /// The cursor of the checkpoint entry at <paramref name="sequence"/> (as a label value), or null when that
    /// entry did not come through this sequencer; forgets it and every older one.
    /// </summary>
    public string? CursorFor(long sequence)
    {
        lock (_lock)
        {
            _cursors.TryGetValue(sequence, out var cursor);
            foreach (var older in _cursors.Keys.Where(s => s <= sequence).ToList())
            {
                _cursors.Remove(older);
            }

            return cursor?.ToJson();
        }
    }

    private void RememberCursor(long sequence, string run, long number, int skip, long revision)
    {
        var from = revision;
        foreach (var waiting in _runs.Values.SelectMany(r => r.Waiting.Values))
        {
            from = Math.Min(from, waiting.Revision);
        }

        lock (_lock)
        {
            _cursors[sequence] = new EtcdCursor
            {
                Cluster = _options.Cluster,
                Revision = from,
                Run = run,
                Number = number,
                Skip = skip,
                Next = _runs.ToDictionary(r => r.Key, r => r.Value.Next, StringComparer.Ordinal),
                Open = new Dictionary<long, string>(_openSessions),
                Last = new Dictionary<int, long>(_lastSessions),
                Closed = [.. _closedRuns],
                Members = _members.ToDictionary(m => m.Key, m => m.Value.Info, StringComparer.Ordinal),
            };

            // Checkpoints that failed leave their cursors behind; a few are enough.
            while (_cursors.Count > 16)
            {
                _cursors.Remove(_cursors.Keys.First());
            }
        }
    }

    private void Restore(EtcdCursor cursor)
    {
        if (cursor.Cluster != _options.Cluster)
        {
            throw new InvalidDataException($"the checkpoint belongs to etcd cluster '{cursor.Cluster}', not '{_options.Cluster}' (ordering.cluster); restore it with the configuration it was taken with, or start from an empty state directory");
        }

        _appliedRevision = cursor.Revision - 1;
        foreach (var (run, next) in cursor.Next)
        {
            _runs[run] = new Run { Next = next };
        }

        foreach (var (session, run) in cursor.Open)
        {
            _openSessions[session] = run;
        }

        foreach (var (member, last) in cursor.Last)
        {
            _lastSessions[member] = last;
        }

        _ownLastSession = cursor.Last.GetValueOrDefault(_options.Member);

        _closedRuns.UnionWith(cursor.Closed);
        foreach (var (run, info) in cursor.Members)
        {
            _members[run] = new Peer(info);
        }

        _resume = cursor;
    }
}
