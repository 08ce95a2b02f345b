using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>Commands the RESP session treats specially.</summary>
internal enum RespCommandKind
{
    Other,
    Select,
    Hello,
    Multi,
    Exec,
    Discard,
    Quit,

    // Owned by the gateway (RespClientSession.Owned.cs): answered, rewritten or given a reply transform.
    Ttl,
    PTtl,
    HTtl,
    HPTtl,
    ExpireTime,
    PExpireTime,
    Time,
    LastSave,
    Scan,
    SScan,
    HScan,
    ZScan,
    SPop,
    SRandMember,
    HRandField,
    ZRandMember,
    RandomKey,
    Info,
    Config,
    Object,
    Memory,
    Role,
    SlowLog,
    Latency,
    Watch,
    Unwatch,
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
    Publish,
    SPublish,
    PubSub,
    BLPop,
    BRPop,
    BRPopLPush,
    BLMove,
    BLMPop,
    BZPopMin,
    BZPopMax,
    BZMPop,
    XRead,
    XReadGroup,
    XClaim,
    XAutoClaim,
    XPending,
    XInfo,

    // Forwarded, then the keeper checks the destination key's deadline (it keeps it under a new name).
    Rename,
    RenameNx,
    Move,
    Copy,

    // Clock-dependent: rewritten by RespExpiryRewriter.
    Expire,
    PExpire,
    ExpireAt,
    PExpireAt,
    HExpire,
    HPExpire,
    Set,
    SetEx,
    PSetEx,
    GetEx,
    Restore,
    XAdd,
}

internal static class RespCommands
{
    /// <summary>Case-insensitive recognition of the command name, without allocating.</summary>
    public static RespCommandKind Identify(ReadOnlySpan<byte> name) => name.Length switch
    {
        3 when Ascii.EqualsIgnoreCase(name, "TTL"u8) => RespCommandKind.Ttl,
        5 when Ascii.EqualsIgnoreCase(name, "WATCH"u8) => RespCommandKind.Watch,
        9 when Ascii.EqualsIgnoreCase(name, "SUBSCRIBE"u8) => RespCommandKind.Subscribe,
        11 when Ascii.EqualsIgnoreCase(name, "UNSUBSCRIBE"u8) => RespCommandKind.Unsubscribe,
        10 when Ascii.EqualsIgnoreCase(name, "PSUBSCRIBE"u8) => RespCommandKind.PSubscribe,
        12 when Ascii.EqualsIgnoreCase(name, "PUNSUBSCRIBE"u8) => RespCommandKind.PUnsubscribe,
        10 when Ascii.EqualsIgnoreCase(name, "SSUBSCRIBE"u8) => RespCommandKind.SSubscribe,
        12 when Ascii.EqualsIgnoreCase(name, "SUNSUBSCRIBE"u8) => RespCommandKind.SUnsubscribe,
        7 when Ascii.EqualsIgnoreCase(name, "PUBLISH"u8) => RespCommandKind.Publish,
        8 when Ascii.EqualsIgnoreCase(name, "SPUBLISH"u8) => RespCommandKind.SPublish,
        6 when Ascii.EqualsIgnoreCase(name, "PUBSUB"u8) => RespCommandKind.PubSub,
        7 when Ascii.EqualsIgnoreCase(name, "UNWATCH"u8) => RespCommandKind.Unwatch,
        5 when Ascii.EqualsIgnoreCase(name, "BLPOP"u8) => RespCommandKind.BLPop,
        5 when Ascii.EqualsIgnoreCase(name, "BRPOP"u8) => RespCommandKind.BRPop,
        10 when Ascii.EqualsIgnoreCase(name, "BRPOPLPUSH"u8) => RespCommandKind.BRPopLPush,
        6 when Ascii.EqualsIgnoreCase(name, "BLMOVE"u8) => RespCommandKind.BLMove,
        6 when Ascii.EqualsIgnoreCase(name, "BLMPOP"u8) => RespCommandKind.BLMPop,
        8 when Ascii.EqualsIgnoreCase(name, "BZPOPMIN"u8) => RespCommandKind.BZPopMin,
        8 when Ascii.EqualsIgnoreCase(name, "BZPOPMAX"u8) => RespCommandKind.BZPopMax,
        6 when Ascii.EqualsIgnoreCase(name, "BZMPOP"u8) => RespCommandKind.BZMPop,
        5 when Ascii.EqualsIgnoreCase(name, "XREAD"u8) => RespCommandKind.XRead,
        10 when Ascii.EqualsIgnoreCase(name, "XREADGROUP"u8) => RespCommandKind.XReadGroup,
        6 when Ascii.EqualsIgnoreCase(name, "XCLAIM"u8) => RespCommandKind.XClaim,
        10 when Ascii.EqualsIgnoreCase(name, "XAUTOCLAIM"u8) => RespCommandKind.XAutoClaim,
        8 when Ascii.EqualsIgnoreCase(name, "XPENDING"u8) => RespCommandKind.XPending,
        5 when Ascii.EqualsIgnoreCase(name, "XINFO"u8) => RespCommandKind.XInfo,
        4 when Ascii.EqualsIgnoreCase(name, "PTTL"u8) => RespCommandKind.PTtl,
        4 when Ascii.EqualsIgnoreCase(name, "HTTL"u8) => RespCommandKind.HTtl,
        5 when Ascii.EqualsIgnoreCase(name, "HPTTL"u8) => RespCommandKind.HPTtl,
        4 when Ascii.EqualsIgnoreCase(name, "TIME"u8) => RespCommandKind.Time,
        4 when Ascii.EqualsIgnoreCase(name, "SCAN"u8) => RespCommandKind.Scan,
        4 when Ascii.EqualsIgnoreCase(name, "SPOP"u8) => RespCommandKind.SPop,
        4 when Ascii.EqualsIgnoreCase(name, "INFO"u8) => RespCommandKind.Info,
        4 when Ascii.EqualsIgnoreCase(name, "ROLE"u8) => RespCommandKind.Role,
        4 when Ascii.EqualsIgnoreCase(name, "MOVE"u8) => RespCommandKind.Move,
        4 when Ascii.EqualsIgnoreCase(name, "COPY"u8) => RespCommandKind.Copy,
        5 when Ascii.EqualsIgnoreCase(name, "SSCAN"u8) => RespCommandKind.SScan,
        5 when Ascii.EqualsIgnoreCase(name, "HSCAN"u8) => RespCommandKind.HScan,
        5 when Ascii.EqualsIgnoreCase(name, "ZSCAN"u8) => RespCommandKind.ZScan,
        6 when Ascii.EqualsIgnoreCase(name, "CONFIG"u8) => RespCommandKind.Config,
        6 when Ascii.EqualsIgnoreCase(name, "OBJECT"u8) => RespCommandKind.Object,
        6 when Ascii.EqualsIgnoreCase(name, "MEMORY"u8) => RespCommandKind.Memory,
        6 when Ascii.EqualsIgnoreCase(name, "RENAME"u8) => RespCommandKind.Rename,
        7 when Ascii.EqualsIgnoreCase(name, "SLOWLOG"u8) => RespCommandKind.SlowLog,
        7 when Ascii.EqualsIgnoreCase(name, "LATENCY"u8) => RespCommandKind.Latency,
        8 when Ascii.EqualsIgnoreCase(name, "LASTSAVE"u8) => RespCommandKind.LastSave,
        8 when Ascii.EqualsIgnoreCase(name, "RENAMENX"u8) => RespCommandKind.RenameNx,
        8 when Ascii.EqualsIgnoreCase(name, "EXPIREAT"u8) => RespCommandKind.ExpireAt,
        9 when Ascii.EqualsIgnoreCase(name, "RANDOMKEY"u8) => RespCommandKind.RandomKey,
        9 when Ascii.EqualsIgnoreCase(name, "PEXPIREAT"u8) => RespCommandKind.PExpireAt,
        10 when Ascii.EqualsIgnoreCase(name, "EXPIRETIME"u8) => RespCommandKind.ExpireTime,
        10 when Ascii.EqualsIgnoreCase(name, "HRANDFIELD"u8) => RespCommandKind.HRandField,
        11 when Ascii.EqualsIgnoreCase(name, "PEXPIRETIME"u8) => RespCommandKind.PExpireTime,
        11 when Ascii.EqualsIgnoreCase(name, "SRANDMEMBER"u8) => RespCommandKind.SRandMember,
        11 when Ascii.EqualsIgnoreCase(name, "ZRANDMEMBER"u8) => RespCommandKind.ZRandMember,
        3 when Ascii.EqualsIgnoreCase(name, "SET"u8) => RespCommandKind.Set,
        4 when Ascii.EqualsIgnoreCase(name, "EXEC"u8) => RespCommandKind.Exec,
        4 when Ascii.EqualsIgnoreCase(name, "QUIT"u8) => RespCommandKind.Quit,
        4 when Ascii.EqualsIgnoreCase(name, "XADD"u8) => RespCommandKind.XAdd,
        5 when Ascii.EqualsIgnoreCase(name, "MULTI"u8) => RespCommandKind.Multi,
        5 when Ascii.EqualsIgnoreCase(name, "HELLO"u8) => RespCommandKind.Hello,
        5 when Ascii.EqualsIgnoreCase(name, "SETEX"u8) => RespCommandKind.SetEx,
        5 when Ascii.EqualsIgnoreCase(name, "GETEX"u8) => RespCommandKind.GetEx,
        6 when Ascii.EqualsIgnoreCase(name, "SELECT"u8) => RespCommandKind.Select,
        6 when Ascii.EqualsIgnoreCase(name, "EXPIRE"u8) => RespCommandKind.Expire,
        6 when Ascii.EqualsIgnoreCase(name, "PSETEX"u8) => RespCommandKind.PSetEx,
        7 when Ascii.EqualsIgnoreCase(name, "DISCARD"u8) => RespCommandKind.Discard,
        7 when Ascii.EqualsIgnoreCase(name, "PEXPIRE"u8) => RespCommandKind.PExpire,
        7 when Ascii.EqualsIgnoreCase(name, "RESTORE"u8) => RespCommandKind.Restore,
        7 when Ascii.EqualsIgnoreCase(name, "HEXPIRE"u8) => RespCommandKind.HExpire,
        8 when Ascii.EqualsIgnoreCase(name, "HPEXPIRE"u8) => RespCommandKind.HPExpire,
        _ => RespCommandKind.Other,
    };

    public static bool IsClockDependent(RespCommandKind kind) => kind >= RespCommandKind.Expire;

    /// <summary>Commands the gateway answers, rewrites or transforms (RespClientSession.Owned.cs).</summary>
    public static bool IsOwned(RespCommandKind kind) => kind is >= RespCommandKind.Ttl and <= RespCommandKind.XInfo;

    /// <summary>Commands that wait for data: the gateway blocks the session and retries through the log.</summary>
    public static bool IsBlocking(RespCommandKind kind) => kind is >= RespCommandKind.BLPop and <= RespCommandKind.XRead;

    /// <summary>Consumer-group commands whose delivery times the gateway stamps and compares (RespClientSession.Streams.cs).</summary>
    public static bool IsConsumerGroup(RespCommandKind kind) => kind is >= RespCommandKind.XReadGroup and <= RespCommandKind.XInfo;

    /// <summary>Commands that may carry a key's deadline to another name or database.</summary>
    public static bool MovesDeadline(RespCommandKind kind) => kind is >= RespCommandKind.Rename and <= RespCommandKind.Copy;
}
