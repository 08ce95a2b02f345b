using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>What the gateway does with one Redis command under the default profile.</summary>
public enum CommandTreatment
{
    /// <summary>Ordered, sent to every replica as it is, voted.</summary>
    PassedThrough,

    /// <summary>Ordered and voted, with the reply compared order-insensitively.</summary>
    ComparedUnordered,

    /// <summary>Turned into a deterministic request (a fixed deadline, a script with the gateway's seed, a snapshot read).</summary>
    Rewritten,

    /// <summary>Ordered, but every replica's reply counts as equal (a report of one replica's runtime).</summary>
    Unvoted,

    /// <summary>Answered by the gateway without the replicas.</summary>
    Gateway,

    /// <summary>Refused with a one-line reason.</summary>
    Refused,
}

/// <summary>
/// The status of every command as the code decides it, for docs/compatibility.md (a test keeps the two in step):
/// read from the same tables the session dispatches on, not written a second time.
/// </summary>
public static class RespCompatibility
{
    private static readonly Dictionary<string, string> Session = new(StringComparer.OrdinalIgnoreCase)
    {
        ["select"] = "the session's database, carried with every request",
        ["hello"] = "the session's protocol, carried with every request; the reply describes the gateway",
        ["multi"] = "the block is held by the gateway and appended to the log as one unit",
        ["exec"] = "appends the held block as one unit; aggregates in the reply are compared unordered when the block holds an unordered read",
        ["discard"] = "drops the held block",
        ["quit"] = "closes the session after its pending replies",
        ["client|setname"] = "kept by the session",
        ["client|getname"] = "kept by the session",
        ["client|setinfo"] = "accepted and ignored",
        ["client|id"] = "the session id",
        ["client|info"] = "this session, as the gateway sees it",
        ["client|list"] = "the gateway's sessions",
        ["client|kill"] = "closes the gateway's sessions by id or address",
        ["client|no-evict"] = "accepted: the gateway evicts no client",
        ["client|no-touch"] = "accepted",
        ["client|reply"] = "ON, OFF, SKIP for this session's replies",
        ["client|pause"] = "holds this gateway's sessions (all, or all but reads) until the timeout or CLIENT UNPAUSE",
        ["client|unpause"] = "ends this gateway's pause",
        ["monitor"] = "the decided request order, as this gateway appends it",
        ["auth"] = "checked by the gateway against service.requirepass and service.users",
        ["reset"] = "the session's state as a new connection has it",
    };

    /// <summary>The treatment of <paramref name="command"/> ("name" or "name|subcommand") and a note.</summary>
    public static (CommandTreatment Treatment, string Note) Describe(string command)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        var lower = command.ToLowerInvariant();
        var bar = lower.IndexOf('|', StringComparison.Ordinal);
        var name = bar < 0 ? lower : lower[..bar];
        var sub = bar < 0 ? string.Empty : lower[(bar + 1)..];
        if (Session.TryGetValue(lower, out var local))
        {
            return (CommandTreatment.Gateway, local);
        }

        if (RespProfile.Defaults.TryGetValue(lower, out var reason) || RespProfile.Defaults.TryGetValue(name, out reason))
        {
            return (CommandTreatment.Refused, reason);
        }

        var kind = RespCommands.Identify(Encoding.ASCII.GetBytes(name));
        switch (kind)
        {
            case RespCommandKind.Ttl or RespCommandKind.PTtl or RespCommandKind.ExpireTime or RespCommandKind.PExpireTime:
                return (CommandTreatment.Rewritten, "read as the voted PEXPIRETIME, answered against the gateway's clock when the reply is released");
            case RespCommandKind.HTtl or RespCommandKind.HPTtl:
                return (CommandTreatment.Rewritten, "read as the voted HPEXPIRETIME, answered against the gateway's clock (Redis 7.4)");
            case RespCommandKind.Time:
                return (CommandTreatment.Gateway, "the gateway's clock");
            case RespCommandKind.LastSave:
                return (CommandTreatment.Gateway, "the newest verified checkpoint's time, or when the gateway started");
            case RespCommandKind.Role:
                return (CommandTreatment.Gateway, "a master without replicas");
            case RespCommandKind.Scan or RespCommandKind.SScan or RespCommandKind.HScan or RespCommandKind.ZScan:
                return (CommandTreatment.Rewritten, "cursor 0 takes a voted snapshot (KEYS, SMEMBERS, HGETALL, ZRANGE); the gateway pages it");
            case RespCommandKind.SPop or RespCommandKind.SRandMember or RespCommandKind.HRandField or RespCommandKind.ZRandMember or RespCommandKind.RandomKey:
                return (CommandTreatment.Rewritten, "one script picks with the gateway's seed, the same on every replica");
            case RespCommandKind.Info:
                return (CommandTreatment.Unvoted, "one replica's sections, with the gateway's clients and role");
            case RespCommandKind.Config:
                return sub switch
                {
                    "get" => (CommandTreatment.Rewritten, "voted without the values that differ per replica; port is the gateway's"),
                    "set" => (CommandTreatment.PassedThrough, "ordered to every replica and kept with checkpoints for replicas restored from them; what resh manages (save, appendonly, port, dir, requirepass, maxmemory, ...) is refused"),
                    "rewrite" => (CommandTreatment.Refused, "replicas are configured through resh"),
                    _ => (CommandTreatment.PassedThrough, string.Empty),
                };
            case RespCommandKind.Object when sub is "idletime" or "freq":
                return (CommandTreatment.Unvoted, "one replica's access statistics");
            case RespCommandKind.Memory when sub is not ("purge" or "help"):
                return (CommandTreatment.Unvoted, "one replica's allocator");
            case RespCommandKind.SlowLog when sub is not "help":
                return (CommandTreatment.Gateway, "the gateway records no slow-log entries: empty");
            case RespCommandKind.Latency when sub is not ("help" or "graph"):
                return (CommandTreatment.Gateway, "the gateway records no latency events: empty");
            case RespCommandKind.Watch:
                return (CommandTreatment.Rewritten, "ordered as a marker; the session's next EXEC is decided at its place in the log, the same on every gateway");
            case RespCommandKind.Unwatch:
                return (CommandTreatment.Rewritten, "ordered as a marker that ends the session's watch");
            case RespCommandKind.Subscribe or RespCommandKind.PSubscribe or RespCommandKind.SSubscribe or RespCommandKind.Unsubscribe or RespCommandKind.PUnsubscribe or RespCommandKind.SUnsubscribe:
                return (CommandTreatment.Gateway, "subscriptions live in the gateway and take effect at an ordered marker's place in the log");
            case RespCommandKind.Publish or RespCommandKind.SPublish:
                return (CommandTreatment.Rewritten, "ordered; the gateway delivers it to its subscribers at its place in the log and answers how many it reached");
            case RespCommandKind.PubSub when sub is not "help":
                return (CommandTreatment.Gateway, "the gateway's own subscriptions");
            case RespCommandKind.XRead:
                return (CommandTreatment.Rewritten, "passed through without BLOCK; with BLOCK as the other blocking commands (BLOCK with $ is refused)");
            case RespCommandKind.XReadGroup:
                return (CommandTreatment.Rewritten, "a script that stamps the deliveries with the gateway's clock; with BLOCK as the other blocking commands");
            case RespCommandKind.XClaim or RespCommandKind.XAutoClaim:
                return (CommandTreatment.Rewritten, "a script: the minimum idle time is read against the gateway's clock and the exact delivery times");
            case RespCommandKind.XPending:
                return (CommandTreatment.Rewritten, "the extended form is a script: the IDLE filter and the idle column come from the gateway's clock");
            case RespCommandKind.XInfo when sub is "consumers" or "stream":
                return (CommandTreatment.Rewritten, "voted without when each replica last saw a consumer (idle, seen-time); one replica's values are answered");
            case var _ when RespCommands.IsBlocking(kind):
                return (CommandTreatment.Rewritten, "its non-blocking form is ordered; when it finds nothing the session waits in the gateway and retries when a write in the log touches its keys; the timeout runs on the gateway's clock");
            case RespCommandKind.Rename or RespCommandKind.RenameNx or RespCommandKind.Move or RespCommandKind.Copy:
                return (CommandTreatment.PassedThrough, "the gateway then checks the destination key's deadline");
            case RespCommandKind.XAdd:
                return (CommandTreatment.Rewritten, "an automatic id takes its milliseconds from the gateway's clock");
            case >= RespCommandKind.Expire:
                return (CommandTreatment.Rewritten, "the deadline is fixed by the gateway (and, with expiry: owned, deleted through the log)");
        }

        var hint = RespReplyOrder.Of(kind, Encoding.ASCII.GetBytes(name), Encoding.ASCII.GetBytes(sub), bar < 0 ? 1 : 2);
        return hint == RespReplyOrder.Ordered
            ? (CommandTreatment.PassedThrough, string.Empty)
            : (CommandTreatment.ComparedUnordered, "correct replicas return the elements in different orders");
    }

    /// <summary>docs/compatibility.md for <paramref name="commands"/> (names as COMMAND LIST gives them).</summary>
    public static string Render(IEnumerable<string> commands, string redisVersion)
    {
        ArgumentNullException.ThrowIfNull(commands);
        var rows = commands.Select(c => (Command: c, Status: Describe(c))).OrderBy(r => r.Command, StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        text.Append("# Redis compatibility\n\n");
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"Every command and subcommand of redis-server {redisVersion} (`COMMAND LIST`) and what the gateway does with it under\n");
        text.Append("the default profile (`service.expiry: owned`). A unit test renders this file from the code and fails when they differ.\n\n");
        text.Append("| status | meaning |\n|---|---|\n");
        text.Append("| passed through | ordered, sent to every replica as it is, its reply voted |\n");
        text.Append("| compared unordered | passed through; the vote compares the reply's elements sorted (each replica seeds its hash tables differently) |\n");
        text.Append("| rewritten | turned into a deterministic request by the gateway, then ordered and voted |\n");
        text.Append("| unvoted | ordered, but every replica's reply counts as equal: a report of one replica's runtime |\n");
        text.Append("| gateway | answered by the gateway itself |\n");
        text.Append("| refused | answered `-ERR resh: <command> is not supported under replication`, with the reason below |\n\n");
        foreach (var group in rows.GroupBy(r => r.Status.Treatment).OrderBy(g => g.Key))
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"- {Label(group.Key)}: {group.Count()}\n");
        }

        text.Append("\n| command | status | note |\n|---|---|---|\n");
        foreach (var (command, (treatment, note)) in rows)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"| `{command.Replace('|', ' ')}` | {Label(treatment)} | {note} |\n");
        }

        return text.ToString();
    }

    private static string Label(CommandTreatment treatment) => treatment switch
    {
        CommandTreatment.PassedThrough => "passed through",
        CommandTreatment.ComparedUnordered => "compared unordered",
        CommandTreatment.Rewritten => "rewritten",
        CommandTreatment.Unvoted => "unvoted",
        CommandTreatment.Gateway => "gateway",
        _ => "refused",
    };
}
