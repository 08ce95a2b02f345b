using System.Collections.Concurrent;
using Resh.Group;

namespace Resh.IntegrationTests;

/// <summary>Faults of one replica among three real redis-server replicas are masked and repaired.</summary>
public sealed class FaultMaskingTests
{
    private static Task<(ConcurrentDictionary<string, string> Acked, List<string> Errors)> WorkloadAsync(
        Cluster cluster, int clients, int perClient, Func<int, Task> onProgress) => cluster.WriteAsync(clients, perClient, onProgress);

    private static Task AssertAllReadableAsync(Cluster cluster, IReadOnlyDictionary<string, string> acked) =>
        Tools.AssertAllReadableAsync(cluster.EndPoint, acked);

    private static Task AssertReplicasIdenticalAsync(Cluster cluster) => cluster.AssertReplicasIdenticalAsync();

    [Fact]
    public async Task Kill_9_of_one_replica_under_concurrent_load_loses_nothing_and_breaks_no_client()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        var injected = 0;
        var (acked, errors) = await WorkloadAsync(cluster, clients: 8, perClient: 400, async n =>
        {
            if (n == 600 && Interlocked.Exchange(ref injected, 1) == 0)
            {
                await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);
            }
        });

        Assert.Empty(errors);
        Assert.Equal(1, injected);
        Assert.Equal(3200, acked.Count);
        await AssertAllReadableAsync(cluster, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r1").Recoveries >= 1, "r1 to be rebuilt");
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r1");
        await AssertReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_corrupted_value_is_never_read_and_the_replica_is_rebuilt_identical()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        var (acked, errors) = await WorkloadAsync(cluster, clients: 2, perClient: 100, _ => Task.CompletedTask);
        Assert.Empty(errors);

        var detail = await cluster.Host.InjectAsync("r2", FaultKind.Corrupt, CancellationToken.None);
        Assert.Contains("overwritten", detail, StringComparison.Ordinal);

        // Every read goes through the vote: the bad value never reaches the client.
        await AssertAllReadableAsync(cluster, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Recoveries >= 1, "r2 to be rebuilt");
        var r2 = cluster.Replica("r2");
        Assert.True(r2.Mismatches >= 1);
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r2" && e.Detail.StartsWith("mismatch", StringComparison.Ordinal));
        await AssertReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_frozen_replica_does_not_stop_the_service_and_is_replaced()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        var injected = 0;
        var (acked, errors) = await WorkloadAsync(cluster, clients: 4, perClient: 300, async n =>
        {
            if (n == 200 && Interlocked.Exchange(ref injected, 1) == 0)
            {
                await cluster.Host.InjectAsync("r3", FaultKind.Hang, CancellationToken.None);
            }
        });

        Assert.Empty(errors);
        Assert.Equal(1200, acked.Count);
        await AssertAllReadableAsync(cluster, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r3").Recoveries >= 1, "r3 to be rebuilt");
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r3");
        await AssertReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_slow_replica_is_outvoted_then_replaced_when_it_falls_behind()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o =>
        {
            o.Group.MaxLag = 50;
            o.Group.SlowDelay = TimeSpan.FromMilliseconds(50);
        });
        await cluster.Host.InjectAsync("r2", FaultKind.Slow, CancellationToken.None);
        var (acked, errors) = await WorkloadAsync(cluster, clients: 4, perClient: 150, _ => Task.CompletedTask);

        Assert.Empty(errors);
        await AssertAllReadableAsync(cluster, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Recoveries >= 1, "slow r2 to be replaced");
        await AssertReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Transactions_of_concurrent_sessions_stay_atomic()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        const int Clients = 6;
        const int PerClient = 100;
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            await using var client = await cluster.ConnectAsync();
            for (var i = 0; i < PerClient; i++)
            {
                Assert.Equal("OK", (await client.CallAsync("MULTI")).AsString());
                Assert.Equal("QUEUED", (await client.CallAsync("RPUSH", "log", $"begin:{c}:{i}")).AsString());
                Assert.Equal("QUEUED", (await client.CallAsync("INCR", "counter")).AsString());
                Assert.Equal("QUEUED", (await client.CallAsync("RPUSH", "log", $"end:{c}:{i}")).AsString());
                var exec = await client.CallAsync("EXEC");
                Assert.Equal(3, exec.Items!.Count);
            }
        }))).WaitAsync(TimeSpan.FromMinutes(2));

        await using var reader = await cluster.ConnectAsync();
        var log = (await reader.CallAsync("LRANGE", "log", "0", "-1")).Items!.Select(v => v.AsString()!).ToList();
        Assert.Equal(2 * Clients * PerClient, log.Count);
        for (var i = 0; i < log.Count; i += 2)
        {
            // Nothing of another session may fall between a transaction's begin and end.
            Assert.StartsWith("begin:", log[i], StringComparison.Ordinal);
            Assert.Equal("end:" + log[i]["begin:".Length..], log[i + 1]);
        }

        Assert.Equal((Clients * PerClient).ToString(System.Globalization.CultureInfo.InvariantCulture), (await reader.CallAsync("GET", "counter")).AsString());

        // Held blocks: DISCARD drops, errors abort.
        Assert.Equal("OK", (await reader.CallAsync("MULTI")).AsString());
        await reader.CallAsync("SET", "discarded", "1");
        Assert.Equal("OK", (await reader.CallAsync("DISCARD")).AsString());
        Assert.True((await reader.CallAsync("GET", "discarded")).IsNull);
        await AssertReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Select_is_carried_per_session_on_the_shared_replica_connections()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var a = await cluster.ConnectAsync();
        await using var b = await cluster.ConnectAsync();
        Assert.Equal("OK", (await a.CallAsync("SELECT", "3")).AsString());
        await a.CallAsync("SET", "k", "in-db-3");
        await b.CallAsync("SET", "k", "in-db-0");
        Assert.Equal("in-db-3", (await a.CallAsync("GET", "k")).AsString());
        Assert.Equal("in-db-0", (await b.CallAsync("GET", "k")).AsString());
        Assert.True((await a.CallAsync("SELECT", "99")).IsError);

        await using var direct = await cluster.ConnectReplicaAsync("r1");
        await direct.CallAsync("SELECT", "3");
        Assert.Equal("in-db-3", (await direct.CallAsync("GET", "k")).AsString());
    }

    [Fact]
    public async Task Stopping_while_replicas_recover_starts_no_replica_and_reports_no_failure()
    {
        var cluster = await Cluster.StartRedisAsync();
        try
        {
            await using var client = await cluster.ConnectAsync();
            Assert.Equal("OK", (await client.CallAsync("SET", "a", "1")).AsString());
            await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);
            await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        // The replicas killed by the stop are not faults, and none is started again with the stopped domain factory.
        var events = cluster.Host.Events.Since();
        Assert.DoesNotContain(events, e => e.Name == "+replica-start-failed");
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal("down", r.State));
    }

    [Fact]
    public async Task Nondeterministic_commands_are_refused_with_a_clear_error()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var client = await cluster.ConnectAsync();
        var reply = await client.CallAsync("LOLWUT");
        Assert.True(reply.IsError);
        Assert.Equal("ERR resh: lolwut is not supported under replication", reply.AsString());
        Assert.True((await client.CallAsync("WAIT", "1", "0")).IsError);
        Assert.Equal("PONG", (await client.CallAsync("PING")).AsString());
    }

    [Fact]
    public async Task Unordered_collections_of_correct_replicas_agree_despite_per_process_hash_order()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var client = await cluster.ConnectAsync();
        var members = Enumerable.Range(0, 400).Select(i => $"m{i}").ToArray();
        Assert.Equal(400, (await client.CallAsync(["SADD", "big-set", .. members])).Integer);
        Assert.Equal(400, (await client.CallAsync(["HSET", "big-hash", .. members.SelectMany(m => new[] { m, m + "-value" })])).Integer);
        await client.PipelineAsync([.. members.Take(200).Select(m => new[] { "SET", "key:" + m, "1" })]);

        var set = await client.CallAsync("SMEMBERS", "big-set");
        Assert.Equal(members.Order(StringComparer.Ordinal), set.Items!.Select(v => v.AsString()!).Order(StringComparer.Ordinal));
        var hash = await client.CallAsync("HGETALL", "big-hash");
        Assert.Equal(800, hash.Items!.Count);
        var keys = await client.CallAsync("KEYS", "key:*");
        Assert.Equal(200, keys.Items!.Count);
        Assert.False((await client.CallAsync("COMMAND")).IsError);

        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+disagreement" or "+replica-suspected");
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal(0, r.Mismatches));
    }

    [Fact]
    public async Task A_corruption_read_while_another_replica_is_being_rebuilt_is_still_outvoted()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var client = await cluster.ConnectAsync();
        await client.PipelineAsync([.. Enumerable.Range(0, 2000).Select(i => new[] { "SET", $"k{i}", $"v{i}" })]);
        Assert.Equal("OK", (await client.CallAsync("SET", "a", "right")).AsString());
        await using (var r2 = await cluster.ConnectReplicaAsync("r2"))
        {
            await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);

            // r1 now replays 2000 entries; meanwhile r2's copy of "a" goes bad and a client reads it.
            Assert.Equal("OK", (await r2.CallAsync("SET", "a", "wrong")).AsString());
        }

        Assert.Equal("right", (await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Recoveries >= 1, "corrupted r2 to be caught and rebuilt");
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+disagreement");
        await cluster.WaitHealthyAsync();
    }

    [Fact]
    public async Task After_a_disagreement_the_losing_replicas_are_rebuilt_and_the_group_converges()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var client = await cluster.ConnectAsync();
        Assert.Equal("OK", (await client.CallAsync("SET", "a", "right")).AsString());

        // r1 and r2 go bad in two different ways: three different replies, no side reaches f+1.
        foreach (var (id, value) in new[] { ("r1", "wrong-1"), ("r2", "wrong-2") })
        {
            await using var replica = await cluster.ConnectReplicaAsync(id);
            Assert.Equal("OK", (await replica.CallAsync("SET", "a", value)).AsString());
        }

        var disagreed = await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(disagreed.IsError);
        Assert.Contains("replicas disagree", disagreed.AsString(), StringComparison.Ordinal);

        // r2 and r3 (every side but r1's) are rebuilt from the log; then they outvote r1, which is rebuilt in turn.
        await cluster.WaitUntilAsync(s => s.Replicas.Where(r => r.Id != "r1").All(r => r.Recoveries >= 1) && s.Voting == 3, "r2 and r3 rebuilt after the disagreement");
        Assert.Equal("right", (await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r1").Recoveries >= 1, "r1 outvoted and rebuilt");
        await cluster.WaitHealthyAsync();
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await using var replica = await cluster.ConnectReplicaAsync(id);
            Assert.Equal("right", (await replica.CallAsync("GET", "a")).AsString());
        }

        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+disagreement");
    }
}
