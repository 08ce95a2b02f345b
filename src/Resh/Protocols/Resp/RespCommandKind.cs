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
    Expire,
    PExpire,
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
}
