using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// CLIENT for the gateway's sessions (the replicas' connections are shared and not the clients'), and MONITOR, which
/// streams the decided request order as the order observer sees it.
/// </summary>
internal sealed partial class RespClientSession
{
    private static readonly byte[] ClientNotSupported = "-ERR resh: this CLIENT subcommand is not supported under replication\r\n"u8.ToArray();
    private static readonly byte[] NoSuchClient = "-ERR No such client\r\n"u8.ToArray();

    private readonly long _created = Stopwatch.GetTimestamp();
    private long _lastCommand = Stopwatch.GetTimestamp();
    private readonly byte[] _lastName = new byte[32];
    private int _lastNameLength;
    private IClientLink? _link;
    private ReplyMode _replyMode;

    private enum ReplyMode
    {
        On,
        Off,
        Skip,
    }

    /// <summary>The client's address, as CLIENT LIST and MONITOR show it.</summary>
    internal string Address => _link?.Remote?.ToString() ?? "?";

    /// <summary>One CLIENT LIST line of this session.</summary>
    internal string Describe()
    {
        var now = Stopwatch.GetTimestamp();
        var flags = (SubscriptionCount > 0 ? "P" : string.Empty) + (_inMulti ? "x" : string.Empty) + (_blocked is not null ? "b" : string.Empty);
        return string.Create(CultureInfo.InvariantCulture, $"id={_sessionId} addr={Address} laddr={_protocol.ListenAddress} fd=-1 name={ClientName} age={(long)Stopwatch.GetElapsedTime(_created, now).TotalSeconds} idle={(long)Stopwatch.GetElapsedTime(_lastCommand, now).TotalSeconds} flags={(flags.Length == 0 ? "N" : flags)} db={_db} sub={_subscribed[0].Count} psub={_subscribed[1].Count} ssub={_subscribed[2].Count} multi={(_inMulti ? _queued : -1)} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={(_lastNameLength == 0 ? "NULL" : Encoding.ASCII.GetString(_lastName, 0, _lastNameLength).ToLowerInvariant())} user=default redir=-1 resp={_protover}\n");
    }

    /// <summary>CLIENT LIST/INFO/KILL/NO-EVICT/NO-TOUCH/REPLY over the gateway's sessions; false for what stays refused.</summary>
    private bool TryClientOfGateway(int argc, out SessionAction action)
    {
        action = default;
        if (Is(1, "LIST"u8))
        {
            var lines = new StringBuilder();
            foreach (var session in _protocol.Sessions.Values.OrderBy(s => s._sessionId))
            {
                if (argc >= 4 && Is(2, "ID"u8) && !Ids(3, argc).Contains(session._sessionId))
                {
                    continue;
                }

                lines.Append(session.Describe());
            }

            action = Bulk(lines.ToString());
            return true;
        }

        if (Is(1, "INFO"u8) && argc == 2)
        {
            action = Bulk(Describe());
            return true;
        }

        if ((Is(1, "NO-EVICT"u8) || Is(1, "NO-TOUCH"u8)) && argc == 3 && (Is(2, "ON"u8) || Is(2, "OFF"u8)))
        {
            action = Local(Ok);
            return true;
        }

        if (Is(1, "REPLY"u8) && argc == 3)
        {
            _replyMode = Is(2, "ON"u8) ? ReplyMode.On : Is(2, "OFF"u8) ? ReplyMode.Off : Is(2, "SKIP"u8) ? ReplyMode.Skip : _replyMode;
            action = Local(_replyMode == ReplyMode.On ? Ok : ReadOnlyMemory<byte>.Empty);
            return Is(2, "ON"u8) || Is(2, "OFF"u8) || Is(2, "SKIP"u8);
        }

        if (Is(1, "KILL"u8) && argc >= 3)
        {
            action = Kill(argc);
            return true;
        }

        if (Is(1, "PAUSE"u8) && argc is 3 or 4)
        {
            action = Pause(argc);
            return true;
        }

        if (Is(1, "UNPAUSE"u8) && argc == 2)
        {
            _protocol.Pause.End();
            action = Local(Ok);
            return true;
        }

        return false;
    }

    /// <summary>CLIENT PAUSE timeout [WRITE|ALL]: this gateway's sessions hold their requests (all, or all but reads).</summary>
    private SessionAction Pause(int argc)
    {
        var all = argc == 3 || Is(3, "ALL"u8);
        if (argc == 4 && !all && !Is(3, "WRITE"u8))
        {
            return Local(SyntaxError);
        }

        if (!RespEncoding.TryParseInteger(_parser.Arg(2), out var millis) || millis < 0)
        {
            return Local("-ERR timeout is not an integer or out of range\r\n"u8.ToArray());
        }

        _protocol.Pause.Start(_protocol.Clock.GetUtcNow().AddMilliseconds(Math.Min(millis, 100L * 365 * 24 * 3600 * 1000)), all);
        return Local(Ok);
    }

    /// <summary>Keeps the command name for CLIENT LIST without allocating.</summary>
    private void RememberCommand(ReadOnlySpan<byte> name)
    {
        _lastNameLength = Math.Min(name.Length, _lastName.Length);
        name[.._lastNameLength].CopyTo(_lastName);
    }

    private HashSet<long> Ids(int from, int argc)
    {
        var ids = new HashSet<long>();
        for (var i = from; i < argc && _parser.Has(i); i++)
        {
            if (RespEncoding.TryParseInteger(_parser.Arg(i), out var id))
            {
                ids.Add(id);
            }
        }

        return ids;
    }

    /// <summary>CLIENT KILL addr (old form, +OK or an error) or CLIENT KILL [ID id] [ADDR addr] [SKIPME yes|no] (a count).</summary>
    private SessionAction Kill(int argc)
    {
        if (argc == 3)
        {
            var address = Encoding.ASCII.GetString(_parser.Arg(2));
            var target = _protocol.Sessions.Values.FirstOrDefault(s => s.Address == address);
            if (target is null)
            {
                return Local(NoSuchClient);
            }

            target.Kill("killed by CLIENT KILL");
            return Local(Ok);
        }

        long? id = null;
        string? addr = null;
        var skipMe = true;
        for (var i = 2; i + 1 < argc && _parser.Has(i + 1); i += 2)
        {
            if (Is(i, "ID"u8) && RespEncoding.TryParseInteger(_parser.Arg(i + 1), out var value))
            {
                id = value;
            }
            else if (Is(i, "ADDR"u8))
            {
                addr = Encoding.ASCII.GetString(_parser.Arg(i + 1));
            }
            else if (Is(i, "SKIPME"u8))
            {
                skipMe = !Is(i + 1, "NO"u8);
            }
            else
            {
                return Local(SyntaxError);
            }
        }

        var killed = 0;
        foreach (var session in _protocol.Sessions.Values)
        {
            if ((id is null || session._sessionId == id) && (addr is null || session.Address == addr) && !(skipMe && session == this))
            {
                session.Kill("killed by CLIENT KILL");
                killed++;
            }
        }

        return Local(RespReplyReader.Integer(killed));
    }

    private void Kill(string reason) => _link?.Close(reason);

    private SessionAction Bulk(string text)
    {
        _out.Reset();
        RespEncoding.WriteBulk(_out, Encoding.UTF8.GetBytes(text));
        return Local(_out.WrittenMemory);
    }

    /// <summary>MONITOR: from now on this session receives every request in the decided order.</summary>
    private SessionAction Monitor()
    {
        if (_link is null)
        {
            return Local(ClientNotSupported);
        }

        _protocol.Order.Monitor(_sessionId, _link);
        return Local(Ok);
    }

    /// <summary>
    /// CLIENT REPLY OFF/SKIP: the replies of the requests after it are not sent (the requests still run);
    /// <paramref name="before"/> is the mode when the request arrived (a CLIENT REPLY itself is answered by its own rule).
    /// </summary>
    private SessionAction Silenced(SessionAction action, ReplyMode before)
    {
        _lastCommand = Stopwatch.GetTimestamp();
        if (before == ReplyMode.On || _replyMode != before || action.Kind is SessionActionKind.NeedMoreData or SessionActionKind.Fatal)
        {
            return action;
        }

        if (before == ReplyMode.Skip)
        {
            _replyMode = ReplyMode.On;
        }

        return action.Kind == SessionActionKind.LocalReply
            ? action with { Bytes = ReadOnlyMemory<byte>.Empty }
            : action with { Transform = new Silent(action.Transform) };
    }

    /// <summary>Runs the transform a request has (a blocking wait still waits), then sends nothing.</summary>
    private sealed class Silent(IReplyTransform? inner) : IReplyTransform
    {
        public async ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken)
        {
            if (inner is not null)
            {
                await inner.ApplyAsync(reply, cancellationToken);
            }

            return ReadOnlyMemory<byte>.Empty;
        }
    }

    /// <summary>
    /// CLIENT SETNAME, GETNAME, SETINFO and ID concern only this session, so the gateway answers them (client
    /// libraries send SETNAME/SETINFO when they connect). Other CLIENT subcommands stay refused by the profile.
    /// </summary>
    private bool TryClientLocally(int argc, out SessionAction action)
    {
        var sub = _parser.Arg(1);
        action = default;
        if (Ascii.EqualsIgnoreCase(sub, "SETNAME"u8))
        {
            if (argc != 3)
            {
                action = Local("-ERR wrong number of arguments for 'client|setname' command\r\n"u8.ToArray());
                return true;
            }

            var value = _parser.Arg(2);
            if (value.IndexOfAnyExceptInRange((byte)'!', (byte)'~') >= 0)
            {
                action = Local(BadClientName);
                return true;
            }

            ClientName = value.IsEmpty ? null : Encoding.ASCII.GetString(value);
            action = Local(Ok);
            return true;
        }

        if (TryClientOfGateway(argc, out action))
        {
            return true;
        }

        if (Ascii.EqualsIgnoreCase(sub, "GETNAME"u8) && argc == 2)
        {
            if (ClientName is null)
            {
                action = Local(_protover == 3 ? "_\r\n"u8.ToArray() : "$-1\r\n"u8.ToArray());
            }
            else
            {
                RespEncoding.WriteBulk(_out, Encoding.ASCII.GetBytes(ClientName));
                action = Local(_out.WrittenMemory);
            }

            return true;
        }

        if (Ascii.EqualsIgnoreCase(sub, "SETINFO"u8) && argc == 4)
        {
            action = Local(Ok);
            return true;
        }

        if (Ascii.EqualsIgnoreCase(sub, "ID"u8) && argc == 2)
        {
            RespEncoding.WriteLine(_out, (byte)':', _sessionId);
            action = Local(_out.WrittenMemory);
            return true;
        }

        return false;
    }
}
