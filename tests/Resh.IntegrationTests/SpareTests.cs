using Resh.Clients;
using Resh.Group;
using Resh.Hosting;
using Resh.Modes;

namespace Resh.IntegrationTests;

/// <summary>Mode spare with real redis-server replicas: two active, two passive (f = 1).</summary>
public sealed class SpareTests
{
    private const string DigestRedis = Tools.RedisCommand + " --enable-debug-command local";

    private static Task<Cluster> StartSpareAsync(Action<ReshOptions>? configure = null, string command = Tools.RedisCommand)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        return Cluster.StartAsync([.. Enumerable.Range(1, 4).Select(i => new ReplicaSpec($"r{i}", command))], o =>
        {
            o.Replication.Mode = ReplicationMode.Spare;
            o.Replication.Spare = new SpareOptions { UpdateEvery = TimeSpan.FromMilliseconds(200) };
            configure?.Invoke(o);
        });
    }

    private static IEnumerable<ReplicaStatus> Role(GroupStatus s, string role) => s.Replicas.Where(r => r.Role == role);

    /// <summary>Back to f+1 active replicas that vote and f+1 passive ones at rest, all at the head.</summary>
    private static bool Settled(GroupStatus s) =>
        Role(s, "active").Count(r => r.State == "up") == 2 && Role(s, "passive").Count(r => r.State == "passive") == 2;

    [Fact]
    public async Task Only_the_active_replicas_use_cpu_while_the_passive_ones_stay_frozen()
    {
        // No update falls into the measurement: updates only every million entries.
        await using var cluster = await StartSpareAsync(o => o.Replication.Spare = new SpareOptions { UpdateEvery = null, UpdateEveryEntries = 1_000_000 });
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        var before = cluster.Host.Status();
        Assert.Equal(["r1", "r2"], Role(before, "active").Select(r => r.Id));
        Assert.Equal(["r3", "r4"], Role(before, "passive").Select(r => r.Id));

        await using (var client = await cluster.ConnectAsync())
        {
            for (var batch = 0; batch < 100; batch++)
            {
                var replies = await client.PipelineAsync([.. Enumerable.Range(0, 1000).Select(i => new[] { "SET", $"k{batch}:{i}", new string('v', 100) })]).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.All(replies, r => Assert.Equal("OK", r.AsString()));
            }
        }

        var after = cluster.Host.Status();
        double Used(string id) => after.Replicas.Single(r => r.Id == id).CpuSeconds - before.Replicas.Single(r => r.Id == id).CpuSeconds;
        var active = Math.Min(Used("r1"), Used("r2"));
        var passive = Math.Max(Used("r3"), Used("r4"));
        Assert.True(active > 0.05, $"the active replicas executed 100,000 writes with {active:0.###} s of CPU");
        Assert.True(passive < 0.01, $"a frozen passive replica used {passive:0.###} s of CPU while the active ones used {active:0.###} s");
        Assert.All(Role(after, "passive"), r => Assert.Equal("passive", r.State));
        Assert.Equal(0, after.Activations);
    }

    [Theory]
    [InlineData(FaultKind.Crash)]
    [InlineData(FaultKind.Hang)]
    public async Task A_crashed_or_hung_active_replica_is_masked_by_the_passive_ones_and_replaced(FaultKind fault)
    {
        await using var cluster = await StartSpareAsync();
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        var injected = 0;
        var (acked, errors) = await cluster.WriteAsync(clients: 4, perClient: 300, async n =>
        {
            if (n == 300 && Interlocked.Exchange(ref injected, 1) == 0)
            {
                await cluster.Host.InjectAsync("r1", fault, CancellationToken.None);
            }
        });

        Assert.Empty(errors);
        Assert.Equal(1, injected);
        Assert.Equal(1200, acked.Count);
        await Tools.AssertAllReadableAsync(cluster.EndPoint, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r1").Generation >= 2 && Settled(s), "r1 replaced and the group back to 2 active + 2 passive");
        var events = cluster.Host.Events.Since();
        Assert.Contains(events, e => e.Name == "+activation");
        Assert.Contains(events, e => e.Name == "+replica-active");
        Assert.Contains(events, e => e.Name == "+replica-suspected" && e.Replica == "r1");
        Assert.DoesNotContain(events, e => e.Name == "+disagreement");
        Assert.True(cluster.Host.Status().Activations >= 1);
        await AssertActiveReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Both_active_replicas_hung_at_once_wake_the_passive_ones_and_the_request_is_decided()
    {
        // No active replica answers, so none is "behind the others": the undecided entry alone must lead to a wake.
        await using var cluster = await StartSpareAsync();
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        await using var client = await cluster.ConnectAsync();
        Assert.Equal("OK", (await client.CallAsync("SET", "before", "1")).AsString());
        await cluster.Host.InjectAsync("r1", FaultKind.Hang, CancellationToken.None);
        await cluster.Host.InjectAsync("r2", FaultKind.Hang, CancellationToken.None);
        Assert.Equal("OK", (await client.CallAsync("SET", "after", "2").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
        Assert.Equal("1", (await client.CallAsync("GET", "before").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
        var events = cluster.Host.Events.Since();
        Assert.Contains(events, e => e.Name == "+activation" && e.Detail.StartsWith("timeout", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Name == "+replica-active");
        await cluster.WaitUntilAsync(s => s.Replicas.Where(r => r.Id is "r1" or "r2").All(r => r.Generation >= 2), "both hung replicas replaced");
    }

    [Fact]
    public async Task A_corrupted_active_replica_is_outvoted_with_the_passive_ones_and_the_client_reads_only_correct_values()
    {
        await using var cluster = await StartSpareAsync();
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        var (acked, errors) = await cluster.WriteAsync(clients: 2, perClient: 200, _ => Task.CompletedTask);
        Assert.Empty(errors);

        var detail = await cluster.Host.InjectAsync("r2", FaultKind.Corrupt, CancellationToken.None);
        Assert.Contains("overwritten", detail, StringComparison.Ordinal);

        // Every key is read through the vote: the two active replicas split on the bad one, the passive ones decide.
        await Tools.AssertAllReadableAsync(cluster.EndPoint, acked);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Generation >= 2 && Settled(s), "r2 replaced and the group back to 2 active + 2 passive");
        var events = cluster.Host.Events.Since();
        Assert.Contains(events, e => e.Name == "+activation" && e.Detail.StartsWith("mismatch", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Name == "+replica-suspected" && e.Replica == "r2" && e.Detail.StartsWith("mismatch", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Name == "+activation-done");
        Assert.DoesNotContain(events, e => e.Name == "+disagreement");
        Assert.True(cluster.Replica("r2").Mismatches >= 1);
        await AssertActiveReplicasIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_corrupted_passive_replica_is_found_at_its_next_update_and_replaced()
    {
        await using var cluster = await StartSpareAsync(o => o.Replication.Spare.Digest = "DEBUG DIGEST", DigestRedis);
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        var (acked, errors) = await cluster.WriteAsync(clients: 2, perClient: 100, _ => Task.CompletedTask);
        Assert.Empty(errors);
        await cluster.WaitUntilAsync(s => Settled(s) && s.Replicas.Single(r => r.Id == "r3").Applied >= acked.Count, "r3 updated past the writes");

        var detail = await cluster.Host.InjectAsync("r3", FaultKind.Corrupt, CancellationToken.None);
        Assert.Contains("overwritten", detail, StringComparison.Ordinal);

        // With a digest, an update by state thaws a passive replica twice (the state, then the digest's replay), so r3 may
        // still be in that second step: it comes to rest with the bad key, unseen, since the digest was taken before it.
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r3").State == "passive", "r3 at rest");

        // Nothing reads the bad key: the digest at the end of r3's next update finds it.
        await using (var client = await cluster.ConnectAsync())
        {
            Assert.Equal("OK", (await client.CallAsync("SET", "after", "corruption")).AsString());
        }

        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r3").Generation >= 2 && Settled(s), "corrupted passive r3 replaced");
        var suspected = Assert.Single(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r3");
        Assert.Contains("passive replica's reply", suspected.Detail, StringComparison.Ordinal);
        Assert.True(cluster.Replica("r3").Mismatches >= 1);
        Assert.Equal(0, cluster.Host.Status().Activations);
        await Tools.AssertAllReadableAsync(cluster.EndPoint, acked);
    }

    [Fact]
    public async Task Rejuvenation_during_a_workload_rotates_the_replicas_without_a_client_error_or_a_lost_write()
    {
        await using var cluster = await StartSpareAsync(
            o =>
            {
                o.Replication.Spare.RejuvenateEvery = TimeSpan.FromSeconds(1);
                o.Group.Checkpoint = new CheckpointOptions { Flush = "SAVE", Files = ["dump.rdb"], Digest = "DEBUG DIGEST", Every = TimeSpan.FromSeconds(1) };

                // What is asserted is that rotations suspect nobody. A synchronous SAVE every second pauses a replica for up
                // to 600 ms on two busy cores; with the suite's 1 s reply timeout, such a pause plus a scheduling hiccup
                // once woke the passive replicas (CI): the timeout here leaves room for the machine, not for the rotation.
                o.Group.ReplyTimeout = TimeSpan.FromSeconds(3);
            },
            DigestRedis);
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas");
        var (acked, errors) = await cluster.WriteAsync(clients: 4, perClient: 100_000, _ => Task.CompletedTask, until: () => cluster.Host.Status().Rejuvenations >= 4);

        Assert.Empty(errors);
        await Tools.AssertAllReadableAsync(cluster.EndPoint, acked);
        await cluster.WaitUntilAsync(Settled, "two active and two passive replicas after the rotations");
        var events = cluster.Host.Events.Since();
        var rotations = events.Where(e => e.Name == "+rejuvenation").ToList();
        Assert.True(rotations.Count >= 4);

        // Each rotation discards the oldest active domain: first one that started active, and no new domain before every
        // first-generation one was discarded; each slot starts again from a checkpoint.
        Assert.Contains(rotations[0].Replica, new[] { "r1", "r2" });
        Assert.Equal(["r1", "r2", "r3", "r4"], rotations.Take(4).Select(e => e.Replica!).Order(StringComparer.Ordinal));
        Assert.All(rotations.Take(4), r => Assert.Contains(events, e => e.Name == "+replica-restored" && e.Replica == r.Replica && e.Id > r.Id));
        Assert.DoesNotContain(events, e => e.Name is "+replica-suspected" or "+disagreement" or "+activation");
        var status = cluster.Host.Status();
        Assert.All(status.Replicas, r => Assert.True(r.Generation >= 2, $"{r.Id} is still generation {r.Generation}"));

        // Rotations go on meanwhile, so the replicas are not read directly here: every passive update ended with the
        // service digest voted by the active replicas, and no replica's digest or reply ever differed.
        Assert.DoesNotContain(status.Replicas, r => r.Mismatches > 0);
    }

    [Fact]
    public async Task Passive_replicas_updated_by_state_hold_every_kind_of_value_and_decide_alone_when_both_active_ones_hang()
    {
        await using var cluster = await StartSpareAsync(o => o.Replication.Spare = new SpareOptions { UpdateEvery = TimeSpan.FromMilliseconds(200), UpdateBy = PassiveUpdateMethod.State });
        await cluster.WaitUntilAsync(s => Settled(s) && Role(s, "passive").All(r => r.Applied == s.Head), "two active and two passive replicas, all at the head");
        await using var client = await cluster.ConnectAsync();
        string[][] writes =
        [
            ["SET", "gone", "1"], ["DEL", "gone"], ["SET", "ttl", "v", "PX", "600000"],
            ["HSET", "h", "a", "1", "b", "2"], ["RPUSH", "l", "x", "y", "z"], ["ZADD", "z", "1", "one", "2", "two"],
            ["XADD", "s", "1-1", "f", "v"], ["SADD", "small", "1", "2", "3"],
            [.. new[] { "SADD", "big" }.Concat(Enumerable.Range(0, 300).Select(i => $"m{i}"))],
            [.. new[] { "SREM", "big" }.Concat(Enumerable.Range(3, 297).Select(i => $"m{i}"))],
            .. Enumerable.Range(0, 1000).Select(_ => new[] { "INCR", "counter" }),
        ];
        var replies = await client.PipelineAsync(writes).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(replies, r => r.IsError);
        Assert.Equal("OK", (await client.CallAsync("SELECT", "1")).AsString());
        Assert.Equal("OK", (await client.CallAsync("SET", "db1", "one")).AsString());
        Assert.Equal("OK", (await client.CallAsync("SELECT", "0")).AsString());

        // Both passive replicas are brought past the writes by state (1,000 INCRs of one key are one key to transfer).
        var head = cluster.Host.Status().Head;
        await cluster.WaitUntilAsync(s => s.StateUpdates >= 2 && Settled(s) && Role(s, "passive").All(r => r.Applied >= head), "both passive replicas updated by state past the writes");
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+state-transfer-unavailable" or "+replica-suspected");

        // Now only the passive replicas can answer: what they decide is what they were given.
        await cluster.Host.InjectAsync("r1", FaultKind.Hang, CancellationToken.None);
        await cluster.Host.InjectAsync("r2", FaultKind.Hang, CancellationToken.None);
        async Task<RespValue> Read(params string[] args) => await client.CallAsync(args).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("1000", (await Read("GET", "counter")).AsString());
        Assert.Equal(0, (await Read("EXISTS", "gone")).Integer);
        Assert.InRange((await Read("PTTL", "ttl")).Integer, 1, 600_000);
        Assert.Equal(["a", "1", "b", "2"], (await Read("HGETALL", "h")).Items!.Select(i => i.AsString()).Chunk(2).OrderBy(p => p[0]).SelectMany(p => p));
        Assert.Equal(["x", "y", "z"], (await Read("LRANGE", "l", "0", "-1")).Items!.Select(i => i.AsString()));
        Assert.Equal(["one", "1", "two", "2"], (await Read("ZRANGE", "z", "0", "-1", "WITHSCORES")).Items!.Select(i => i.AsString()));
        Assert.Equal(1, (await Read("XLEN", "s")).Integer);
        Assert.Equal(["m0", "m1", "m2"], (await Read("SMEMBERS", "big")).Items!.Select(i => i.AsString()).Order(StringComparer.Ordinal));
        Assert.Equal(3, (await Read("SCARD", "small")).Integer);
        Assert.Equal("OK", (await Read("SELECT", "1")).AsString());
        Assert.Equal("one", (await Read("GET", "db1")).AsString());
        var events = cluster.Host.Events.Since();
        Assert.Contains(events, e => e.Name == "+activation");
        Assert.DoesNotContain(events, e => e.Name == "+disagreement");
    }

    [Fact]
    public async Task By_default_many_writes_to_few_keys_go_by_state_and_a_few_writes_by_replay()
    {
        await using var cluster = await StartSpareAsync();
        await cluster.WaitUntilAsync(s => Settled(s) && Role(s, "passive").All(r => r.Applied == s.Head), "two active and two passive replicas, all at the head");
        await using var client = await cluster.ConnectAsync();
        var replies = await client.PipelineAsync([.. Enumerable.Range(0, 5000).Select(i => new[] { "SET", $"hot{i % 3}", $"{i}" })]).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(replies, r => Assert.Equal("OK", r.AsString()));
        var head = cluster.Host.Status().Head;
        await cluster.WaitUntilAsync(s => Settled(s) && Role(s, "passive").All(r => r.Applied >= head), "both passive replicas past 5,000 writes");
        // Two passive replicas, each updated by state at least once (an update may fall in while the writes arrive).
        var byState = cluster.Host.Status().StateUpdates;
        Assert.True(byState >= 2, $"{byState} updates by state; events: {string.Join(" | ", cluster.Host.Events.Since().Select(e => $"{e.Name} {e.Replica} {e.Detail}"))}");

        Assert.Equal("OK", (await client.CallAsync("SET", "cold", "1")).AsString());
        head = cluster.Host.Status().Head;
        await cluster.WaitUntilAsync(s => Settled(s) && Role(s, "passive").All(r => r.Applied >= head), "both passive replicas past one more write");
        Assert.Equal(byState, cluster.Host.Status().StateUpdates);
        await AssertActiveReplicasIdenticalAsync(cluster);
    }

    /// <summary>The active replicas hold the same data (passive ones are frozen and checked by their updates).</summary>
    private static async Task AssertActiveReplicasIdenticalAsync(Cluster cluster)
    {
        await cluster.WaitUntilAsync(s => Settled(s) && Role(s, "active").All(r => r.Applied == s.Head), "the active replicas caught up");
        var dumps = new List<SortedDictionary<string, string?>>();
        foreach (var r in Role(cluster.Host.Status(), "active"))
        {
            dumps.Add(await cluster.DumpAsync(r.Id));
        }

        Assert.Equal(2, dumps.Count);
        Assert.Equal(dumps[0], dumps[1]);
    }
}
