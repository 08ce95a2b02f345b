namespace Resh.IntegrationTests;

/// <summary>
/// Verification between checkpoints (<c>verify-every</c>) with real redis-server replicas and no checkpoints: the keys
/// written since the last round are read and voted on every replica, so a replica that holds a different value for a
/// key it answered correctly about is caught and rebuilt; equal data in different internal orders is not a mismatch.
/// </summary>
public sealed class VerifyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static Task<Cluster> StartAsync() =>
        Cluster.StartRedisAsync(3, o => o.Group.VerifyEvery = TimeSpan.FromMilliseconds(200));

    [Fact]
    public async Task A_replica_whose_written_key_differs_but_whose_replies_agreed_is_caught_and_rebuilt()
    {
        await using var cluster = await StartAsync();
        await using var client = await cluster.ConnectAsync();
        Assert.Equal(1, (await client.CallAsync("HSET", "h", "f", "good").WaitAsync(Timeout)).Integer);

        // r1's copy of h changes behind the gateway's back; the next write through the gateway answers 1 everywhere.
        await using (var direct = await cluster.ConnectReplicaAsync("r1"))
        {
            Assert.Equal(0, (await direct.CallAsync("HSET", "h", "f", "bad").WaitAsync(Timeout)).Integer);
        }

        Assert.Equal(1, (await client.CallAsync("HSET", "h", "g", "1").WaitAsync(Timeout)).Integer);

        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r1").Generation >= 2, "r1 suspected and rebuilt");
        var r1 = cluster.Replica("r1");
        Assert.True(r1.Mismatches >= 1, cluster.Describe());
        Assert.Equal(0, cluster.Replica("r2").Mismatches);
        Assert.Equal(0, cluster.Replica("r3").Mismatches);
        Assert.True(cluster.Host.Status().VerifiedKeys >= 1);

        await cluster.WaitHealthyAsync();
        await using var rebuilt = await cluster.ConnectReplicaAsync("r1");
        Assert.Equal("good", (await rebuilt.CallAsync("HGET", "h", "f").WaitAsync(Timeout)).AsString());
        Assert.Equal("good", (await client.CallAsync("HGET", "h", "f").WaitAsync(Timeout)).AsString());
    }

    [Fact]
    public async Task Equal_sets_and_hashes_in_different_internal_orders_are_not_mismatches()
    {
        await using var cluster = await StartAsync();
        await using var client = await cluster.ConnectAsync();

        // Large enough for hash-table encodings, whose iteration order differs between processes; scores and expiry too.
        var writes = new List<string[]>();
        for (var i = 0; i < 600; i++)
        {
            writes.Add(["SADD", "set", $"member-{i}"]);
            writes.Add(["HSET", "hash", $"field-{i}", $"value-{i}"]);
            writes.Add(["ZADD", "zset", $"{i % 7}", $"z-{i}"]);
        }

        writes.Add(["SET", "ttl", "v", "EX", "600"]);
        writes.Add(["RPUSH", "list", "a", "b", "c"]);
        var replies = await client.PipelineAsync(writes).WaitAsync(Timeout);
        Assert.DoesNotContain(replies, r => r.Type == '-');

        await cluster.WaitUntilAsync(s => s.VerifiedKeys >= 5, "the five keys compared");
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal(0, r.Mismatches));
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal(1, r.Generation));
    }
}
