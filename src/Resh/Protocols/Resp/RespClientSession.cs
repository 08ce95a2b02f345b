using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Per-connection RESP state: the selected database, the protocol version (HELLO), and an open
/// MULTI block, which is held here and submitted as one unit on EXEC. Not thread safe.
/// </summary>
internal sealed partial class RespClientSession : IClientSession
{
    private static readonly byte[] Ok = "+OK\r\n"u8.ToArray();
    private static readonly byte[] Queued = "+QUEUED\r\n"u8.ToArray();
    private static readonly byte[] MultiCommand = "*1\r\n$5\r\nMULTI\r\n"u8.ToArray();
    private static readonly byte[] ExecCommand = "*1\r\n$4\r\nEXEC\r\n"u8.ToArray();
    private static readonly byte[] NestedMulti = "-ERR MULTI calls can not be nested\r\n"u8.ToArray();
    private static readonly byte[] ExecWithoutMulti = "-ERR EXEC without MULTI\r\n"u8.ToArray();
    private static readonly byte[] DiscardWithoutMulti = "-ERR DISCARD without MULTI\r\n"u8.ToArray();
    private static readonly byte[] ExecAbort = "-EXECABORT Transaction discarded because of previous errors.\r\n"u8.ToArray();
    private static readonly byte[] SelectInMulti = "-ERR resh: select inside MULTI is not supported under replication\r\n"u8.ToArray();
    private static readonly byte[] HelloInMulti = "-ERR resh: hello inside MULTI is not supported under replication\r\n"u8.ToArray();
    private static readonly byte[] NotInteger = "-ERR value is not an integer or out of range\r\n"u8.ToArray();
    private static readonly byte[] DbOutOfRange = "-ERR DB index is out of range\r\n"u8.ToArray();
    private static readonly byte[] NoProto = "-NOPROTO unsupported protocol version\r\n"u8.ToArray();
    private static readonly byte[] BadProtoVersion = "-ERR Protocol version is not an integer or out of range\r\n"u8.ToArray();
    private static readonly byte[] NoAuth = "-NOAUTH Authentication required.\r\n"u8.ToArray();
    private static readonly byte[] WrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"u8.ToArray();
    private static readonly byte[] NoPasswordConfigured = "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"u8.ToArray();
    private static readonly byte[] HelloNoAuth = "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"u8.ToArray();
    private static readonly byte[] ResetReply = "+RESET\r\n"u8.ToArray();
    private static readonly byte[] BadClientName = "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"u8.ToArray();
    private static readonly byte[] InvalidSetEx = "-ERR invalid expire time in 'setex' command\r\n"u8.ToArray();
    private static readonly byte[] InvalidPSetEx = "-ERR invalid expire time in 'psetex' command\r\n"u8.ToArray();

    private readonly RespProtocol _protocol;
    private readonly long _sessionId;
    private readonly RespRequestParser _parser;
    private readonly PooledBuffer _out = new();
    private readonly PooledBuffer _multi = new();
    private int _db;
    private int _protover = 2;
    private bool _authenticated;
    private bool _inMulti;
    private bool _multiAborted;
    private bool _multiHinted;
    private int _queued;

    public RespClientSession(RespProtocol protocol, long sessionId)
    {
        _protocol = protocol;
        _sessionId = sessionId;
        _parser = new RespRequestParser(protocol.MaxInlineBytes, protocol.MaxBulkBytes, protocol.MaxArguments, protocol.MaxQueryBufferBytes);
        _authenticated = protocol.Users.Count == 0;
    }

    /// <summary>The session context carried by every submitted unit: database | RESP3 flag.</summary>
    public int Context => RespProtocol.MakeContext(_db, _protover == 3);

    /// <summary>The client name given with HELLO SETNAME (kept by the gateway only).</summary>
    public string? ClientName { get; private set; }

    public SessionAction Next(ref ReadOnlySequence<byte> buffer)
    {
        _out.Reset();
        if (!_inMulti)
        {
            // The previous EXEC's block was valid until this call.
            _multi.Reset();
        }

        var start = buffer;
        switch (_parser.Parse(ref buffer))
        {
            case RequestStatus.Incomplete:
                return SessionAction.NeedMore;
            case RequestStatus.Fatal:
                buffer = buffer.Slice(buffer.End);
                return Fatal(_parser.FatalReply);
            default:
                if (Paused() is { } hold)
                {
                    // Read again, and dispatched, when the pause ends: deadlines and ids are fixed then.
                    buffer = start;
                    return new SessionAction(SessionActionKind.Wait, ReadOnlyMemory<byte>.Empty, ReplyCount: 0, Hold: hold);
                }

                var mode = _replyMode;
                return Silenced(Dispatch(), mode);
        }
    }

    public void Closed()
    {
        DropMulti();
        _blocked?.Dispose();
        _protocol.PubSub.Unregister(_sessionId);
        _protocol.Order.Unmonitor(_sessionId);
        _protocol.Sessions.TryRemove(_sessionId, out _);
        _parser.Dispose();
        _out.Dispose();
        _multi.Dispose();
    }

    /// <summary>
    /// CLIENT PAUSE: what this request waits for, or null. Commands about the connection itself, and those queued in
    /// MULTI (only EXEC runs them), go on; in a WRITE pause, read-only commands too.
    /// </summary>
    private Task? Paused()
    {
        if (!_protocol.Pause.Active)
        {
            return null;
        }

        var name = _parser.Arg(0);
        if ((_inMulti && !Ascii.EqualsIgnoreCase(name, "EXEC"u8)) || Ascii.EqualsIgnoreCase(name, "CLIENT"u8) || Ascii.EqualsIgnoreCase(name, "AUTH"u8)
            || Ascii.EqualsIgnoreCase(name, "HELLO"u8) || Ascii.EqualsIgnoreCase(name, "QUIT"u8) || Ascii.EqualsIgnoreCase(name, "RESET"u8))
        {
            return null;
        }

        return _protocol.Pause.Holding(RespReadOnly.Is(name));
    }

    private SessionAction Dispatch()
    {
        var argc = _parser.ArgCount;
        var name = _parser.Arg(0);
        if (Ascii.EqualsIgnoreCase(name, "AUTH"u8))
        {
            return Auth(argc);
        }

        if (!_authenticated && !Ascii.EqualsIgnoreCase(name, "HELLO"u8) && !Ascii.EqualsIgnoreCase(name, "QUIT"u8))
        {
            return _inMulti ? AbortBlock(NoAuth) : Local(NoAuth);
        }

        if (Ascii.EqualsIgnoreCase(name, "RESET"u8) && argc == 1)
        {
            return Reset();
        }

        if (!_inMulti && argc >= 2 && Ascii.EqualsIgnoreCase(name, "CLIENT"u8) && TryClientLocally(argc, out var local))
        {
            return local;
        }

        if (_protocol.Rejected.TryReject(name, argc > 1 ? _parser.Arg(1) : default, argc, out var rejection))
        {
            if (_inMulti)
            {
                _multiAborted = true;
            }

            return Local(rejection);
        }

        RememberCommand(name);
        if (argc == 1 && !_inMulti && Ascii.EqualsIgnoreCase(name, "MONITOR"u8))
        {
            return Monitor();
        }

        var kind = RespCommands.Identify(name);
        if (TryRefuseWhileSubscribed(kind, name, argc, out var refused))
        {
            return refused;
        }

        switch (kind)
        {
            case RespCommandKind.Quit:
                DropMulti();
                return new SessionAction(SessionActionKind.LocalReply, Ok, Context, ReplyCount: 0, CloseAfterReply: true);
            case RespCommandKind.Multi:
                return Multi(argc);
            case RespCommandKind.Exec:
                return Exec(argc);
            case RespCommandKind.Discard:
                return Discard(argc);
            case RespCommandKind.Select:
                return _inMulti ? AbortBlock(SelectInMulti) : Select(argc);
            case RespCommandKind.Hello:
                return _inMulti ? AbortBlock(HelloInMulti) : Hello(argc);
        }

        if (RespCommands.IsOwned(kind))
        {
            return Owned(kind, argc);
        }

        var bytes = _parser.Request;
        if (_protocol.RewritesExpiry && RespCommands.IsClockDependent(kind))
        {
            var now = kind == RespCommandKind.XAdd ? _protocol.NextStreamMillis() : _protocol.NowMillis();
            var clock = new ExpiryClock(now, _protocol.Keeper is not null);
            switch (RespExpiryRewriter.Rewrite(_parser, kind, ref clock, _out))
            {
                case RewriteResult.Rewritten:
                    bytes = _out.WrittenMemory;
                    if (clock.Deadline > now)
                    {
                        _protocol.Keeper!.Schedule(_db, _parser.Arg(1), clock.Deadline);
                    }

                    break;
                case RewriteResult.InvalidExpire when !_inMulti:
                    return Local(kind == RespCommandKind.SetEx ? InvalidSetEx : InvalidPSetEx);
                case RewriteResult.TooManyArguments:
                    var tooMany = Encoding.ASCII.GetBytes($"-ERR resh: {kind.ToString().ToLowerInvariant()} with more than {RespRequestParser.TrackedArguments} arguments is not supported under replication: its deadline could not be fixed by the gateway\r\n");
                    return _inMulti ? AbortBlock(tooMany) : Local(tooMany);
            }
        }
        else if (RespCommands.MovesDeadline(kind))
        {
            CheckMovedDeadline(kind, argc);
        }

        var hint = RespReplyOrder.Of(kind, name, argc > 1 ? _parser.Arg(1) : default, argc);
        if (_inMulti)
        {
            _multiHinted |= hint != RespReplyOrder.Ordered;
            return Queue(bytes.Span);
        }

        return new SessionAction(SessionActionKind.Submit, bytes, Context, ReplyHint: hint, ReadOnly: kind == RespCommandKind.Other && RespReadOnly.Is(name));
    }

    private SessionAction Multi(int argc)
    {
        if (_inMulti)
        {
            return Local(NestedMulti);
        }

        if (argc != 1)
        {
            return Local(WrongArguments("multi"));
        }

        _multi.Reset();
        _multi.Write(MultiCommand);
        _inMulti = true;
        _multiAborted = false;
        _queued = 0;
        return Local(Ok);
    }

    private SessionAction Exec(int argc)
    {
        if (!_inMulti)
        {
            return Local(ExecWithoutMulti);
        }

        if (argc != 1)
        {
            return AbortBlock(WrongArguments("exec"));
        }

        if (_multiAborted)
        {
            DropMulti();
            return _watching ? Unwatch(new FixedReply(ExecAbort)) : Local(ExecAbort);
        }

        _multi.Write(ExecCommand);
        var replies = _queued + 2;
        var hint = _multiHinted ? RespReplyOrder.ExecElements : RespReplyOrder.Ordered;
        _inMulti = false;
        _multiHinted = false;
        _queued = 0;

        // A watched block is decided where it lands in the log (RespOrder): as it is, or aborted.
        var watched = _watching ? new WatchedExec(_protover == 3) : null;
        _watching = false;
        return new SessionAction(SessionActionKind.Submit, _multi.WrittenMemory, Context, replies, ReplySelection.Last, ReplyHint: hint, Transform: watched);
    }

    private SessionAction Discard(int argc)
    {
        if (!_inMulti)
        {
            return Local(DiscardWithoutMulti);
        }

        if (argc != 1)
        {
            return AbortBlock(WrongArguments("discard"));
        }

        DropMulti();
        return _watching ? Unwatch() : Local(Ok);
    }

    private SessionAction Queue(ReadOnlySpan<byte> command)
    {
        if (_queued >= _protocol.MaxQueuedCommands)
        {
            DropMulti();
            return Fatal(Encoding.ASCII.GetBytes($"-ERR resh: MULTI block exceeds max-queued-commands ({_protocol.MaxQueuedCommands})\r\n"));
        }

        if ((long)_multi.Count + command.Length + ExecCommand.Length > _protocol.MaxQueryBufferBytes)
        {
            DropMulti();
            return Fatal(Encoding.ASCII.GetBytes($"-ERR resh: MULTI block exceeds max-query-buffer-bytes ({_protocol.MaxQueryBufferBytes})\r\n"));
        }

        _multi.Write(command);
        _queued++;
        return Local(Queued);
    }

    private SessionAction Select(int argc)
    {
        if (argc != 2)
        {
            return Local(WrongArguments("select"));
        }

        if (!RespEncoding.TryParseInteger(_parser.Arg(1), out var index) || index < int.MinValue || index > int.MaxValue)
        {
            return Local(NotInteger);
        }

        if (index < 0 || index >= _protocol.Databases)
        {
            return Local(DbOutOfRange);
        }

        _db = (int)index;
        return Local(Ok);
    }

    private SessionAction AbortBlock(byte[] reply)
    {
        _multiAborted = true;
        return Local(reply);
    }

    private void DropMulti()
    {
        _inMulti = false;
        _multiAborted = false;
        _multiHinted = false;
        _queued = 0;
        _multi.Reset();
    }

    private SessionAction Local(ReadOnlyMemory<byte> reply) =>
        new(SessionActionKind.LocalReply, reply, Context, ReplyCount: 0);

    private SessionAction Fatal(byte[] reply)
    {
        DropMulti();
        return new SessionAction(SessionActionKind.Fatal, reply, Context, ReplyCount: 0, CloseAfterReply: true);
    }

    private static byte[] WrongArguments(string command) =>
        Encoding.ASCII.GetBytes($"-ERR wrong number of arguments for '{command}' command\r\n");
}
