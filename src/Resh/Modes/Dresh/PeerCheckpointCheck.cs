using System.Globalization;

namespace Resh.Dresh;

/// <summary>
/// Whether a checkpoint fetched from a peer may be used. Every host records in etcd the digest its replicas agreed on for
/// each checkpoint it stores, at the checkpoint's log position (all hosts checkpoint at the same positions of the shared
/// log). The fetched checkpoint's digest label must be what the hosts recorded there: the digest of more records than any
/// other (so a peer alone cannot outvote another host, and when no other host recorded one, the peer's own record is all
/// there is). Where checkpoints are voted on their files (<c>digest: rdb</c>, or the files' SHA-256), the fetching host
/// digests the files itself and they must match the label too, so a peer can neither relabel nor alter what it sends;
/// with a digest command (DEBUG DIGEST) only the label is checked here, and the files by the replicas once restored.
/// </summary>
internal static class PeerCheckpointCheck
{
    /// <summary>Null when the checkpoint may be used, else why not. <paramref name="backers"/>: the members whose record matches.</summary>
    public static string? Problem(string? labelled, string? computed, IReadOnlyDictionary<int, string> recorded, out IReadOnlyList<int> backers)
    {
        backers = [.. recorded.Where(r => r.Value == labelled).Select(r => r.Key).Order()];
        if (labelled is null)
        {
            return "its checkpoint carries no digest (label resh.digest), so it cannot be checked against the other hosts'";
        }

        if (computed is not null && computed != labelled)
        {
            return $"its files digest as {computed}, not as its label says ({labelled})";
        }

        if (recorded.Count == 0)
        {
            return "no host recorded a digest in etcd for that position";
        }

        var differ = recorded.Where(r => r.Value != labelled).Select(r => r.Key.ToString(CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal).ToList();
        if (differ.Count >= backers.Count)
        {
            return $"the hosts' records in etcd do not back it: {backers.Count} match its digest, {differ.Count} differ (members {string.Join(", ", differ)})";
        }

        return null;
    }
}
