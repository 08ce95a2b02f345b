using System.Text.Json.Serialization;

namespace Resh.Dresh;

/// <summary>What a member key holds: the gateway's number, its run's incarnation and lease, and where it can be reached.</summary>
public sealed record MemberInfo(
    [property: JsonPropertyName("member")] int Member,
    [property: JsonPropertyName("incarnation")] string Incarnation,
    [property: JsonPropertyName("lease")] string Lease,
    [property: JsonPropertyName("service")] string? Service,
    [property: JsonPropertyName("admin")] string? Admin,
    [property: JsonPropertyName("checkpoints")] string? Checkpoints = null);

/// <summary>A gateway run of the cluster as /status shows it: its lease and the lease's remaining TTL (-1: not read yet, or expired).</summary>
public sealed record EtcdPeer(int Member, string Run, string Lease, long TtlSeconds, string? Service, string? Admin, string? Checkpoints, bool Self);

/// <summary>The JSON Resh keeps in etcd (member keys; the lease id in decimal) and in checkpoint labels (cursors).</summary>
[JsonSerializable(typeof(MemberInfo))]
[JsonSerializable(typeof(EtcdCursor))]
internal sealed partial class EtcdJson : JsonSerializerContext;
