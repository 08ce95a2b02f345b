using System.Text;
using Resh.SampleKv.Protocol;

namespace Resh.SampleKv.Engine;

internal sealed partial class CommandProcessor
{
    [Flags]
    private enum SetOptions
    {
        None = 0,
        Nx = 1,
        Xx = 2,
        Get = 4,
        KeepTtl = 8,
        Ex = 16,
        Px = 32,
        ExAt = 64,
        PxAt = 128,
    }

    private void Get(ClientSession session, byte[][] args, ReplyWriter reply, long now) =>
        ReplyValue(session, args[1], reply, now);

    private void ReplyValue(ClientSession session, byte[] key, ReplyWriter reply, long now)
    {
        if (_keyspace.TryGet(session.Database, key, now, out byte[] value, out _))
        {
            reply.Bulk(value);
        }
        else
        {
            reply.Null();
        }
    }

    // SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL], options checked in Redis' order.
    private void Set(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        const SetOptions anyExpiry = SetOptions.Ex | SetOptions.Px | SetOptions.ExAt | SetOptions.PxAt;
        SetOptions options = SetOptions.None;
        byte[]? expiry = null;
        for (int j = 3; j < args.Length; j++)
        {
            byte[] option = args[j];
            SetOptions flag = ParseSetOption(option);
            SetOptions conflicting = flag switch
            {
                SetOptions.Nx => SetOptions.Xx,
                SetOptions.Xx => SetOptions.Nx,
                SetOptions.Get => SetOptions.None,
                SetOptions.KeepTtl => anyExpiry,

                // An expiry may be repeated (the last one wins) but not mixed with another kind or KEEPTTL.
                _ => (anyExpiry & ~flag) | SetOptions.KeepTtl,
            };
            bool takesValue = (flag & anyExpiry) != 0;
            if (flag == SetOptions.None || (options & conflicting) != 0 || (takesValue && j == args.Length - 1))
            {
                reply.Error(SyntaxError);
                return;
            }

            options |= flag;
            if (takesValue)
            {
                expiry = args[++j];
            }
        }

        long deadline = IKeyspace.NoDeadline;
        if (expiry is not null)
        {
            if (!_integers.TryParse(expiry, out long amount))
            {
                reply.Error(NotAnInteger);
                return;
            }

            bool inSeconds = (options & (SetOptions.Ex | SetOptions.ExAt)) != 0;
            if (amount <= 0 || (inSeconds && amount > long.MaxValue / 1000))
            {
                reply.Error(InvalidExpireTime("set"));
                return;
            }

            if (inSeconds)
            {
                amount *= 1000;
            }

            if ((options & (SetOptions.Ex | SetOptions.Px)) != 0)
            {
                amount = unchecked(amount + now);
            }

            if (amount <= 0)
            {
                reply.Error(InvalidExpireTime("set"));
                return;
            }

            deadline = amount;
        }

        int db = session.Database;
        bool found = _keyspace.TryGet(db, args[1], now, out byte[] old, out long oldDeadline);
        bool replyOld = (options & SetOptions.Get) != 0;
        if (replyOld)
        {
            if (found)
            {
                reply.Bulk(old);
            }
            else
            {
                reply.Null();
            }
        }

        if (((options & SetOptions.Nx) != 0 && found) || ((options & SetOptions.Xx) != 0 && !found))
        {
            if (!replyOld)
            {
                reply.Null();
            }

            return;
        }

        if (expiry is null && (options & SetOptions.KeepTtl) != 0 && found)
        {
            deadline = oldDeadline;
        }

        _keyspace.Set(db, args[1], args[2], deadline);
        if (!replyOld)
        {
            reply.Ok();
        }
    }

    private static SetOptions ParseSetOption(byte[] option) =>
        CString.IsOption(option, "nx"u8) ? SetOptions.Nx
        : CString.IsOption(option, "xx"u8) ? SetOptions.Xx
        : CString.IsOption(option, "get"u8) ? SetOptions.Get
        : CString.IsOption(option, "keepttl"u8) ? SetOptions.KeepTtl
        : CString.IsOption(option, "ex"u8) ? SetOptions.Ex
        : CString.IsOption(option, "px"u8) ? SetOptions.Px
        : CString.IsOption(option, "exat"u8) ? SetOptions.ExAt
        : CString.IsOption(option, "pxat"u8) ? SetOptions.PxAt
        : SetOptions.None;

    private static byte[] InvalidExpireTime(string command) =>
        Encoding.ASCII.GetBytes($"invalid expire time in '{command}' command");

    private void GetSet(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        ReplyValue(session, args[1], reply, now);
        _keyspace.Set(session.Database, args[1], args[2], IKeyspace.NoDeadline);
    }

    private void SetNx(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (_keyspace.TryGet(session.Database, args[1], now, out _, out _))
        {
            reply.Integer(0);
            return;
        }

        _keyspace.Set(session.Database, args[1], args[2], IKeyspace.NoDeadline);
        reply.Integer(1);
    }

    private void MGet(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        reply.Array(args.Length - 1);
        for (int i = 1; i < args.Length; i++)
        {
            ReplyValue(session, args[i], reply, now);
        }
    }

    private void MSet(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (args.Length % 2 == 0)
        {
            reply.Error(WrongArity("mset"));
            return;
        }

        for (int i = 1; i < args.Length; i += 2)
        {
            _keyspace.Set(session.Database, args[i], args[i + 1], IKeyspace.NoDeadline);
        }

        reply.Ok();
    }

    private void MSetNx(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (args.Length % 2 == 0)
        {
            reply.Error(WrongArity("msetnx"));
            return;
        }

        for (int i = 1; i < args.Length; i += 2)
        {
            if (_keyspace.TryGet(session.Database, args[i], now, out _, out _))
            {
                reply.Integer(0);
                return;
            }
        }

        for (int i = 1; i < args.Length; i += 2)
        {
            _keyspace.Set(session.Database, args[i], args[i + 1], IKeyspace.NoDeadline);
        }

        reply.Integer(1);
    }

    private void IncrBy(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (!_integers.TryParse(args[2], out long increment))
        {
            reply.Error(NotAnInteger);
            return;
        }

        IncrementBy(session, args[1], increment, reply, now);
    }

    private void DecrBy(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (!_integers.TryParse(args[2], out long decrement))
        {
            reply.Error(NotAnInteger);
            return;
        }

        if (decrement == long.MinValue)
        {
            reply.Error("decrement would overflow"u8);
            return;
        }

        IncrementBy(session, args[1], -decrement, reply, now);
    }

    // The key keeps its deadline, as in Redis.
    private void IncrementBy(ClientSession session, byte[] key, long increment, ReplyWriter reply, long now)
    {
        long current = 0;
        if (_keyspace.TryGet(session.Database, key, now, out byte[] value, out long deadline)
            && !_integers.TryParse(value, out current))
        {
            reply.Error(NotAnInteger);
            return;
        }

        if ((increment < 0 && current < 0 && increment < long.MinValue - current)
            || (increment > 0 && current > 0 && increment > long.MaxValue - current))
        {
            reply.Error("increment or decrement would overflow"u8);
            return;
        }

        long result = current + increment;
        Span<byte> digits = stackalloc byte[IIntegerCodec.MaxLength];
        int length = _integers.Format(result, digits);
        _keyspace.Set(session.Database, key, digits[..length].ToArray(), deadline);
        reply.Integer(result);
    }

    private void Append(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        byte[] tail = args[2];
        if (!_keyspace.TryGet(session.Database, args[1], now, out byte[] head, out long deadline))
        {
            _keyspace.Set(session.Database, args[1], tail, IKeyspace.NoDeadline);
            reply.Integer(tail.Length);
            return;
        }

        long total = (long)head.Length + tail.Length;
        if (total > RequestParser.MaxBulkLength)
        {
            reply.Error("string exceeds maximum allowed size (proto-max-bulk-len)"u8);
            return;
        }

        byte[] joined = new byte[total];
        head.CopyTo(joined, 0);
        tail.CopyTo(joined, head.Length);
        _keyspace.Set(session.Database, args[1], joined, deadline);
        reply.Integer(total);
    }

    private void StrLen(ClientSession session, byte[][] args, ReplyWriter reply, long now) =>
        reply.Integer(_keyspace.TryGet(session.Database, args[1], now, out byte[] value, out _) ? value.Length : 0);
}
