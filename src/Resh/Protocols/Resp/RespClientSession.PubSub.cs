using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Pub/sub of the session (<see cref="RespPubSub"/>): subscriptions are ordered markers that take effect at their
/// place in the log; PUBLISH is ordered and delivered by the order observer; PUBSUB answers from this gateway.
/// In RESP2 a subscribed session accepts only what Redis accepts in that state.
/// </summary>
internal sealed partial class RespClientSession
{
    private readonly HashSet<string>[] _subscribed = [new(StringComparer.Ordinal), new(StringComparer.Ordinal), new(StringComparer.Ordinal)];

    /// <summary>Channels and patterns this session subscribes to (RESP2's subscribed state when above zero).</summary>
    private int SubscriptionCount => _subscribed[0].Count + _subscribed[1].Count + _subscribed[2].Count;

    public void Attach(IClientLink sink)
    {
        _link = sink;
        _protocol.Sessions[_sessionId] = this;
        _protocol.PubSub.Register(_sessionId, sink, () => Volatile.Read(ref _protover) == 3);
    }

    /// <summary>RESP2 in the subscribed state: only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET, as in Redis.</summary>
    private bool TryRefuseWhileSubscribed(RespCommandKind kind, ReadOnlySpan<byte> name, int argc, out SessionAction action)
    {
        action = default;
        if (_protover == 3 || SubscriptionCount == 0 || kind is >= RespCommandKind.Subscribe and <= RespCommandKind.SUnsubscribe or RespCommandKind.Quit)
        {
            return false;
        }

        if (Ascii.EqualsIgnoreCase(name, "PING"u8) && argc <= 2)
        {
            _out.Reset();
            RespEncoding.WriteArrayHeader(_out, 2);
            RespEncoding.WriteBulk(_out, "pong"u8);
            RespEncoding.WriteBulk(_out, argc == 2 ? _parser.Arg(1) : []);
            action = Local(_out.WrittenMemory);
            return true;
        }

        action = Local(ProtocolText.OneLine("-ERR ", $"Can't execute '{Encoding.ASCII.GetString(name).ToLowerInvariant()}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", "\r\n"));
        return true;
    }

    private SessionAction PubSubCommand(RespCommandKind kind, int argc)
    {
        switch (kind)
        {
            case RespCommandKind.Publish or RespCommandKind.SPublish:
                if (argc != 3)
                {
                    return Queue(_parser.Request, RespReplyOrder.Ordered);
                }

                // Inside MULTI the replicas' count (0) is what the EXEC reply carries; the message is not delivered.
                return _inMulti ? Queue(_parser.Request, RespReplyOrder.Ordered) : Submit(_parser.Request, RespReplyOrder.Ordered, new PublishReply(_protocol.PubSub, kind == RespCommandKind.SPublish, _parser.Arg(1).ToArray()));
            case RespCommandKind.PubSub:
                return PubSubInfo(argc);
        }

        if (_inMulti)
        {
            return AbortBlock(Encoding.ASCII.GetBytes($"-ERR resh: {kind.ToString().ToLowerInvariant()} inside MULTI is not supported\r\n"));
        }

        var subscribe = kind is RespCommandKind.Subscribe or RespCommandKind.PSubscribe or RespCommandKind.SSubscribe;
        if (subscribe && argc < 2)
        {
            return Local(WrongArguments(kind.ToString().ToLowerInvariant()));
        }

        if (argc > RespRequestParser.TrackedArguments)
        {
            return Local(Encoding.ASCII.GetBytes($"-ERR resh: {kind.ToString().ToLowerInvariant()} of more than {RespRequestParser.TrackedArguments - 1} names in one call is not supported; call it again\r\n"));
        }

        var set = kind switch
        {
            RespCommandKind.PSubscribe or RespCommandKind.PUnsubscribe => _subscribed[(int)SubscriptionKind.Pattern],
            RespCommandKind.SSubscribe or RespCommandKind.SUnsubscribe => _subscribed[(int)SubscriptionKind.Shard],
            _ => _subscribed[(int)SubscriptionKind.Channel],
        };
        var names = new List<byte[]>();
        for (var i = 1; i < argc; i++)
        {
            names.Add(_parser.Arg(i).ToArray());
        }

        if (!subscribe && names.Count == 0)
        {
            names.AddRange(set.Order(StringComparer.Ordinal).Select(n => Encoding.Latin1.GetBytes(n)));
        }

        // The confirmations, counted as Redis counts: channels and patterns together, shard channels apart.
        var type = Encoding.ASCII.GetBytes(kind.ToString().ToLowerInvariant());
        var confirmations = new ArrayBufferWriter<byte>();
        foreach (var name in names)
        {
            var key = Encoding.Latin1.GetString(name);
            _ = subscribe ? set.Add(key) : set.Remove(key);
            WriteConfirmation(confirmations, type, name, Count(kind));
        }

        if (names.Count == 0)
        {
            WriteConfirmation(confirmations, type, null, Count(kind));
        }

        _out.Reset();
        RespScripts.WriteEval(_out, RespOrder.SubscribeScript, keys: 0, args: 1 + names.Count);
        RespEncoding.WriteBulk(_out, type);
        foreach (var name in names)
        {
            RespEncoding.WriteBulk(_out, name);
        }

        return Submit(_out.WrittenMemory, RespReplyOrder.Ordered, new FixedReply(confirmations.WrittenSpan.ToArray()));
    }

    private long Count(RespCommandKind kind) => kind is RespCommandKind.SSubscribe or RespCommandKind.SUnsubscribe
        ? _subscribed[(int)SubscriptionKind.Shard].Count
        : _subscribed[(int)SubscriptionKind.Channel].Count + _subscribed[(int)SubscriptionKind.Pattern].Count;

    private void WriteConfirmation(IBufferWriter<byte> output, byte[] type, byte[]? name, long count)
    {
        RespEncoding.WriteLine(output, _protover == 3 ? (byte)'>' : (byte)'*', 3);
        RespEncoding.WriteBulk(output, type);
        if (name is null)
        {
            output.Write(_protover == 3 ? "_\r\n"u8 : "$-1\r\n"u8);
        }
        else
        {
            RespEncoding.WriteBulk(output, name);
        }

        RespEncoding.WriteLine(output, (byte)':', count);
    }

    /// <summary>PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB, from this gateway's subscribers.</summary>
    private SessionAction PubSubInfo(int argc)
    {
        var pubsub = _protocol.PubSub;
        _out.Reset();
        if (argc is 2 or 3 && (Is(1, "CHANNELS"u8) || Is(1, "SHARDCHANNELS"u8)))
        {
            var names = pubsub.Names(Is(1, "CHANNELS"u8) ? SubscriptionKind.Channel : SubscriptionKind.Shard, argc == 3 ? _parser.Arg(2).ToArray() : null);
            RespReplyReader.WriteBulkArray(_out, names);
            return Local(_out.WrittenMemory);
        }

        if (argc >= 2 && argc <= RespRequestParser.TrackedArguments && (Is(1, "NUMSUB"u8) || Is(1, "SHARDNUMSUB"u8)))
        {
            var kind = Is(1, "NUMSUB"u8) ? SubscriptionKind.Channel : SubscriptionKind.Shard;
            if (_protover == 3)
            {
                RespEncoding.WriteLine(_out, (byte)'%', argc - 2);
            }
            else
            {
                RespEncoding.WriteArrayHeader(_out, (argc - 2) * 2);
            }

            for (var i = 2; i < argc; i++)
            {
                RespEncoding.WriteBulk(_out, _parser.Arg(i));
                RespEncoding.WriteLine(_out, (byte)':', pubsub.Count(kind, _parser.Arg(i).ToArray()));
            }

            return Local(_out.WrittenMemory);
        }

        if (argc == 2 && Is(1, "NUMPAT"u8))
        {
            return Local(RespReplyReader.Integer(pubsub.Count(SubscriptionKind.Pattern, null)));
        }

        return Queue(_parser.Request, RespReplyOrder.Ordered);
    }

    /// <summary>PUBLISH's reply: how many of this gateway's subscriptions the message reached (the replicas have none).</summary>
    private sealed class PublishReply(RespPubSub pubsub, bool shard, byte[] channel) : IReplyTransform
    {
        public ValueTask<ReadOnlyMemory<byte>> ApplyAsync(ReadOnlyMemory<byte> reply, CancellationToken cancellationToken) =>
            ValueTask.FromResult<ReadOnlyMemory<byte>>(RespReplyReader.IsError(reply.Span) ? reply : RespReplyReader.Integer(pubsub.Receivers(shard, channel)));
    }
}
