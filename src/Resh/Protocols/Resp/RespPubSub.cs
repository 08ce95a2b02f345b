using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>The three namespaces of Redis pub/sub.</summary>
internal enum SubscriptionKind
{
    Channel,
    Pattern,
    Shard,
}

/// <summary>
/// Pub/sub owned by the gateway. Replicas would each deliver a message (and to nobody: no client of theirs
/// subscribes), so subscriptions live here. A SUBSCRIBE is an ordered marker and takes effect at its place in the log;
/// a PUBLISH is an ordered request (the replicas answer 0) that the order observer delivers to this gateway's
/// subscribers at its place in the log. Each subscriber gets each message once, in log order, whichever session or
/// gateway published it; with D-RESH every gateway delivers to its own subscribers in the same order.
/// </summary>
internal sealed class RespPubSub
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Subscriber> _sessions = [];
    private readonly Dictionary<string, HashSet<long>>[] _names = [new(StringComparer.Ordinal), new(StringComparer.Ordinal), new(StringComparer.Ordinal)];
    private int _subscriptions;

    /// <summary>Whether any session of this gateway subscribes to anything (the observer's fast path).</summary>
    public bool Any => Volatile.Read(ref _subscriptions) > 0;

    /// <summary>A session of this gateway, reachable for messages.</summary>
    public void Register(long sessionId, IClientLink sink, Func<bool> resp3)
    {
        lock (_lock)
        {
            _sessions[sessionId] = new Subscriber(sink, resp3);
        }
    }

    /// <summary>Ends every subscription of the session (RESET), which stays reachable.</summary>
    public void Unsubscribe(long sessionId)
    {
        lock (_lock)
        {
            if (_sessions.TryGetValue(sessionId, out var subscriber))
            {
                foreach (var (kind, name) in subscriber.Names)
                {
                    Remove(kind, name, sessionId);
                }

                subscriber.Names.Clear();
            }
        }
    }

    public void Unregister(long sessionId)
    {
        lock (_lock)
        {
            if (!_sessions.Remove(sessionId, out var subscriber))
            {
                return;
            }

            foreach (var (kind, name) in subscriber.Names)
            {
                Remove(kind, name, sessionId);
            }
        }
    }

    /// <summary>At the marker's place in the log: the session (if it is one of this gateway's) subscribes or unsubscribes.</summary>
    public void Change(long sessionId, SubscriptionKind kind, bool subscribe, IReadOnlyList<byte[]> names)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(sessionId, out var subscriber))
            {
                return;
            }

            var targets = names.Count == 0 && !subscribe
                ? [.. subscriber.Names.Where(n => n.Kind == kind).Select(n => n.Name)]
                : names.Select(n => Encoding.Latin1.GetString(n)).ToList();
            foreach (var name in targets)
            {
                if (subscribe && subscriber.Names.Add((kind, name)))
                {
                    if (!_names[(int)kind].TryGetValue(name, out var set))
                    {
                        _names[(int)kind][name] = set = [];
                    }

                    set.Add(sessionId);
                    _subscriptions++;
                }
                else if (!subscribe && subscriber.Names.Remove((kind, name)))
                {
                    Remove(kind, name, sessionId);
                }
            }
        }
    }

    /// <summary>At the PUBLISH's place in the log: the message to every subscriber of this gateway.</summary>
    public void Publish(bool shard, byte[] channel, byte[] message)
    {
        var name = Encoding.Latin1.GetString(channel);
        lock (_lock)
        {
            if (_names[shard ? 2 : 0].TryGetValue(name, out var sessions))
            {
                foreach (var session in sessions)
                {
                    Send(session, shard ? "smessage"u8 : "message"u8, null, channel, message);
                }
            }

            if (shard)
            {
                return;
            }

            foreach (var (pattern, subscribers) in _names[1])
            {
                if (RespGlob.Matches(Encoding.Latin1.GetBytes(pattern), channel))
                {
                    foreach (var session in subscribers)
                    {
                        Send(session, "pmessage"u8, Encoding.Latin1.GetBytes(pattern), channel, message);
                    }
                }
            }
        }
    }

    /// <summary>How many of this gateway's subscriptions a message on <paramref name="channel"/> reaches (PUBLISH's reply).</summary>
    public long Receivers(bool shard, ReadOnlySpan<byte> channel)
    {
        var name = Encoding.Latin1.GetString(channel);
        lock (_lock)
        {
            long count = _names[shard ? 2 : 0].TryGetValue(name, out var sessions) ? sessions.Count : 0;
            if (!shard)
            {
                foreach (var (pattern, subscribers) in _names[1])
                {
                    if (RespGlob.Matches(Encoding.Latin1.GetBytes(pattern), channel))
                    {
                        count += subscribers.Count;
                    }
                }
            }

            return count;
        }
    }

    /// <summary>PUBSUB CHANNELS / SHARDCHANNELS: the active names matching <paramref name="pattern"/>.</summary>
    public List<byte[]> Names(SubscriptionKind kind, byte[]? pattern)
    {
        lock (_lock)
        {
            return [.. _names[(int)kind].Keys.Select(n => Encoding.Latin1.GetBytes(n)).Where(n => pattern is null || RespGlob.Matches(pattern, n)).OrderBy(n => n, ByteComparer.Instance)];
        }
    }

    /// <summary>PUBSUB NUMSUB / SHARDNUMSUB for one name; PUBSUB NUMPAT (kind Pattern, null name): the number of patterns.</summary>
    public long Count(SubscriptionKind kind, byte[]? name)
    {
        lock (_lock)
        {
            return name is null ? _names[(int)kind].Count : _names[(int)kind].TryGetValue(Encoding.Latin1.GetString(name), out var set) ? set.Count : 0;
        }
    }

    private void Remove(SubscriptionKind kind, string name, long sessionId)
    {
        if (_names[(int)kind].TryGetValue(name, out var set) && set.Remove(sessionId))
        {
            _subscriptions--;
            if (set.Count == 0)
            {
                _names[(int)kind].Remove(name);
            }
        }
    }

    private void Send(long sessionId, ReadOnlySpan<byte> type, byte[]? pattern, byte[] channel, byte[] message)
    {
        if (!_sessions.TryGetValue(sessionId, out var subscriber))
        {
            return;
        }

        var output = new ArrayBufferWriter<byte>(channel.Length + message.Length + 64);
        RespEncoding.WriteLine(output, subscriber.Resp3() ? (byte)'>' : (byte)'*', pattern is null ? 3 : 4);
        RespEncoding.WriteBulk(output, type);
        if (pattern is not null)
        {
            RespEncoding.WriteBulk(output, pattern);
        }

        RespEncoding.WriteBulk(output, channel);
        RespEncoding.WriteBulk(output, message);

        // A subscriber too slow to read is closed by its connection (as Redis's pubsub output buffer limit does).
        subscriber.Sink.TryPush(output.WrittenMemory);
    }

    private sealed class Subscriber(IClientLink sink, Func<bool> resp3)
    {
        public IClientLink Sink { get; } = sink;

        public Func<bool> Resp3 { get; } = resp3;

        public HashSet<(SubscriptionKind Kind, string Name)> Names { get; } = [];
    }

    private sealed class ByteComparer : IComparer<byte[]>
    {
        public static readonly ByteComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
