using System.Collections.Frozen;

namespace Resh.Protocols.Resp;

/// <summary>
/// The replication profile of RESP: commands that break determinism or the one-request/one-reply shape
/// when a session's requests are replayed on several replicas over shared connections.
/// </summary>
/// <remarks>
/// Deliberately allowed (not in the defaults):
/// <list type="bullet">
/// <item>EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT, FUNCTION: a script is as
/// deterministic as the commands it calls; Redis 7 replicates script effects and no longer forbids
/// non-deterministic calls inside scripts, so a script calling e.g. TIME is caught by the voter, not here.
/// Rejecting scripting outright would break many clients. SCRIPT KILL and FUNCTION KILL/STATS are rejected:
/// they act on whatever one replica happens to be running at that instant.</item>
/// <item>MOVE: moves a key between databases of the same replica, deterministically.</item>
/// <item>KEYS, SMEMBERS, SINTER, SUNION, SDIFF, HKEYS, HVALS, HGETALL, COMMAND: Redis seeds its hash
/// tables randomly per process, so two correct replicas can return the same elements in a different
/// order. These requests carry a reply hint and the voter compares their elements sorted
/// (<see cref="RespReplyOrder"/>); the client receives one replica's reply as it is. The SCAN family is
/// rejected: its cursors themselves differ between replicas.</item>
/// <item>EXPIRETIME, PEXPIRETIME: absolute, hence deterministic; the suggested replacement for TTL/PTTL.</item>
/// </list>
/// Rewritten rather than rejected (see <see cref="ExpiryRewrite.Absolute"/>): EXPIRE, PEXPIRE, SET EX/PX,
/// SETEX, PSETEX, GETEX EX/PX, RESTORE ttl, HEXPIRE, HPEXPIRE, XADD with an automatic id.
/// Answered by the gateway itself: SELECT, HELLO, MULTI, EXEC, DISCARD, QUIT.
/// </remarks>
public static class RespProfile
{
    private const string Managed = "replication, persistence and lifecycle of replicas are managed by resh";
    private const string Cluster = "replicas run standalone, not as a cluster";
    private const string SharedConnection = "acts on the replica-side connection, which is shared by many client sessions (the gateway answers CLIENT SETNAME, GETNAME, SETINFO, ID, INFO, LIST, KILL, NO-EVICT, NO-TOUCH, REPLY, PAUSE and UNPAUSE for its own sessions)";

    /// <summary>Default rejected commands (lower case) and why each is rejected.</summary>
    public static IReadOnlyDictionary<string, string> Defaults { get; } = new Dictionary<string, string>
    {
        ["wait"] = "waits for acknowledgements of the replica's own replicas",
        ["waitaof"] = "waits for the replica's own AOF fsyncs",
        ["debug"] = "can crash, stall or alter a single replica",
        ["lolwut"] = "draws random art",
        ["client"] = SharedConnection,
        ["shutdown"] = Managed,
        ["failover"] = Managed,
        ["replicaof"] = Managed,
        ["slaveof"] = Managed,
        ["replconf"] = Managed,
        ["sync"] = Managed,
        ["psync"] = Managed,
        ["save"] = Managed,
        ["bgsave"] = Managed,
        ["bgrewriteaof"] = Managed,
        ["module"] = "modules must be loaded by every replica's configuration",
        ["acl"] = "users are defined in the resh configuration (service.requirepass, service.users)",
        ["migrate"] = "moves data out of the replicated service",
        ["cluster"] = Cluster,
        ["asking"] = Cluster,
        ["readonly"] = Cluster,
        ["readwrite"] = Cluster,
        ["swapdb"] = "swaps databases underneath every session's SELECT",
        ["script|kill"] = "interrupts whatever one replica is running at that instant",
        ["function|kill"] = "interrupts whatever one replica is running at that instant",
        ["function|stats"] = "reports what one replica is running at that instant",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>Configuration parameters CONFIG SET may not change, and why.</summary>
    public static IReadOnlyDictionary<string, string> ManagedConfig { get; } = new Dictionary<string, string>
    {
        ["save"] = Managed,
        ["appendonly"] = Managed,
        ["appendfsync"] = Managed,
        ["replicaof"] = Managed,
        ["slaveof"] = Managed,
        ["masterauth"] = Managed,
        ["masteruser"] = Managed,
        ["requirepass"] = "the gateway talks to the replicas without a password",
        ["maxmemory"] = "eviction picks keys by sampling, so replicas would evict different keys",
        ["maxmemory-policy"] = "eviction picks keys by sampling, so replicas would evict different keys",
        ["databases"] = "the number of databases is service.databases in the resh configuration",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    /// <summary>A fresh, editable, case-insensitive set holding the default rejected commands.</summary>
    public static HashSet<string> CreateDefaultSet() => new(Defaults.Keys, StringComparer.OrdinalIgnoreCase);
}
