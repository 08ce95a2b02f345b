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

/// <summary>The JSON of etcd's HTTP/JSON gateway (v3), as far as Resh uses it; 64-bit numbers travel as strings.</summary>
public sealed partial class EtcdSequencer
{
    internal sealed record PutRequest(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("value")] string Value,
        [property: JsonPropertyName("lease"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Lease = null);

    internal sealed record TxnRequest([property: JsonPropertyName("compare")] List<TxnCompare> Compare, [property: JsonPropertyName("success")] List<TxnOp> Success);

    internal sealed record TxnCompare(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("target")] string Target,
        [property: JsonPropertyName("result")] string Result,
        [property: JsonPropertyName("create_revision")] string CreateRevision);

    internal sealed record TxnOp(
        [property: JsonPropertyName("request_put"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PutRequest? RequestPut,
        [property: JsonPropertyName("request_delete_range"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DeleteRequest? RequestDeleteRange = null);

    internal sealed record DeleteRequest([property: JsonPropertyName("key")] string Key);

    internal sealed record PrefixRangeRequest(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("range_end")] string RangeEnd,
        [property: JsonPropertyName("limit")] long Limit,
        [property: JsonPropertyName("keys_only")] bool KeysOnly,
        [property: JsonPropertyName("max_mod_revision")] string MaxModRevision);

    internal sealed record CompactionRequest([property: JsonPropertyName("revision")] string Revision, [property: JsonPropertyName("physical")] bool Physical);

    internal sealed record TxnResponse([property: JsonPropertyName("succeeded")] bool? Succeeded);

    internal sealed record RangeRequest(
        [property: JsonPropertyName("key")] string Key,
        [property: JsonPropertyName("range_end")] string RangeEnd,
        [property: JsonPropertyName("limit")] long Limit,
        [property: JsonPropertyName("sort_order")] string SortOrder,
        [property: JsonPropertyName("sort_target")] string SortTarget,
        [property: JsonPropertyName("keys_only")] bool KeysOnly);

    internal sealed record RangeResponse([property: JsonPropertyName("header")] Header? Header, [property: JsonPropertyName("kvs")] List<KeyValue>? Kvs);

    internal sealed record Header([property: JsonPropertyName("revision")] string? Revision);

    internal sealed record WatchRequest([property: JsonPropertyName("create_request")] WatchCreate CreateRequest);

    internal sealed record WatchCreate([property: JsonPropertyName("key")] string Key, [property: JsonPropertyName("range_end")] string RangeEnd, [property: JsonPropertyName("start_revision")] string StartRevision);

    internal sealed record WatchResponse([property: JsonPropertyName("result")] WatchResult? Result);

    internal sealed record WatchResult(
        [property: JsonPropertyName("header")] Header? Header,
        [property: JsonPropertyName("events")] List<WatchEvent>? Events,
        [property: JsonPropertyName("canceled")] bool? Canceled,
        [property: JsonPropertyName("compact_revision")] string? CompactRevision);

    internal sealed record WatchEvent([property: JsonPropertyName("type")] string? Type, [property: JsonPropertyName("kv")] KeyValue? Kv);

    internal sealed record KeyValue(
        [property: JsonPropertyName("key")] string? Key,
        [property: JsonPropertyName("value")] string? Value,
        [property: JsonPropertyName("create_revision")] string? CreateRevision,
        [property: JsonPropertyName("mod_revision")] string? ModRevision);

    internal sealed record LeaseGrantRequest([property: JsonPropertyName("TTL")] long Ttl);

    internal sealed record LeaseGrantResponse([property: JsonPropertyName("ID")] string? Id, [property: JsonPropertyName("TTL")] string? Ttl);

    internal sealed record LeaseIdRequest([property: JsonPropertyName("ID")] string Id);

    internal sealed record KeepAliveResponse([property: JsonPropertyName("result")] LeaseTtl? Result);

    internal sealed record LeaseTtl([property: JsonPropertyName("ID")] string? Id, [property: JsonPropertyName("TTL")] string? Ttl);

    internal sealed record TimeToLiveResponse([property: JsonPropertyName("ID")] string? Id, [property: JsonPropertyName("TTL")] string? Ttl);
}

[JsonSerializable(typeof(EtcdSequencer.PutRequest))]
[JsonSerializable(typeof(EtcdSequencer.TxnRequest))]
[JsonSerializable(typeof(EtcdSequencer.TxnResponse))]
[JsonSerializable(typeof(EtcdSequencer.RangeRequest))]
[JsonSerializable(typeof(EtcdSequencer.PrefixRangeRequest))]
[JsonSerializable(typeof(EtcdSequencer.CompactionRequest))]
[JsonSerializable(typeof(EtcdSequencer.RangeResponse))]
[JsonSerializable(typeof(EtcdSequencer.WatchRequest))]
[JsonSerializable(typeof(EtcdSequencer.WatchResponse))]
[JsonSerializable(typeof(EtcdSequencer.LeaseGrantRequest))]
[JsonSerializable(typeof(EtcdSequencer.LeaseGrantResponse))]
[JsonSerializable(typeof(EtcdSequencer.LeaseIdRequest))]
[JsonSerializable(typeof(EtcdSequencer.KeepAliveResponse))]
[JsonSerializable(typeof(EtcdSequencer.TimeToLiveResponse))]
[JsonSerializable(typeof(MemberInfo))]
[JsonSerializable(typeof(EtcdCursor))]
internal sealed partial class EtcdJson : JsonSerializerContext;
