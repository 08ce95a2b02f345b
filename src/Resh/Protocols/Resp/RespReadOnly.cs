using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Requests that never change a Redis data set: a replica that is only being brought up to date (a passive or
/// a rebuilt one) may leave those out once they are decided. Kept deliberately short and conservative:
/// commands with hidden writes (PFCOUNT caches its estimate, TOUCH and GET-like LFU updates are invisible but
/// kept out anyway, scripts may write) are not listed.
/// </summary>
internal static class RespReadOnly
{
    private static readonly HashSet<string> Commands = new(StringComparer.Ordinal)
    {
        "GET", "MGET", "STRLEN", "GETRANGE", "SUBSTR", "LCS", "EXISTS", "TYPE", "DUMP", "DBSIZE", "KEYS",
        "EXPIRETIME", "PEXPIRETIME", "PING", "ECHO", "GETBIT", "BITCOUNT", "BITPOS",
        "HGET", "HMGET", "HGETALL", "HKEYS", "HVALS", "HLEN", "HEXISTS", "HSTRLEN",
        "LRANGE", "LLEN", "LINDEX", "LPOS",
        "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SINTER", "SUNION", "SDIFF", "SINTERCARD",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZSCORE",
        "ZMSCORE", "ZCARD", "ZCOUNT", "ZLEXCOUNT", "ZRANK", "ZREVRANK",
        "XRANGE", "XREVRANGE", "XLEN", "GEOPOS", "GEODIST", "GEOHASH",
    };

    private static readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> Lookup = Commands.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Whether the command <paramref name="name"/> is on the list (any case).</summary>
    public static bool Is(ReadOnlySpan<byte> name)
    {
        if (name.Length is < 3 or > 16)
        {
            return false;
        }

        Span<char> upper = stackalloc char[name.Length];
        return Ascii.ToUpper(name, upper, out var written) == OperationStatus.Done && Lookup.Contains(upper[..written]);
    }
}
