using System.Text;
using Resh.SampleKv.Protocol;

namespace Resh.SampleKv.Engine;

internal sealed partial class CommandProcessor
{
    /// <summary>The server name HELLO reports.</summary>
    public const string ServerName = "resh-samplekv";

    /// <summary>The version HELLO reports.</summary>
    public const string ServerVersion = "1.0.0";

    private static ReadOnlySpan<byte> NotAnInteger => "value is not an integer or out of range"u8;

    private static ReadOnlySpan<byte> SyntaxError => "syntax error"u8;

    private void Ping(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (args.Length > 2)
        {
            reply.Error(WrongArity("ping"));
        }
        else if (args.Length == 2)
        {
            reply.Bulk(args[1]);
        }
        else
        {
            reply.Simple("PONG"u8);
        }
    }

    private void Echo(ClientSession session, byte[][] args, ReplyWriter reply, long now) => reply.Bulk(args[1]);

    // Clients call COMMAND / COMMAND DOCS to discover commands; an empty answer tells them nothing extra.
    private void Command(ClientSession session, byte[][] args, ReplyWriter reply, long now) => reply.Array(0);

    private void Select(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        if (!_integers.TryParse(args[1], out long index))
        {
            reply.Error(NotAnInteger);
        }
        else if (index < int.MinValue || index > int.MaxValue)
        {
            reply.Error("value is out of range, value must between -2147483648 and 2147483647"u8);
        }
        else if (index < 0 || index >= DatabaseCount)
        {
            reply.Error("DB index is out of range"u8);
        }
        else
        {
            session.Database = (int)index;
            reply.Ok();
        }
    }

    private void Digest(ClientSession session, byte[][] args, ReplyWriter reply, long now) =>
        reply.Bulk(Encoding.ASCII.GetBytes(_keyspace.Digest(now)));

    // HELLO [protover [AUTH username password] [SETNAME clientname]]. There are no passwords: like a
    // Redis whose default user has none, AUTH succeeds for "default" with any password. Unlike Redis the
    // reply has no "id" field, so replicas with different connection histories still answer alike.
    private void Hello(ClientSession session, byte[][] args, ReplyWriter reply, long now)
    {
        long version = 0;
        int next = 1;
        if (args.Length >= 2)
        {
            next = 2;
            if (!_integers.TryParse(args[1], out version))
            {
                reply.Error("Protocol version is not an integer or out of range"u8);
                return;
            }

            if (version < 2 || version > 3)
            {
                reply.Error("-NOPROTO unsupported protocol version"u8);
                return;
            }
        }

        byte[]? user = null;
        for (int j = next; j < args.Length; j++)
        {
            int more = args.Length - 1 - j;
            if (CString.IsOption(args[j], "auth"u8) && more >= 2)
            {
                user = args[j + 1];
                j += 2;
            }
            else if (CString.IsOption(args[j], "setname"u8) && more >= 1)
            {
                if (!IsValidClientName(args[j + 1]))
                {
                    reply.Error("Client names cannot contain spaces, newlines or special characters."u8);
                    return;
                }

                j++;
            }
            else
            {
                reply.Error([.. "Syntax error in HELLO option '"u8, .. CString.Of(args[j]), (byte)'\'']);
                return;
            }
        }

        if (user is not null && !user.AsSpan().SequenceEqual("default"u8))
        {
            reply.Error("-WRONGPASS invalid username-password pair or user is disabled."u8);
            return;
        }

        if (version != 0)
        {
            session.Protocol = (int)version;
        }

        reply.Map(6);
        reply.Bulk("server"u8);
        reply.Bulk(Encoding.ASCII.GetBytes(ServerName));
        reply.Bulk("version"u8);
        reply.Bulk(Encoding.ASCII.GetBytes(ServerVersion));
        reply.Bulk("proto"u8);
        reply.Integer(session.Protocol);
        reply.Bulk("mode"u8);
        reply.Bulk("standalone"u8);
        reply.Bulk("role"u8);
        reply.Bulk("master"u8);
        reply.Bulk("modules"u8);
        reply.Array(0);
    }

    private static bool IsValidClientName(byte[] name)
    {
        foreach (byte b in name)
        {
            if (b < (byte)'!' || b > (byte)'~')
            {
                return false;
            }
        }

        return true;
    }
}
