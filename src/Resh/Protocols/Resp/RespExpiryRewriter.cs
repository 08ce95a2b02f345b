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

    /// <summary>More arguments than the gateway inspects: it cannot tell the deadline, so the request is refused.</summary>
    TooManyArguments,
}

/// <summary>
/// The gateway's clock reading for one rewrite, whether deadlines are gateway-owned (shifted, see
/// <see cref="RespExpiryKeeper"/>), and the deadline the rewrite wrote (0 when none), for the keeper to check.
/// </summary>
internal struct ExpiryClock(long now, bool owned)
{
    public readonly long Now = now;
    public readonly bool Owned = owned;
    public long Deadline;

    /// <summary>The value to write for <paramref name="deadline"/>, remembering it.</summary>
    public long Write(long deadline)
    {
        if (!Owned)
        {
            return deadline;
        }

        Deadline = deadline;
        return RespExpiryKeeper.ShiftFuture(deadline, Now);
    }
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
/// <item>XADD k [..] * f v .. → a script that adds with the id &lt;ms&gt;-*, ms the later of the gateway's clock and the stream's last id, so stream ids agree and never go back.</item>
/// </list>
/// A value that is not an integer, or one Redis would refuse (non-positive SET/GETEX times, overflow),
/// leaves the request unchanged so the replicas give Redis's own error, identically. SETEX/PSETEX with a
/// non-positive time is the exception: it becomes SET, whose error text would differ, so the gateway answers
/// "invalid expire time in 'setex' command" itself (outside MULTI; inside, the request is queued unchanged).
/// EXAT and PXAT are already absolute and stay as they are.
/// </summary>
internal static class RespExpiryRewriter
{
    public static RewriteResult Rewrite(RespRequestParser request, RespCommandKind kind, ref ExpiryClock clock, PooledBuffer output)
    {
        if (request.ArgCount > RespRequestParser.TrackedArguments && kind is RespCommandKind.Set or RespCommandKind.GetEx or RespCommandKind.Restore)
        {
            return RewriteResult.TooManyArguments;
        }

        var hashClock = new ExpiryClock(clock.Now, owned: false);
        return kind switch
        {
            RespCommandKind.Expire => RewriteExpire(request, "PEXPIREAT"u8, 1000, ref clock, relative: true, output),
            RespCommandKind.PExpire => RewriteExpire(request, "PEXPIREAT"u8, 1, ref clock, relative: true, output),
            RespCommandKind.ExpireAt when clock.Owned => RewriteExpire(request, "PEXPIREAT"u8, 1000, ref clock, relative: false, output),
            RespCommandKind.PExpireAt when clock.Owned => RewriteExpire(request, "PEXPIREAT"u8, 1, ref clock, relative: false, output),

            // Hash fields keep absolute deadlines that each replica applies (Redis 7.4 and later): the keeper checks keys.
            RespCommandKind.HExpire => RewriteExpire(request, "HPEXPIREAT"u8, 1000, ref hashClock, relative: true, output),
            RespCommandKind.HPExpire => RewriteExpire(request, "HPEXPIREAT"u8, 1, ref hashClock, relative: true, output),
            RespCommandKind.Set => RewriteOptions(request, 3, ref clock, output),
            RespCommandKind.GetEx => RewriteOptions(request, 2, ref clock, output),
            RespCommandKind.SetEx => RewriteSetEx(request, 1000, ref clock, output),
            RespCommandKind.PSetEx => RewriteSetEx(request, 1, ref clock, output),
            RespCommandKind.Restore => RewriteRestore(request, ref clock, output),
            RespCommandKind.XAdd => RewriteXAdd(request, clock.Now, output),
            _ => RewriteResult.Unchanged,
        };
    }

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

    private static RewriteResult RewriteExpire(RespRequestParser request, ReadOnlySpan<byte> absoluteName, long unit, ref ExpiryClock clock, bool relative, PooledBuffer output)
    {
        // EXPIRE accepts any integer (a past deadline deletes the key, as PEXPIREAT does).
        if (request.ArgCount < 3
            || !RespEncoding.TryParseInteger(request.Arg(2), out var value)
            || !TryDeadline(relative ? clock.Now : 0, value, unit, out var deadline))
        {
            return RewriteResult.Unchanged;
        }

        deadline = clock.Write(deadline);

        output.Reset();
        RespEncoding.WriteArrayHeader(output, request.ArgCount);
        RespEncoding.WriteBulk(output, absoluteName);
        output.Write(request.RawArg(1));
        RespEncoding.WriteBulk(output, deadline);
        output.Write(request.RawFrom(3));
        return RewriteResult.Rewritten;
    }

    /// <summary>SET/GETEX options from <paramref name="first"/> on: each EX s / PX ms becomes PXAT deadline.</summary>
    private static RewriteResult RewriteOptions(RespRequestParser request, int first, ref ExpiryClock clock, PooledBuffer output)
    {
        var count = request.ArgCount;
        var nowMs = clock.Now;
        if (count > RespRequestParser.TrackedArguments || count < first + 2)
        {
            return RewriteResult.Unchanged;
        }

        var any = false;
        for (var i = first; i < count; i++)
        {
            if (TryRelativeOption(request, i, nowMs, clock.Owned, out _, out var takesValue))
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
            if (TryRelativeOption(request, i, nowMs, clock.Owned, out var deadline, out var takesValue))
            {
                RespEncoding.WriteBulk(output, "PXAT"u8);
                RespEncoding.WriteBulk(output, clock.Write(deadline));
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
    /// Whether argument <paramref name="index"/> is EX or PX (with <paramref name="absoluteToo"/>, EXAT or PXAT too)
    /// followed by a positive integer whose deadline fits; <paramref name="takesValue"/> tells whether the option at
    /// <paramref name="index"/> consumes the next argument.
    /// </summary>
    private static bool TryRelativeOption(RespRequestParser request, int index, long nowMs, bool absoluteToo, out long deadline, out bool takesValue)
    {
        deadline = 0;
        var option = request.Arg(index);
        var hasValue = index + 1 < request.ArgCount;
        long unit;
        var from = nowMs;
        if (Ascii.EqualsIgnoreCase(option, "EX"u8))
        {
            unit = 1000;
        }
        else if (Ascii.EqualsIgnoreCase(option, "PX"u8))
        {
            unit = 1;
        }
        else if (Ascii.EqualsIgnoreCase(option, "EXAT"u8) || Ascii.EqualsIgnoreCase(option, "PXAT"u8))
        {
            takesValue = hasValue;
            if (!absoluteToo)
            {
                return false;
            }

            unit = option.Length == 4 && (option[0] | 0x20) == 'e' ? 1000 : 1;
            from = 0;
        }
        else
        {
            takesValue = false;
            return false;
        }

        takesValue = hasValue;
        return hasValue
            && RespEncoding.TryParseInteger(request.Arg(index + 1), out var value)
            && value > 0
            && TryDeadline(from, value, unit, out deadline);
    }

    private static RewriteResult RewriteSetEx(RespRequestParser request, long unit, ref ExpiryClock clock, PooledBuffer output)
    {
        if (request.ArgCount != 4 || !RespEncoding.TryParseInteger(request.Arg(2), out var value))
        {
            return RewriteResult.Unchanged;
        }

        if (value <= 0 || !TryDeadline(clock.Now, value, unit, out var deadline))
        {
            return RewriteResult.InvalidExpire;
        }

        deadline = clock.Write(deadline);

        output.Reset();
        RespEncoding.WriteArrayHeader(output, 5);
        RespEncoding.WriteBulk(output, "SET"u8);
        output.Write(request.RawArg(1));
        output.Write(request.RawArg(3));
        RespEncoding.WriteBulk(output, "PXAT"u8);
        RespEncoding.WriteBulk(output, deadline);
        return RewriteResult.Rewritten;
    }

    private static RewriteResult RewriteRestore(RespRequestParser request, ref ExpiryClock clock, PooledBuffer output)
    {
        var count = request.ArgCount;
        if (count < 4 || count > RespRequestParser.TrackedArguments
            || !RespEncoding.TryParseInteger(request.Arg(2), out var ttl)
            || ttl <= 0)
        {
            return RewriteResult.Unchanged;
        }

        var absolute = false;
        for (var i = 4; i < count; i++)
        {
            absolute |= Ascii.EqualsIgnoreCase(request.Arg(i), "ABSTTL"u8);
        }

        if ((absolute && !clock.Owned) || !TryDeadline(absolute ? 0 : clock.Now, ttl, 1, out var deadline))
        {
            return RewriteResult.Unchanged;
        }

        output.Reset();
        RespEncoding.WriteArrayHeader(output, absolute ? count : count + 1);
        output.Write(request.RawArg(0));
        output.Write(request.RawArg(1));
        RespEncoding.WriteBulk(output, clock.Write(deadline));
        output.Write(request.RawFrom(3));
        if (!absolute)
        {
            RespEncoding.WriteBulk(output, "ABSTTL"u8);
        }

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

        // One script: the id's milliseconds are the gateway's clock, or the stream's last id where that is later
        // (a stream written with explicit future ids, or a gateway clock that went back), so the id never goes back.
        output.Reset();
        RespScripts.WriteEval(output, RespScripts.XAdd, keys: 1, args: count);
        output.Write(request.RawArg(1));
        RespEncoding.WriteBulk(output, nowMs);
        RespEncoding.WriteBulk(output, i - 1);
        output.Write(request.RawFrom(2));
        return RewriteResult.Rewritten;
    }
}
