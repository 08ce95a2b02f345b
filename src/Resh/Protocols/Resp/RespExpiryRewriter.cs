using System.Buffers.Text;
using System.Text;

namespace Resh.Protocols.Resp;

internal enum RewriteResult
{
    /// <summary>Forward the request as it is.</summary>
    Unchanged,

    /// <summary>The rewritten request is in the output buffer.</summary>
    Rewritten,

    /// <summary>SETEX/PSETEX with a non-positive or overflowing time: answer Redis's error locally.</summary>
    InvalidExpire,
}

/// <summary>
/// Turns clock-relative requests into absolute ones, once, in the gateway, so every replica applies
/// the same deadline whenever it executes the request (<see cref="ExpiryRewrite.Absolute"/>):
/// <list type="bullet">
/// <item>EXPIRE k s [NX|XX|GT|LT] → PEXPIREAT k now+s*1000 [..]; PEXPIRE k ms → PEXPIREAT k now+ms.</item>
/// <item>HEXPIRE/HPEXPIRE k t [..] FIELDS .. → HPEXPIREAT k deadline [..] FIELDS ..</item>
/// <item>SET k v .. EX s | PX ms .. → SET k v .. PXAT deadline ..; GETEX k EX|PX t → GETEX k PXAT deadline.</item>
/// <item>SETEX k s v / PSETEX k ms v → SET k v PXAT deadline.</item>
/// <item>RESTORE k ttl v [..] (ttl &gt; 0, no ABSTTL) → RESTORE k deadline v [..] ABSTTL.</item>
/// <item>XADD k [..] * f v .. → XADD k [..] &lt;now-ms&gt;-* f v .. (Redis ≥ 7.0), so stream ids agree.</item>
/// </list>
/// A value that is not an integer, or one Redis would refuse (non-positive SET/GETEX times, overflow),
/// leaves the request unchanged so the replicas give Redis's own error, identically. SETEX/PSETEX with a
/// non-positive time is the exception: it becomes SET, whose error text would differ, so the gateway answers
/// "invalid expire time in 'setex' command" itself (outside MULTI; inside, the request is queued unchanged).
/// EXAT and PXAT are already absolute and stay as they are.
/// </summary>
internal static class RespExpiryRewriter
{
    public static RewriteResult Rewrite(RespRequestParser request, RespCommandKind kind, long nowMs, PooledBuffer output) => kind switch
    {
        RespCommandKind.Expire => RewriteExpire(request, "PEXPIREAT"u8, 1000, nowMs, output),
        RespCommandKind.PExpire => RewriteExpire(request, "PEXPIREAT"u8, 1, nowMs, output),
        RespCommandKind.HExpire => RewriteExpire(request, "HPEXPIREAT"u8, 1000, nowMs, output),
        RespCommandKind.HPExpire => RewriteExpire(request, "HPEXPIREAT"u8, 1, nowMs, output),
        RespCommandKind.Set => RewriteOptions(request, 3, nowMs, output),
        RespCommandKind.GetEx => RewriteOptions(request, 2, nowMs, output),
        RespCommandKind.SetEx => RewriteSetEx(request, 1000, nowMs, output),
        RespCommandKind.PSetEx => RewriteSetEx(request, 1, nowMs, output),
        RespCommandKind.Restore => RewriteRestore(request, nowMs, output),
        RespCommandKind.XAdd => RewriteXAdd(request, nowMs, output),
        _ => RewriteResult.Unchanged,
    };

    /// <summary>now + value*unit, or false on overflow.</summary>
    private static bool TryDeadline(long nowMs, long value, long unit, out long deadline)
    {
        deadline = 0;
        if (value > long.MaxValue / unit || value < long.MinValue / unit)
        {
            return false;
        }

        var delta = value * unit;
        if ((delta > 0 && nowMs > long.MaxValue - delta) || (delta < 0 && nowMs < long.MinValue - delta))
        {
            return false;
        }

        deadline = nowMs + delta;
        return true;
    }

    private static RewriteResult RewriteExpire(RespRequestParser request, ReadOnlySpan<byte> absoluteName, long unit, long nowMs, PooledBuffer output)
    {
        // EXPIRE accepts any integer (a past deadline deletes the key, as PEXPIREAT does).
        if (request.ArgCount < 3
            || !RespEncoding.TryParseInteger(request.Arg(2), out var value)
            || !TryDeadline(nowMs, value, unit, out var deadline))
        {
            return RewriteResult.Unchanged;
        }

        output.Reset();
        RespEncoding.WriteArrayHeader(output, request.ArgCount);
        RespEncoding.WriteBulk(output, absoluteName);
        output.Write(request.RawArg(1));
        RespEncoding.WriteBulk(output, deadline);
        output.Write(request.RawFrom(3));
        return RewriteResult.Rewritten;
    }

    /// <summary>SET/GETEX options from <paramref name="first"/> on: each EX s / PX ms becomes PXAT deadline.</summary>
    private static RewriteResult RewriteOptions(RespRequestParser request, int first, long nowMs, PooledBuffer output)
    {
        var count = request.ArgCount;
        if (count > RespRequestParser.TrackedArguments || count < first + 2)
        {
            return RewriteResult.Unchanged;
        }

        var any = false;
        for (var i = first; i < count; i++)
        {
            if (TryRelativeOption(request, i, nowMs, out _, out var takesValue))
            {
                any = true;
            }

            if (takesValue)
            {
                i++;
            }
        }

        if (!any)
        {
            return RewriteResult.Unchanged;
        }

        output.Reset();
        RespEncoding.WriteArrayHeader(output, count);
        for (var i = 0; i < first; i++)
        {
            output.Write(request.RawArg(i));
        }

        for (var i = first; i < count; i++)
        {
            if (TryRelativeOption(request, i, nowMs, out var deadline, out var takesValue))
            {
                RespEncoding.WriteBulk(output, "PXAT"u8);
                RespEncoding.WriteBulk(output, deadline);
                i++;
                continue;
            }

            output.Write(request.RawArg(i));
            if (takesValue)
            {
                i++;
                output.Write(request.RawArg(i));
            }
        }

        return RewriteResult.Rewritten;
    }

    /// <summary>
    /// Whether argument <paramref name="index"/> is EX or PX followed by a positive integer whose deadline
    /// fits; <paramref name="takesValue"/> tells whether the option at <paramref name="index"/> consumes the next argument.
    /// </summary>
    private static bool TryRelativeOption(RespRequestParser request, int index, long nowMs, out long deadline, out bool takesValue)
    {
        deadline = 0;
        var option = request.Arg(index);
        var hasValue = index + 1 < request.ArgCount;
        long unit;
        if (Ascii.EqualsIgnoreCase(option, "EX"u8))
        {
            unit = 1000;
        }
        else if (Ascii.EqualsIgnoreCase(option, "PX"u8))
        {
            unit = 1;
        }
        else
        {
            takesValue = hasValue && (Ascii.EqualsIgnoreCase(option, "EXAT"u8) || Ascii.EqualsIgnoreCase(option, "PXAT"u8));
            return false;
        }

        takesValue = hasValue;
        return hasValue
            && RespEncoding.TryParseInteger(request.Arg(index + 1), out var value)
            && value > 0
            && TryDeadline(nowMs, value, unit, out deadline);
    }

    private static RewriteResult RewriteSetEx(RespRequestParser request, long unit, long nowMs, PooledBuffer output)
    {
        if (request.ArgCount != 4 || !RespEncoding.TryParseInteger(request.Arg(2), out var value))
        {
            return RewriteResult.Unchanged;
        }

        if (value <= 0 || !TryDeadline(nowMs, value, unit, out var deadline))
        {
            return RewriteResult.InvalidExpire;
        }

        output.Reset();
        RespEncoding.WriteArrayHeader(output, 5);
        RespEncoding.WriteBulk(output, "SET"u8);
        output.Write(request.RawArg(1));
        output.Write(request.RawArg(3));
        RespEncoding.WriteBulk(output, "PXAT"u8);
        RespEncoding.WriteBulk(output, deadline);
        return RewriteResult.Rewritten;
    }

    private static RewriteResult RewriteRestore(RespRequestParser request, long nowMs, PooledBuffer output)
    {
        var count = request.ArgCount;
        if (count < 4 || count > RespRequestParser.TrackedArguments
            || !RespEncoding.TryParseInteger(request.Arg(2), out var ttl)
            || ttl <= 0
            || !TryDeadline(nowMs, ttl, 1, out var deadline))
        {
            return RewriteResult.Unchanged;
        }

        for (var i = 4; i < count; i++)
        {
            if (Ascii.EqualsIgnoreCase(request.Arg(i), "ABSTTL"u8))
            {
                return RewriteResult.Unchanged;
            }
        }

        output.Reset();
        RespEncoding.WriteArrayHeader(output, count + 1);
        output.Write(request.RawArg(0));
        output.Write(request.RawArg(1));
        RespEncoding.WriteBulk(output, deadline);
        output.Write(request.RawFrom(3));
        RespEncoding.WriteBulk(output, "ABSTTL"u8);
        return RewriteResult.Rewritten;
    }

    /// <summary>Finds the id argument of XADD past its options, as Redis parses them; rewrites "*" only.</summary>
    private static RewriteResult RewriteXAdd(RespRequestParser request, long nowMs, PooledBuffer output)
    {
        var count = request.ArgCount;
        var limit = Math.Min(count, RespRequestParser.TrackedArguments);
        var i = 2;
        for (; i < limit; i++)
        {
            var option = request.Arg(i);
            var more = count - 1 - i;
            if (option.Length == 1 && option[0] == (byte)'*')
            {
                break;
            }

            if ((Ascii.EqualsIgnoreCase(option, "MAXLEN"u8) || Ascii.EqualsIgnoreCase(option, "MINID"u8)) && more > 0)
            {
                if (more >= 2 && i + 1 < limit && request.Arg(i + 1) is [(byte)'~' or (byte)'='])
                {
                    i++;
                }

                i++;
            }
            else if (Ascii.EqualsIgnoreCase(option, "LIMIT"u8) && more > 0)
            {
                i++;
            }
            else if (!Ascii.EqualsIgnoreCase(option, "NOMKSTREAM"u8))
            {
                return RewriteResult.Unchanged;
            }
        }

        if (i >= limit || nowMs < 0)
        {
            return RewriteResult.Unchanged;
        }

        Span<byte> id = stackalloc byte[RespEncoding.MaxIntegerDigits + 2];
        Utf8Formatter.TryFormat(nowMs, id, out var written);
        id[written++] = (byte)'-';
        id[written++] = (byte)'*';

        output.Reset();
        RespEncoding.WriteArrayHeader(output, count);
        for (var j = 0; j < i; j++)
        {
            output.Write(request.RawArg(j));
        }

        RespEncoding.WriteBulk(output, id[..written]);
        output.Write(request.RawFrom(i + 1));
        return RewriteResult.Rewritten;
    }
}
