using System.Text;
using Resh.SampleKv.Protocol;

namespace Resh.SampleKv.Engine;

internal sealed partial class CommandProcessor
{
    private void Del(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        long removed = 0;
        for (int i = 1; i < args.Length; i++)
        {
            if (_keyspace.Remove(session.Database, args[i], now))
            {
                removed++;
            }
        }

        reply.Integer(removed);
    }

    // Counts every argument, so a key named twice counts twice (as in Redis).
    private void Exists(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        long found = 0;
        for (int i = 1; i < args.Length; i++)
        {
            if (_keyspace.TryGet(session.Database, args[i], now, out _, out _))
            {
                found++;
            }
        }

        reply.Integer(found);
    }

    // Unlike Redis (hash-table order), the keys come sorted byte-wise so that every replica and both
    // variants answer alike. As in Redis, the pattern "*" alone lists every key, even the empty one,
    // which the glob matcher itself would not match.
    private void Keys(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        byte[] pattern = args[1];
        bool all = pattern.Length == 1 && pattern[0] == (byte)'*';
        List<byte[]> keys = _keyspace.SortedKeys(session.Database, now);
        if (!all)
        {
            keys.RemoveAll(key => !_glob.IsMatch(pattern, key));
        }

        reply.Array(keys.Count);
        foreach (byte[] key in keys)
        {
            reply.Bulk(key);
        }
    }

    private void DbSize(ClientSession session, byte[][] args, ReplyWriter reply, long now) =>
        reply.Integer(_keyspace.Count(session.Database, now));

    // Deterministic instead of random: the byte-wise smallest key.
    private void RandomKey(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        byte[]? key = _keyspace.SmallestKey(session.Database, now);
        if (key is null)
        {
            reply.Null();
        }
        else
        {
            reply.Bulk(key);
        }
    }

    private void FlushDb(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (IsFlushSyntaxValid(args))
        {
            _keyspace.Clear(session.Database);
            reply.Ok();
        }
        else
        {
            reply.Error(SyntaxError);
        }
    }

    private void FlushAll(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (IsFlushSyntaxValid(args))
        {
            _keyspace.ClearAll();
            reply.Ok();
        }
        else
        {
            reply.Error(SyntaxError);
        }
    }

    // FLUSHDB/FLUSHALL [ASYNC|SYNC]: both modes flush at once here.
    private static bool IsFlushSyntaxValid(byte[][] args) =>
        args.Length == 1 || (args.Length == 2 && (CString.IsOption(args[1], "sync"u8) || CString.IsOption(args[1], "async"u8)));

    // EXPIREAT/PEXPIREAT key deadline [NX|XX|GT|LT]. A deadline not after now deletes the key.
    private void ExpireAt(ClientSession session, byte[][] args, ReplyWriter reply, long now, string command, bool inSeconds)
    {
        bool nx = false;
        bool xx = false;
        bool gt = false;
        bool lt = false;
        for (int j = 3; j < args.Length; j++)
        {
            if (CString.IsOption(args[j], "nx"u8))
            {
                nx = true;
            }
            else if (CString.IsOption(args[j], "xx"u8))
            {
                xx = true;
            }
            else if (CString.IsOption(args[j], "gt"u8))
            {
                gt = true;
            }
            else if (CString.IsOption(args[j], "lt"u8))
            {
                lt = true;
            }
            else
            {
                reply.Error([.. "Unsupported option "u8, .. CString.Of(args[j])]);
                return;
            }
        }

        if (nx && (xx || gt || lt))
        {
            reply.Error("NX and XX, GT or LT options at the same time are not compatible"u8);
            return;
        }

        if (gt && lt)
        {
            reply.Error("GT and LT options at the same time are not compatible"u8);
            return;
        }

        if (!_integers.TryParse(args[2], out long deadline))
        {
            reply.Error(NotAnInteger);
            return;
        }

        if (inSeconds)
        {
            if (deadline > long.MaxValue / 1000 || deadline < long.MinValue / 1000)
            {
                reply.Error(Encoding.ASCII.GetBytes($"invalid expire time in '{command}' command"));
                return;
            }

            deadline *= 1000;
        }

        int db = session.Database;
        if (!_keyspace.TryGet(db, args[1], now, out _, out long current))
        {
            reply.Integer(0);
            return;
        }

        bool hasDeadline = current != IKeyspace.NoDeadline;
        if ((nx && hasDeadline)
            || (xx && !hasDeadline)
            || (gt && (!hasDeadline || deadline <= current))
            || (lt && hasDeadline && deadline >= current))
        {
            reply.Integer(0);
            return;
        }

        if (deadline <= now)
        {
            _keyspace.Remove(db, args[1], now);
        }
        else
        {
            _keyspace.SetDeadline(db, args[1], deadline, now);
        }

        reply.Integer(1);
    }

    private void Persist(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        int db = session.Database;
        if (_keyspace.TryGet(db, args[1], now, out _, out long deadline) && deadline != IKeyspace.NoDeadline)
        {
            _keyspace.SetDeadline(db, args[1], IKeyspace.NoDeadline, now);
            reply.Integer(1);
        }
        else
        {
            reply.Integer(0);
        }
    }

    // -2 without the key, -1 without a deadline. Seconds round to nearest the way Redis computes them.
    private void ExpireTime(ClientSession session, byte[][] args, ReplyWriter reply, long now, bool inSeconds)
    {
        if (!_keyspace.TryGet(session.Database, args[1], now, out _, out long deadline))
        {
            reply.Integer(-2);
        }
        else if (deadline == IKeyspace.NoDeadline)
        {
            reply.Integer(-1);
        }
        else
        {
            long at = Math.Max(deadline, 0);
            reply.Integer(inSeconds ? (long)(unchecked((ulong)(at + 500)) / 1000) : at);
        }
    }
}
