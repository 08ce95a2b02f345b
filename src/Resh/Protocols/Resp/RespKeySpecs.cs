using System.Collections.Frozen;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>Which keys a request may change.</summary>
internal enum TouchScope
{
    /// <summary>It changes no key.</summary>
    None,

    /// <summary>It changes the keys reported.</summary>
    Keys,

    /// <summary>It may change any key of its database (FLUSHDB, a write whose keys cannot be told).</summary>
    Database,

    /// <summary>It may change any key of any database (FLUSHALL).</summary>
    All,
}

/// <summary>
/// The keys each write command of Redis 7.0 changes, from redis-server's own command table (COMMAND: first key,
/// last key, step; "w" for write, "m" for keys found by parsing). Used for WATCH and for waking blocked sessions:
/// where the keys cannot be told cheaply, the whole database counts as touched, which only ever causes an extra
/// abort or retry, never a missed one.
/// </summary>
internal static class RespKeySpecs
{
    /// <summary>
    /// Whether the first command of <paramref name="payload"/> is <paramref name="name"/> (case-insensitive), read from
    /// its first bulk string without parsing the rest: a cheap look before <see cref="Commands"/>.
    /// </summary>
    public static bool FirstCommandIs(ReadOnlySpan<byte> payload, ReadOnlySpan<byte> name)
    {
        var header = payload.IndexOf("\r\n"u8);
        if (header < 0)
        {
            return false;
        }

        var rest = payload[(header + 2)..];
        var digits = rest.IndexOf("\r\n"u8);
        return digits >= 2 && rest[0] == (byte)'$'
            && int.TryParse(rest[1..digits], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length)
            && length == name.Length && rest.Length >= digits + 2 + length
            && Ascii.EqualsIgnoreCase(rest.Slice(digits + 2, length), name);
    }

    // name flags first last step (generated from COMMAND of redis-server 7.0.15; write commands and scripts only)
    private const string Table = """
        append w 1 1 1
        bitfield w 1 1 1
        bitop w 2 -1 1
        blmove w 1 2 1
        blmpop wm 0 0 0
        blpop w 1 -2 1
        brpop w 1 -2 1
        brpoplpush w 1 2 1
        bzmpop wm 0 0 0
        bzpopmax w 1 -2 1
        bzpopmin w 1 -2 1
        copy w 1 2 1
        decr w 1 1 1
        decrby w 1 1 1
        del w 1 -1 1
        eval m 0 0 0
        evalsha m 0 0 0
        expire w 1 1 1
        expireat w 1 1 1
        fcall m 0 0 0
        flushall w 0 0 0
        flushdb w 0 0 0
        function|delete w 0 0 0
        function|flush w 0 0 0
        function|load w 0 0 0
        function|restore w 0 0 0
        geoadd w 1 1 1
        georadius wm 1 1 1
        georadiusbymember wm 1 1 1
        geosearchstore w 1 2 1
        getdel w 1 1 1
        getex w 1 1 1
        getset w 1 1 1
        hdel w 1 1 1
        hincrby w 1 1 1
        hincrbyfloat w 1 1 1
        hmset w 1 1 1
        hset w 1 1 1
        hsetnx w 1 1 1
        incr w 1 1 1
        incrby w 1 1 1
        incrbyfloat w 1 1 1
        linsert w 1 1 1
        lmove w 1 2 1
        lmpop wm 0 0 0
        lpop w 1 1 1
        lpush w 1 1 1
        lpushx w 1 1 1
        lrem w 1 1 1
        lset w 1 1 1
        ltrim w 1 1 1
        migrate wm 3 3 1
        move w 1 1 1
        mset w 1 -1 2
        msetnx w 1 -1 2
        persist w 1 1 1
        pexpire w 1 1 1
        pexpireat w 1 1 1
        pfadd w 1 1 1
        pfdebug w 2 2 1
        pfmerge w 1 -1 1
        psetex w 1 1 1
        rename w 1 2 1
        renamenx w 1 2 1
        restore w 1 1 1
        restore-asking w 1 1 1
        rpop w 1 1 1
        rpoplpush w 1 2 1
        rpush w 1 1 1
        rpushx w 1 1 1
        sadd w 1 1 1
        sdiffstore w 1 -1 1
        set w 1 1 1
        setbit w 1 1 1
        setex w 1 1 1
        setnx w 1 1 1
        setrange w 1 1 1
        sinterstore w 1 -1 1
        smove w 1 2 1
        sort wm 1 1 1
        spop w 1 1 1
        srem w 1 1 1
        sunionstore w 1 -1 1
        swapdb w 0 0 0
        unlink w 1 -1 1
        xack w 1 1 1
        xadd w 1 1 1
        xautoclaim w 1 1 1
        xclaim w 1 1 1
        xdel w 1 1 1
        xgroup|create w 2 2 1
        xgroup|createconsumer w 2 2 1
        xgroup|delconsumer w 2 2 1
        xgroup|destroy w 2 2 1
        xgroup|setid w 2 2 1
        xreadgroup wm 0 0 0
        xsetid w 1 1 1
        xtrim w 1 1 1
        zadd w 1 1 1
        zdiffstore wm 1 1 1
        zincrby w 1 1 1
        zinterstore wm 1 1 1
        zmpop wm 0 0 0
        zpopmax w 1 1 1
        zpopmin w 1 1 1
        zrangestore w 1 2 1
        zrem w 1 1 1
        zremrangebylex w 1 1 1
        zremrangebyrank w 1 1 1
        zremrangebyscore w 1 1 1
        zunionstore wm 1 1 1
        """;

    private static readonly FrozenDictionary<string, (bool Movable, int First, int Last, int Step)> Specs = Parse();

    private static FrozenDictionary<string, (bool, int, int, int)> Parse()
    {
        var specs = new Dictionary<string, (bool, int, int, int)>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in Table.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = line.Split(' ');
            specs[f[0]] = (f[1].Contains('m', StringComparison.Ordinal), int.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture), int.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture), int.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture));
        }

        return specs.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The keys <paramref name="args"/> (one command: name first) may change, added to <paramref name="keys"/>; the
    /// database of a MOVE or COPY ... DB target is reported through <paramref name="otherDb"/>.
    /// </summary>
    public static TouchScope Touched(IReadOnlyList<byte[]> args, List<byte[]> keys, out int otherDb)
    {
        otherDb = -1;
        if (args.Count == 0)
        {
            return TouchScope.None;
        }

        var name = Encoding.ASCII.GetString(args[0]).ToLowerInvariant();
        if (args.Count > 1 && Specs.ContainsKey(name + "|" + Encoding.ASCII.GetString(args[1]).ToLowerInvariant()))
        {
            name = name + "|" + Encoding.ASCII.GetString(args[1]).ToLowerInvariant();
        }

        switch (name)
        {
            case "flushall":
                return TouchScope.All;
            case "flushdb":
                return TouchScope.Database;
            case "eval" or "evalsha" or "fcall":
                return NumKeys(args, 2, keys);
            case "lmpop" or "zmpop" or "zunionstore" or "zinterstore" or "zdiffstore":
                return name.EndsWith("store", StringComparison.Ordinal) ? Add(args, 1, keys) : NumKeys(args, 1, keys);
            case "blmpop" or "bzmpop":
                return NumKeys(args, 2, keys);
            case "move":
                if (args.Count == 3 && RespEncoding.TryParseInteger(args[2], out var db) && db is >= 0 and <= int.MaxValue)
                {
                    otherDb = (int)db;
                }

                return Add(args, 1, keys);
            case "copy":
                for (var i = 3; i + 1 < args.Count; i++)
                {
                    if (Ascii.EqualsIgnoreCase(args[i], "DB"u8) && RespEncoding.TryParseInteger(args[i + 1], out var to) && to is >= 0 and <= int.MaxValue)
                    {
                        otherDb = (int)to;
                    }
                }

                return Add(args, 2, keys);
        }

        if (!Specs.TryGetValue(name, out var spec))
        {
            return TouchScope.None;
        }

        if (spec.Movable || spec.First <= 0)
        {
            return TouchScope.Database;
        }

        var last = spec.Last < 0 ? args.Count + spec.Last : spec.Last;
        for (var i = spec.First; i <= last && i < args.Count; i += Math.Max(spec.Step, 1))
        {
            keys.Add(args[i]);
        }

        return TouchScope.Keys;
    }

    private static TouchScope Add(IReadOnlyList<byte[]> args, int index, List<byte[]> keys)
    {
        if (index < args.Count)
        {
            keys.Add(args[index]);
        }

        return TouchScope.Keys;
    }

    private static TouchScope NumKeys(IReadOnlyList<byte[]> args, int at, List<byte[]> keys)
    {
        if (at >= args.Count || !RespEncoding.TryParseInteger(args[at], out var count) || count < 0 || at + count >= args.Count + 1)
        {
            return TouchScope.Database;
        }

        for (var i = 0; i < count && at + 1 + i < args.Count; i++)
        {
            keys.Add(args[at + 1 + (int)i]);
        }

        return TouchScope.Keys;
    }

    /// <summary>The commands of a canonical multibulk payload (one request, or a MULTI ... EXEC unit), each as its arguments.</summary>
    public static List<byte[][]> Commands(ReadOnlySpan<byte> payload)
    {
        var commands = new List<byte[][]>();
        var offset = 0;
        while (offset < payload.Length && payload[offset] == (byte)'*')
        {
            var end = payload[offset..].IndexOf("\r\n"u8);
            if (end < 2 || !RespEncoding.TryParseInteger(payload.Slice(offset + 1, end - 1), out var count) || count < 0)
            {
                break;
            }

            offset += end + 2;
            var args = new byte[count][];
            for (var i = 0; i < count; i++)
            {
                var lineEnd = payload[offset..].IndexOf("\r\n"u8);
                if (lineEnd < 2 || payload[offset] != (byte)'$' || !RespEncoding.TryParseInteger(payload.Slice(offset + 1, lineEnd - 1), out var length) || length < 0)
                {
                    return commands;
                }

                offset += lineEnd + 2;
                if (offset + length + 2 > payload.Length)
                {
                    return commands;
                }

                args[i] = payload.Slice(offset, (int)length).ToArray();
                offset += (int)length + 2;
            }

            commands.Add(args);
        }

        return commands;
    }
}
