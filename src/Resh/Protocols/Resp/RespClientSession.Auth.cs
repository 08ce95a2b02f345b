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
}
