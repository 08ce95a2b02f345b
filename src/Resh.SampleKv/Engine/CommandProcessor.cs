using System.Text;
using Resh.SampleKv.Protocol;

namespace Resh.SampleKv.Engine;

/// <summary>
/// Dispatches requests to commands, strictly one at a time under a single lock, so replicas given
/// the same requests go through the same states. Replies follow Redis 7 byte for byte; see the
/// README beside this project for the few deliberate deviations (sorted KEYS, smallest RANDOMKEY, ...).
/// </summary>
internal sealed partial class CommandProcessor
{
    /// <summary>The number of databases (SELECT 0-15).</summary>
    public const int DatabaseCount = 16;

    private const int LongestCommandName = 16;

    private readonly Lock _gate = new();
    private readonly IKeyspace _keyspace;
    private readonly IIntegerCodec _integers;
    private readonly IGlobMatcher _glob;
    private readonly Func<long> _clock;
    private readonly Dictionary<string, CommandSpec> _commands = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CommandSpec>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    /// <param name="parts">The variant's keyspace, integer codec and glob matcher.</param>
    /// <param name="clock">Unix time in milliseconds; the wall clock when null.</param>
    public CommandProcessor(VariantParts parts, Func<long>? clock = null)
    {
        _keyspace = parts.Keyspace;
        _integers = parts.Integers;
        _glob = parts.Glob;
        _clock = clock ?? (() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        _lookup = _commands.GetAlternateLookup<ReadOnlySpan<char>>();
        RegisterCommands();
    }

    /// <summary>The variant's integer codec, which the protocol layer uses too.</summary>
    public IIntegerCodec Integers => _integers;

    /// <summary>
    /// Runs one request (at least one argument) and writes its reply. Returns true when the
    /// connection must be closed once the reply is flushed (QUIT).
    /// </summary>
    public bool Execute(ClientSession session, byte[][] args, ReplyWriter reply)
    {
        lock (_gate)
        {
            // Redis answers QUIT before anything else, even inside MULTI, and compares it as a C string.
            if (CString.IsOption(args[0], "quit"u8))
            {
                reply.Ok();
                return true;
            }

            CommandSpec? spec = Lookup(args[0]);
            if (spec is null)
            {
                FailQueuing(session);
                reply.Error(UnknownCommandMessage(args));
                return false;
            }

            if (!spec.AcceptsArgumentCount(args.Length))
            {
                FailQueuing(session);
                if (spec.Name == "exec")
                {
                    // Redis turns a rejected EXEC into an abort of the transaction, if there is one.
                    if (session.InTransaction)
                    {
                        session.EndTransaction();
                    }

                    reply.Error([.. "-EXECABORT Transaction discarded because of: "u8, .. WrongArity(spec.Name)]);
                }
                else
                {
                    reply.Error(WrongArity(spec.Name));
                }

                return false;
            }

            if (session.InTransaction && !spec.RunsInsideTransaction)
            {
                session.Enqueue(new QueuedCommand(spec, args));
                reply.Simple("QUEUED"u8);
                return false;
            }

            spec.Handler(session, args, reply, _clock());
            return false;
        }
    }

    private static void FailQueuing(ClientSession session)
    {
        if (session.InTransaction)
        {
            session.TransactionFailed = true;
        }
    }

    private static byte[] WrongArity(string name) => Encoding.ASCII.GetBytes($"wrong number of arguments for '{name}' command");

    // "unknown command '%.128s', with args beginning with: " then "'%.*s' " per argument while the list
    // is shorter than 128 bytes, each cut to what is left of those 128 (C strings: up to a NUL).
    private static byte[] UnknownCommandMessage(byte[][] args)
    {
        var message = new List<byte>(256);
        message.AddRange("unknown command '"u8);
        ReadOnlySpan<byte> name = CString.Of(args[0]);
        message.AddRange(name[..Math.Min(name.Length, 128)]);
        message.AddRange("', with args beginning with: "u8);
        int listed = 0;
        for (int i = 1; i < args.Length && listed < 128; i++)
        {
            ReadOnlySpan<byte> arg = CString.Of(args[i]);
            arg = arg[..Math.Min(arg.Length, 128 - listed)];
            message.Add((byte)'\'');
            message.AddRange(arg);
            message.Add((byte)'\'');
            message.Add((byte)' ');
            listed += arg.Length + 3;
        }

        return [.. message];
    }

    private CommandSpec? Lookup(byte[] name)
    {
        if (name.Length == 0 || name.Length > LongestCommandName)
        {
            return null;
        }

        Span<char> lower = stackalloc char[name.Length];
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            lower[i] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b + ('a' - 'A') : b);
        }

        return _lookup.TryGetValue(lower, out CommandSpec? spec) ? spec : null;
    }

    private void Register(string name, int arity, CommandHandler handler, bool runsInsideTransaction = false) =>
        _commands.Add(name, new CommandSpec(name, arity, handler, runsInsideTransaction));

    private void RegisterCommands()
    {
        Register("ping", -1, Ping);
        Register("echo", 2, Echo);
        Register("hello", -1, Hello);
        Register("command", -1, Command);
        Register("select", 2, Select);
        Register("digest", 1, Digest);

        Register("get", 2, Get);
        Register("set", -3, Set);
        Register("getset", 3, GetSet);
        Register("setnx", 3, SetNx);
        Register("mget", -2, MGet);
        Register("mset", -3, MSet);
        Register("msetnx", -3, MSetNx);
        Register("incr", 2, (s, a, r, now) => IncrementBy(s, a[1], 1, r, now));
        Register("decr", 2, (s, a, r, now) => IncrementBy(s, a[1], -1, r, now));
        Register("incrby", 3, IncrBy);
        Register("decrby", 3, DecrBy);
        Register("append", 3, Append);
        Register("strlen", 2, StrLen);

        Register("del", -2, Del);
        Register("exists", -2, Exists);
        Register("keys", 2, Keys);
        Register("dbsize", 1, DbSize);
        Register("randomkey", 1, RandomKey);
        Register("flushdb", -1, FlushDb);
        Register("flushall", -1, FlushAll);
        Register("expireat", -3, (s, a, r, now) => ExpireAt(s, a, r, now, "expireat", inSeconds: true));
        Register("pexpireat", -3, (s, a, r, now) => ExpireAt(s, a, r, now, "pexpireat", inSeconds: false));
        Register("persist", 2, Persist);
        Register("expiretime", 2, (s, a, r, now) => ExpireTime(s, a, r, now, inSeconds: true));
        Register("pexpiretime", 2, (s, a, r, now) => ExpireTime(s, a, r, now, inSeconds: false));

        Register("multi", 1, Multi, runsInsideTransaction: true);
        Register("exec", 1, Exec, runsInsideTransaction: true);
        Register("discard", 1, Discard, runsInsideTransaction: true);
    }

    private void Multi(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (session.InTransaction)
        {
            reply.Error("MULTI calls can not be nested"u8);
            return;
        }

        session.BeginTransaction();
        reply.Ok();
    }

    private void Exec(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (!session.InTransaction)
        {
            reply.Error("EXEC without MULTI"u8);
            return;
        }

        bool failed = session.TransactionFailed;
        QueuedCommand[] queued = session.EndTransaction();
        if (failed)
        {
            reply.Error("-EXECABORT Transaction discarded because of previous errors."u8);
            return;
        }

        // One clock reading for the whole transaction: it runs as if at a single instant.
        reply.Array(queued.Length);
        foreach (QueuedCommand command in queued)
        {
            command.Spec.Handler(session, command.Args, reply, now);
        }
    }

    private void Discard(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (!session.InTransaction)
        {
            reply.Error("DISCARD without MULTI"u8);
            return;
        }

        session.EndTransaction();
        reply.Ok();
    }
}
