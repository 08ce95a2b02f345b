using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// AUTH, HELLO ... AUTH and RESET. Users come from the resh configuration (service.requirepass, service.users); the
/// gateway checks them, and an unauthenticated session reaches neither the log nor a replica.
/// </summary>
internal sealed partial class RespClientSession
{
    /// <summary>AUTH password (the user "default") or AUTH user password, as Redis answers them.</summary>
    private SessionAction Auth(int argc)
    {
        if (argc is < 2 or > 3)
        {
            return Local(WrongArguments("auth"));
        }

        if (argc == 2 && _protocol.Users.Count == 0)
        {
            return Local(NoPasswordConfigured);
        }

        var ok = argc == 2 ? TryAuthenticate("default"u8, _parser.Arg(1)) : TryAuthenticate(_parser.Arg(1), _parser.Arg(2));
        return Local(ok ? Ok : WrongPass);
    }

    /// <summary>Checks a user and password in constant time; without configured users only "default" exists, with any password (Redis's nopass).</summary>
    private bool TryAuthenticate(ReadOnlySpan<byte> user, ReadOnlySpan<byte> password)
    {
        var users = _protocol.Users;
        if (users.Count == 0)
        {
            return user.SequenceEqual("default"u8);
        }

        if (!users.TryGetValue(Encoding.UTF8.GetString(user), out var expected))
        {
            return false;
        }

        var ok = CryptographicOperations.FixedTimeEquals(SHA256.HashData(password), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
        _authenticated |= ok;
        return ok;
    }

    /// <summary>RESET: the session as a new connection has it (database 0, RESP2, no block, no watch, no subscription, not authenticated).</summary>
    private SessionAction Reset()
    {
        DropMulti();
        _db = 0;
        _protover = 2;
        ClientName = null;
        _authenticated = _protocol.Users.Count == 0;
        foreach (var set in _subscribed)
        {
            set.Clear();
        }

        _protocol.PubSub.Unsubscribe(_sessionId);
        return _watching ? Unwatch(new FixedReply(ResetReply)) : Local(ResetReply);
    }

    /// <summary>HELLO [protover [AUTH user pass] [SETNAME name]], answered by the gateway in the requested protocol.</summary>
    private SessionAction Hello(int argc)
    {
        var version = _protover;
        var next = 1;
        if (argc >= 2)
        {
            if (!RespEncoding.TryParseInteger(_parser.Arg(1), out var requested))
            {
                return Local(BadProtoVersion);
            }

            if (requested is < 2 or > 3)
            {
                return Local(NoProto);
            }

            version = (int)requested;
            next = 2;
        }

        string? name = null;
        for (var j = next; j < argc; j++)
        {
            if (!_parser.Has(j))
            {
                return Local("-ERR Syntax error in HELLO option\r\n"u8.ToArray());
            }

            var option = _parser.Arg(j);
            var more = argc - 1 - j;
            if (Ascii.EqualsIgnoreCase(option, "AUTH"u8) && more >= 2)
            {
                if (!_parser.Has(j + 2) || !TryAuthenticate(_parser.Arg(j + 1), _parser.Arg(j + 2)))
                {
                    return Local(WrongPass);
                }

                j += 2;
                continue;
            }

            if (Ascii.EqualsIgnoreCase(option, "SETNAME"u8) && more >= 1 && _parser.Has(j + 1))
            {
                var value = _parser.Arg(j + 1);
                if (value.IndexOfAnyExceptInRange((byte)'!', (byte)'~') >= 0)
                {
                    return Local(BadClientName);
                }

                name = Encoding.ASCII.GetString(value);
                j++;
                continue;
            }

            return Local(Encoding.UTF8.GetBytes($"-ERR Syntax error in HELLO option '{ProtocolText.Escape(option)}'\r\n"));
        }

        if (!_authenticated)
        {
            return Local(HelloNoAuth);
        }

        _protover = version;
        if (name is not null)
        {
            ClientName = name;
        }

        WriteHelloReply(_out, version, _sessionId);
        return Local(_out.WrittenMemory);
    }

    internal static void WriteHelloReply(IBufferWriter<byte> output, int version, long sessionId)
    {
        if (version == 3)
        {
            output.Write("%7\r\n"u8);
        }
        else
        {
            RespEncoding.WriteArrayHeader(output, 14);
        }

        RespEncoding.WriteBulk(output, "server"u8);
        RespEncoding.WriteBulk(output, "resh"u8);
        RespEncoding.WriteBulk(output, "version"u8);
        RespEncoding.WriteBulk(output, Encoding.ASCII.GetBytes(RespProtocol.GatewayVersion));
        RespEncoding.WriteBulk(output, "proto"u8);
        RespEncoding.WriteLine(output, (byte)':', version);
        RespEncoding.WriteBulk(output, "id"u8);
        RespEncoding.WriteLine(output, (byte)':', sessionId);
        RespEncoding.WriteBulk(output, "mode"u8);
        RespEncoding.WriteBulk(output, "standalone"u8);
        RespEncoding.WriteBulk(output, "role"u8);
        RespEncoding.WriteBulk(output, "master"u8);
        RespEncoding.WriteBulk(output, "modules"u8);
        output.Write("*0\r\n"u8);
    }
}
