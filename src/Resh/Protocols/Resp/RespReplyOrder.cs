using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Replies whose element order is not part of their meaning. Redis seeds its hash tables randomly in
/// every process, so two correct replicas return the members of a large set (or the fields of a large
/// hash, or the command table) in different orders. Those requests carry a reply hint, and the voter
/// compares the reply with its top-level elements (or field/value pairs) sorted.
/// </summary>
public static class RespReplyOrder
{
    /// <summary>Compare byte for byte.</summary>
    public const int Ordered = 0;

    /// <summary>A collection whose elements may come in any order (SMEMBERS, KEYS, HKEYS, ...).</summary>
    public const int UnorderedElements = 1;

    /// <summary>A flat list (or RESP3 map) of key/value pairs in any order (HGETALL).</summary>
    public const int UnorderedPairs = 2;

    /// <summary>
    /// Nested collections in any order at every depth (COMMAND, COMMAND DOCS: the command table and each
    /// command's subcommand table are hash tables). Every aggregate is compared sorted, a weaker check that
    /// is kept to these read-only introspection commands.
    /// </summary>
    public const int UnorderedDeep = 3;

    /// <summary>
    /// Reports of one replica's runtime (INFO, OBJECT IDLETIME/FREQ, MEMORY USAGE): correct replicas differ, so every
    /// reply counts as equal; the request is still ordered, and the client receives one replica's reply.
    /// </summary>
    public const int Unvoted = 4;

    /// <summary>CONFIG GET: pairs in any order; the values that differ per replica (port, dir, pidfile, ...) are left out of the vote.</summary>
    public const int ConfigPairs = 5;

    /// <summary>
    /// An EXEC reply some of whose elements answer a hinted command (SMEMBERS inside MULTI): every aggregate element
    /// is compared with its elements sorted, a weaker check for the ordered ones that never splits a correct vote.
    /// </summary>
    public const int ExecElements = 6;

    /// <summary>
    /// XINFO CONSUMERS and XINFO STREAM FULL: the integer after "idle", "seen-time", "active-time" or "inactive" (when a
    /// replica last saw a consumer, by its own clock) is left out of the vote; the client receives one replica's reply.
    /// </summary>
    public const int StreamTimes = 7;

    /// <summary>
    /// A state read (DUMP and PEXPIRETIME of keys, for bringing a replica up to date by state): each DUMP is compared by
    /// its content, not its bytes, since equal data may be encoded differently in two correct replicas.
    /// </summary>
    public const int StateDump = 8;

    private static readonly byte[][] ReplicaTimes = ["$4\r\nidle\r\n"u8.ToArray(), "$9\r\nseen-time\r\n"u8.ToArray(), "$11\r\nactive-time\r\n"u8.ToArray(), "$8\r\ninactive\r\n"u8.ToArray()];

    /// <summary>Configuration parameters whose values differ between correct replicas (their own files and addresses).</summary>
    internal static readonly HashSet<string> PerReplicaConfig = new(StringComparer.OrdinalIgnoreCase)
    {
        "port", "tls-port", "bind", "dir", "dbfilename", "pidfile", "logfile", "unixsocket", "unixsocketperm",
        "appendfilename", "appenddirname", "syslog-ident", "cluster-config-file", "bind-source-addr", "oom-score-adj-values",
    };

    private static readonly byte[] UnvotedForm = "+resh-unvoted\r\n"u8.ToArray();

    private static readonly Dictionary<string, int> Commands = new(StringComparer.OrdinalIgnoreCase)
    {
        ["KEYS"] = UnorderedElements,
        ["SMEMBERS"] = UnorderedElements,
        ["SINTER"] = UnorderedElements,
        ["SUNION"] = UnorderedElements,
        ["SDIFF"] = UnorderedElements,
        ["HKEYS"] = UnorderedElements,
        ["HVALS"] = UnorderedElements,
        ["HGETALL"] = UnorderedPairs,
    };

    /// <summary>The hint for a request, from its command name, first argument and argument count.</summary>
    internal static int Of(RespCommandKind kind, ReadOnlySpan<byte> name, ReadOnlySpan<byte> subcommand, int argc)
    {
        if (kind != RespCommandKind.Other || name.Length is < 4 or > 8)
        {
            return Ordered;
        }

        Span<char> upper = stackalloc char[name.Length];
        if (Ascii.ToUpper(name, upper, out _) != OperationStatus.Done)
        {
            return Ordered;
        }

        if (upper.SequenceEqual("COMMAND"))
        {
            // COMMAND, COMMAND LIST, COMMAND INFO (no names) and COMMAND DOCS (no names) walk the command table.
            if (argc == 2 && Ascii.EqualsIgnoreCase(subcommand, "LIST"u8))
            {
                return UnorderedElements;
            }

            return argc == 1 || Ascii.EqualsIgnoreCase(subcommand, "INFO"u8) || Ascii.EqualsIgnoreCase(subcommand, "DOCS"u8) ? UnorderedDeep : Ordered;
        }

        return Commands.GetValueOrDefault(new string(upper), Ordered);
    }

    /// <summary>
    /// Writes <paramref name="reply"/> with its top-level elements (or pairs) sorted byte-wise. Returns false,
    /// writing nothing, when the reply is not an aggregate with at least two units.
    /// </summary>
    public static bool TrySortAggregate(ReadOnlySpan<byte> reply, int hint, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        switch (hint)
        {
            case Unvoted:
                output.Write(UnvotedForm);
                return true;
            case ConfigPairs:
                return TryNormalizeConfig(reply, output);
            case ExecElements:
                return TryNormalizeExec(reply, output);
            case StreamTimes:
                return TryMaskTimes(reply, output);
        }

        if (hint == UnorderedDeep)
        {
            var deep = SortDeep(reply, out var consumed);
            if (deep is null)
            {
                return false;
            }

            output.Write(deep);
            output.Write(reply[consumed..]);
            return true;
        }

        if (reply.Length < 4 || reply[0] is not ((byte)'*' or (byte)'~' or (byte)'%'))
        {
            return false;
        }

        var headerEnd = reply.IndexOf("\r\n"u8);
        if (headerEnd < 2 || !int.TryParse(reply[1..headerEnd], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count))
        {
            return false;
        }

        var pairs = hint == UnorderedPairs || reply[0] == (byte)'%';
        var elements = reply[0] == (byte)'%' ? count * 2 : count;
        var unit = pairs ? 2 : 1;
        if (elements < 2 * unit || elements % unit != 0)
        {
            return false;
        }

        // Element boundaries, found with the reply framer on a copy (this path only runs for hinted replies).
        var body = new ReadOnlySequence<byte>(reply[(headerEnd + 2)..].ToArray());
        var framer = new RespReplyFramer();
        var bounds = new (int Start, int Length)[elements / unit];
        var offset = 0;
        for (var i = 0; i < elements; i++)
        {
            if (framer.TryFrame(body.Slice(offset), out var end) != FrameStatus.Complete)
            {
                return false;
            }

            var length = (int)body.Slice(offset, end).Length;
            if (i % unit == 0)
            {
                bounds[i / unit] = (offset, length);
            }
            else
            {
                bounds[i / unit].Length += length;
            }

            offset += length;
        }

        var bytes = body.First;
        Array.Sort(bounds, (x, y) => bytes.Span.Slice(x.Start, x.Length).SequenceCompareTo(bytes.Span.Slice(y.Start, y.Length)));
        output.Write(reply[..(headerEnd + 2)]);
        foreach (var (start, length) in bounds)
        {
            output.Write(bytes.Span.Slice(start, length));
        }

        output.Write(reply[(headerEnd + 2 + offset)..]);
        return true;
    }

    private static bool TryNormalizeConfig(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        if (RespReplyReader.IsError(reply) || !RespReplyReader.TryReadStrings(reply, out var items) || items.Count % 2 != 0)
        {
            return false;
        }

        var pairs = new List<(byte[] Key, byte[] Value)>();
        for (var i = 0; i < items.Count; i += 2)
        {
            if (!PerReplicaConfig.Contains(Encoding.ASCII.GetString(items[i])))
            {
                pairs.Add((items[i], items[i + 1]));
            }
        }

        pairs.Sort((x, y) => x.Key.AsSpan().SequenceCompareTo(y.Key));
        RespEncoding.WriteArrayHeader(output, pairs.Count * 2);
        foreach (var (key, value) in pairs)
        {
            RespEncoding.WriteBulk(output, key);
            RespEncoding.WriteBulk(output, value);
        }

        return true;
    }

    private static bool TryMaskTimes(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        if (RespReplyReader.IsError(reply) || reply.IsEmpty || reply[0] is not ((byte)'*' or (byte)'%'))
        {
            return false;
        }

        // Walks the reply token by token (a header, a bulk string, an integer) and writes it with those integers zeroed.
        var masked = new ArrayBufferWriter<byte>(reply.Length);
        var maskNext = false;
        var at = 0;
        while (at < reply.Length)
        {
            var lineEnd = reply[at..].IndexOf("\r\n"u8);
            if (lineEnd < 1)
            {
                return false;
            }

            var end = at + lineEnd + 2;
            if (reply[at] == (byte)'$' && int.TryParse(reply[(at + 1)..(at + lineEnd)], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length))
            {
                end += length + 2;
            }

            if (end > reply.Length)
            {
                return false;
            }

            var token = reply[at..end];
            if (maskNext && token[0] == (byte)':')
            {
                masked.Write(":0\r\n"u8);
            }
            else
            {
                masked.Write(token);
            }

            maskNext = false;
            foreach (var name in ReplicaTimes)
            {
                maskNext |= token.SequenceEqual(name);
            }

            at = end;
        }

        output.Write(masked.WrittenSpan);
        return true;
    }

    private static bool TryNormalizeExec(ReadOnlySpan<byte> reply, IBufferWriter<byte> output)
    {
        if (reply.Length < 4 || reply[0] != (byte)'*')
        {
            return false;
        }

        var headerEnd = reply.IndexOf("\r\n"u8);
        if (headerEnd < 2 || !int.TryParse(reply[1..headerEnd], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count))
        {
            return false;
        }

        var body = new ReadOnlySequence<byte>(reply[(headerEnd + 2)..].ToArray());
        var framer = new RespReplyFramer();
        var normalized = new ArrayBufferWriter<byte>(reply.Length);
        normalized.Write(reply[..(headerEnd + 2)]);
        var offset = 0;
        for (var i = 0; i < count; i++)
        {
            if (framer.TryFrame(body.Slice(offset), out var end) != FrameStatus.Complete)
            {
                return false;
            }

            var element = body.Slice(offset, end).ToArray();
            if (!TrySortAggregate(element, UnorderedElements, normalized))
            {
                normalized.Write(element);
            }

            offset += element.Length;
        }

        normalized.Write(body.Slice(offset).ToArray());
        output.Write(normalized.WrittenSpan);
        return true;
    }

    /// <summary>The reply at the start of <paramref name="reply"/> with every aggregate sorted; null when it is not RESP.</summary>
    private static byte[]? SortDeep(ReadOnlySpan<byte> reply, out int consumed)
    {
        var sequence = new ReadOnlySequence<byte>(reply.ToArray());
        if (new RespReplyFramer().TryFrame(sequence, out var end) != FrameStatus.Complete)
        {
            consumed = 0;
            return null;
        }

        consumed = (int)sequence.Slice(0, end).Length;
        return SortDeep(reply[..consumed]);
    }

    private static byte[] SortDeep(ReadOnlySpan<byte> one)
    {
        var headerEnd = one.IndexOf("\r\n"u8);
        if (one[0] is not ((byte)'*' or (byte)'~' or (byte)'%' or (byte)'>') || headerEnd < 2
            || !int.TryParse(one[1..headerEnd], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count))
        {
            return one.ToArray();
        }

        var elements = one[0] == (byte)'%' ? count * 2 : count;
        var children = new List<byte[]>(elements);
        var offset = headerEnd + 2;
        for (var i = 0; i < elements; i++)
        {
            var child = SortDeep(one[offset..], out var used);
            if (child is null)
            {
                return one.ToArray();
            }

            children.Add(child);
            offset += used;
        }

        if (one[0] == (byte)'%')
        {
            var pairs = Enumerable.Range(0, count).Select(i => (byte[])[.. children[2 * i], .. children[(2 * i) + 1]]).ToList();
            children = pairs;
        }

        children.Sort((x, y) => x.AsSpan().SequenceCompareTo(y));
        var result = new ArrayBufferWriter<byte>(one.Length);
        result.Write(one[..(headerEnd + 2)]);
        foreach (var child in children)
        {
            result.Write(child);
        }

        return result.WrittenSpan.ToArray();
    }
}
