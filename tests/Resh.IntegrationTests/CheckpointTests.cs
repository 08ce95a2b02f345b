using System.Net.Sockets;
using System.Text;
using Resh.Composition;
using Resh.Group;
using Resh.Hosting;
using Resh.Protocols.Resp;

namespace Resh.IntegrationTests;

/// <summary>Service checkpoints with real redis-server replicas (and the generic line protocol without a digest).</summary>
public sealed class CheckpointTests
{
    private const string RedisWithDigest = Tools.RedisCommand + " --enable-debug-command local";

    private static Action<ReshOptions> Checkpoints(long? everyEntries = null, TimeSpan? every = null, string? digest = "DEBUG DIGEST", string flush = "SAVE", string file = "dump.rdb") => o =>
        o.Group.Checkpoint = new CheckpointOptions { Flush = flush, Files = [file], Digest = digest, EveryEntries = everyEntries, Every = every };

    /// <summary>BGSAVE, its completion read from INFO persistence, the files digested as RDB by Resh.</summary>
    private static Action<ReshOptions> BackgroundCheckpoints(TimeSpan every) => o =>
    {
        o.Group.Checkpoint = ReshOptions.RedisBackgroundCheckpoint();
        o.Group.Checkpoint.Every = every;
    };

    private static Task<Cluster> StartRedisAsync(Action<ReshOptions> configure)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        return Cluster.StartAsync([.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", RedisWithDigest))], configure);
    }

    /// <summary>A replica's own INFO persistence, field by field (rdb_saves, rdb_bgsave_in_progress, ...).</summary>
    private static async Task<Dictionary<string, string>> PersistenceAsync(Clients.RespClient direct) =>
        (await direct.CallAsync("INFO", "persistence")).AsString()!.Split("\r\n")
            .Select(l => l.Split(':', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);

    /// <summary>Writes <paramref name="count"/> keys in pipelines of <paramref name="pipeline"/> requests.</summary>
    private static async Task WriteAsync(Cluster cluster, string prefix, int count, int pipeline = 100)
    {
        await using var client = await cluster.ConnectAsync();
        for (var i = 0; i < count; i += pipeline)
        {
            var batch = Enumerable.Range(i, Math.Min(pipeline, count - i)).Select(j => new[] { "SET", $"{prefix}:{j}", $"value-{j}" }).ToArray();
            var replies = await client.PipelineAsync(batch).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.All(replies, r => Assert.Equal("OK", r.AsString()));
        }
    }

    /// <summary>After a first checkpoint, r1's state is corrupted and writes make the next ones due; no client reads the key.</summary>
    private static async Task CorruptR1UntilRebuiltAsync(Cluster cluster)
    {
        await WriteAsync(cluster, "c", 200);
        await cluster.WaitUntilAsync(s => s.Checkpoint is { } c && c.Sequence >= s.Head - 1, "a first checkpoint");
        var detail = await cluster.Host.InjectAsync("r1", FaultKind.Corrupt, CancellationToken.None);
        Assert.Contains("overwritten", detail, StringComparison.Ordinal);
        // Writes go on: with checkpoints flushed by f+1 replicas in turn, r1 may rest at the next one and flush the one after.
        var written = 0;
        try
        {
            await Tools.WaitUntilAsync(
                async () =>
                {
                    if (cluster.Replica("r1").Generation >= 2)
                    {
                        return true;
                    }

                    await WriteAsync(cluster, $"after{written++}-", 1);
                    return false;
                },
                TimeSpan.FromSeconds(60),
                "r1 suspected and rebuilt");
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} ({written} writes after the corruption)\n{cluster.Describe()}", e);
        }
    }

    [Fact]
    public async Task A_replica_restored_from_a_checkpoint_gets_the_configuration_set_through_the_gateway()
    {
        await using var cluster = await StartRedisAsync(Checkpoints(everyEntries: 200));
        await using (var client = await cluster.ConnectAsync())
        {
            Assert.Equal("OK", (await client.CallAsync("CONFIG", "SET", "hash-max-listpack-entries", "7", "notify-keyspace-events", "KEA")).AsString());
        }

        // The CONFIG SET is truncated from the log with the checkpoints after it: only the checkpoint can carry it.
        await WriteAsync(cluster, "k", 1000);
        await cluster.WaitUntilAsync(s => s.Checkpoint is { } c && c.Sequence > 200 && s.LogFirst > c.Sequence, "a checkpoint after the CONFIG SET, and the log truncated to it");
        await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2") is { Generation: 2, State: "up" }, "r2 rebuilt and voting");
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+replica-restored" && e.Replica == "r2");
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+replica-restore-refused");

        await using var direct = await cluster.ConnectReplicaAsync("r2");
        Assert.Equal("7", (await direct.CallAsync("CONFIG", "GET", "hash-max-listpack-entries")).Items![1].AsString());
        Assert.Equal("AKE", (await direct.CallAsync("CONFIG", "GET", "notify-keyspace-events")).Items![1].AsString());
        await cluster.AssertReplicasIdenticalAsync();
    }

    [Fact]
    public async Task A_replaced_replica_starts_from_the_newest_checkpoint_and_replays_less_than_one_interval()
    {
        const int interval = 500;
        await using var cluster = await StartRedisAsync(Checkpoints(everyEntries: interval));
        await WriteAsync(cluster, "k", 4000);

        // Quiet now: the group checkpoints until fewer than one interval of entries follow the newest checkpoint.
        await cluster.WaitUntilAsync(s => s.Checkpoint is { } c && s.Head - c.Sequence < interval && s.LogFirst > c.Sequence, "a checkpoint within one interval of the head, and the log truncated to it");
        var before = cluster.Host.Status();
        Assert.True(before.Head - before.LogFirst + 1 < interval, $"the log holds #{before.LogFirst}..#{before.Head}");

        await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2") is { Generation: 2, State: "up" }, "r2 rebuilt and voting");

        var r2 = cluster.Replica("r2");
        Assert.NotNull(r2.LastReplay);
        Assert.InRange(r2.LastReplay!.Value, 0, interval - 1);
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+replica-restored" && e.Replica == "r2");

        await cluster.WaitHealthyAsync();
        var expected = await cluster.DumpAsync("r1");
        Assert.Equal(4000, expected.Count);
        Assert.Equal(expected, await cluster.DumpAsync("r2"));
        await using var client = await cluster.ConnectAsync();
        Assert.Equal("value-3999", (await client.CallAsync("GET", "k:3999")).AsString());
    }

    [Fact]
    public async Task A_background_checkpoint_is_verified_from_the_files_and_stores_a_file_whose_digest_won()
    {
        // No --enable-debug-command: the digest is Resh's, from the files.
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var cluster = await Cluster.StartAsync([.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))], BackgroundCheckpoints(TimeSpan.FromHours(1)));
        await WriteAsync(cluster, "k", 2000);

        VerifiedCheckpoint verified;
        try
        {
            verified = await cluster.Host.CheckpointAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException(e.Message + "; events: " + string.Join(" | ", cluster.Host.Events.Since().Select(x => $"{x.Name} {x.Replica} {x.Detail}")), e);
        }

        var labels = verified.Labels!;
        Assert.StartsWith("rdb:", labels["resh.digest"], StringComparison.Ordinal);
        Assert.Contains(" db0=2000", labels["resh.digest"], StringComparison.Ordinal);
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+checkpoint-mismatch" or "+checkpoint-failed");

        // What is stored is byte for byte the dump of the replica named in its labels, and digests as voted.
        var restored = Path.Combine(cluster.StateDirectory, "restored-for-test");
        await ((IModeHost)cluster.Host).Store!.RestoreAsync(verified.SnapshotId, restored);
        var stored = Path.Combine(restored, "dump.rdb");
        Assert.Equal(labels["resh.digest"], RdbDigest.Compute(stored));
        var winner = labels["resh.replica"];
        var generation = cluster.Replica(winner).Generation;
        var original = Path.Combine(cluster.StateDirectory, "replicas", winner, $"g{generation}", "dump.rdb");
        Assert.Equal(await File.ReadAllBytesAsync(original), await File.ReadAllBytesAsync(stored));

        // A replica rebuilt from it holds the data.
        await cluster.Host.InjectAsync("r3", FaultKind.Crash, CancellationToken.None);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r3") is { Generation: 2, State: "up" }, "r3 rebuilt from the checkpoint and voting");
        Assert.Equal(await cluster.DumpAsync("r1"), await cluster.DumpAsync("r3"));
    }

    [Fact]
    public async Task A_replica_trailing_while_its_background_flush_runs_is_not_suspected_for_lag()
    {
        Tools.Require("redis-server", "apt-get install redis-server");

        // The flush is "done" when the test opens a gate in each replica, so every replica's flush runs as long as the test needs.
        await using var cluster = await Cluster.StartAsync([.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))], o =>
        {
            o.Group.Checkpoint = ReshOptions.RedisBackgroundCheckpoint();
            (o.Group.Checkpoint.FlushDone, o.Group.Checkpoint.FlushDoneWhen, o.Group.Checkpoint.FlushFailedWhen) = ("GET flushgate", "open", null);
            (o.Group.Checkpoint.FlushBy, o.Group.Checkpoint.Every) = (CheckpointFlushers.All, TimeSpan.FromHours(1));
            (o.Group.MaxLag, o.Group.SlowDelay, o.Group.ReplyTimeout) = (50, TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(10));
        });
        async Task GateAsync(string state)
        {
            foreach (var id in new[] { "r1", "r2", "r3" })
            {
                await using var direct = await cluster.ConnectReplicaAsync(id);
                Assert.Equal("OK", (await direct.CallAsync("SET", "flushgate", state)).AsString());
            }
        }

        // In pipelines below max-lag, each applied by every replica before the next: a pipeline of 100 leaves the replica
        // whose replies are read last (on a cold gateway, after the others' first replies compiled the reply path) more
        // than 50 behind for a moment, which is a lag; and pipelines that wait only for a majority can leave a replica
        // descheduled on a busy machine behind by more than one of them.
        for (var i = 0; i < 4; i++)
        {
            await WriteAsync(cluster, $"before{i}-", 25, pipeline: 25);
            await cluster.WaitUntilAsync(s => s.Replicas.All(r => r.Applied == s.Head), "every replica applied the pipeline");
        }

        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected");
        await GateAsync("closed");
        var checkpoint = cluster.Host.CheckpointAsync(CancellationToken.None);
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await using var direct = await cluster.ConnectReplicaAsync(id);
            try
            {
                await Tools.WaitUntilAsync(async () => (await PersistenceAsync(direct))["rdb_saves"] == "1", TimeSpan.FromSeconds(30), $"{id} saved in the background");
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\n{cluster.Describe()}", e);
            }
        }

        // r2 answers 5 ms late each: while r1 and r3 decide 400 writes, it trails by far more than max-lag (50).
        await cluster.Host.InjectAsync("r2", FaultKind.Slow, CancellationToken.None);
        await WriteAsync(cluster, "during", 400);
        await cluster.WaitUntilAsync(s => s.Head - s.Replicas.Single(r => r.Id == "r2").Applied > 200, "r2 trailing by more than 200 entries");
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Applied == s.Head, "r2 caught up");
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+replica-suspected");
        Assert.False(checkpoint.IsCompleted, "the flushes still run");

        await GateAsync("open");
        var verified = await checkpoint.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Contains(" db0=101", verified.Labels!["resh.digest"], StringComparison.Ordinal); // the 100 keys before and the gate
        Assert.True(cluster.Replica("r2").Generation == 1, $"r2 was rebuilt: {cluster.Describe()}");
    }

    [Theory]
    [InlineData(CheckpointFlushers.Quorum)]
    [InlineData(CheckpointFlushers.All)]
    public async Task Background_checkpoints_are_flushed_by_f_plus_one_replicas_in_turn_unless_all_are_asked_for(CheckpointFlushers flushBy)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var cluster = await Cluster.StartAsync([.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))], o =>
        {
            BackgroundCheckpoints(TimeSpan.FromHours(1))(o);
            o.Group.Checkpoint!.FlushBy = flushBy;
        });

        const int checkpoints = 3;
        for (var i = 0; i < checkpoints; i++)
        {
            await WriteAsync(cluster, $"k{i}", 100);
            var verified = await cluster.Host.CheckpointAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Contains($" db0={100 * (i + 1)}", verified.Labels!["resh.digest"], StringComparison.Ordinal);
        }

        // Each replica's own count of saves: f+1 = 2 per checkpoint in turn (none rests twice in a row), or all 3.
        // A checkpoint is verified by f+1 equal digests, so with every replica flushing the last one may still
        // be saving when the call returns: read each count once its replica has no save in progress.
        var saves = new List<int>();
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await using var direct = await cluster.ConnectReplicaAsync(id);
            var info = new Dictionary<string, string>();
            await Tools.WaitUntilAsync(async () =>
            {
                info = await PersistenceAsync(direct);
                return info["rdb_bgsave_in_progress"] == "0";
            }, TimeSpan.FromSeconds(60), $"{id} has no background save in progress");
            saves.Add(int.Parse(info["rdb_saves"], System.Globalization.CultureInfo.InvariantCulture));
        }

        if (flushBy == CheckpointFlushers.Quorum)
        {
            Assert.Equal(2 * checkpoints, saves.Sum());
            Assert.All(saves, n => Assert.InRange(n, 1, checkpoints - 1));
        }
        else
        {
            // Every replica is asked, but one whose writer reaches a checkpoint entry only after f+1 others decided it
            // skips its flush, as a replaying replica does (on a loaded machine, about one checkpoint in thirty here):
            // each checkpoint is flushed by two or three, and by more than the rotation of f+1 would (exactly 2 each).
            Assert.True(saves.Sum() > 2 * checkpoints && saves.All(n => n >= 1), $"saves per replica: {string.Join(", ", saves)}");
        }

        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+checkpoint-mismatch" or "+checkpoint-failed");
        await cluster.WaitHealthyAsync();
        await cluster.AssertReplicasIdenticalAsync();
    }

    [Fact]
    public async Task Corrupted_state_is_caught_by_the_rdb_digest_of_a_background_checkpoint_and_repaired()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        await using var cluster = await Cluster.StartAsync([.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))], BackgroundCheckpoints(TimeSpan.FromMilliseconds(300)));
        await CorruptR1UntilRebuiltAsync(cluster);
        Assert.Contains("checkpoint", cluster.Replica("r1").LastSuspicion, StringComparison.Ordinal);
        Assert.Contains(cluster.Host.Events.Since(), e => e.Name == "+checkpoint-mismatch" && e.Replica == "r1");

        await cluster.WaitHealthyAsync();
        Assert.Equal(await cluster.DumpAsync("r2"), await cluster.DumpAsync("r1"));
    }

    [Fact]
    public async Task Corrupted_state_that_nobody_reads_is_caught_by_the_checkpoint_digest_and_repaired()
    {
        await using var cluster = await StartRedisAsync(Checkpoints(every: TimeSpan.FromMilliseconds(300)));
        await CorruptR1UntilRebuiltAsync(cluster);
        var r1 = cluster.Replica("r1");
        Assert.True(r1.Mismatches >= 1);
        Assert.Contains("mismatch", r1.LastSuspicion, StringComparison.Ordinal);

        await cluster.WaitHealthyAsync();
        Assert.Equal(await cluster.DumpAsync("r2"), await cluster.DumpAsync("r1"));
    }

    [Fact]
    public async Task Without_a_digest_command_replicas_are_compared_by_the_sha256_of_their_files()
    {
        Tools.Require("python3", "apt-get install python3");
        var script = Path.Combine(AppContext.BaseDirectory, "Services", "kv_server.py");
        var replicas = Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", $"python3 '{script}' --port {{port}} --dir {{dir}}")).ToList();
        const int interval = 50;
        await using var cluster = await Cluster.StartAsync(replicas, o =>
        {
            o.Protocol = "line";
            Checkpoints(everyEntries: interval, digest: null, file: "state.json")(o);
        });

        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(cluster.EndPoint).WaitAsync(TimeSpan.FromSeconds(10));
        using var reader = new StreamReader(new NetworkStream(socket), Encoding.UTF8);
        async Task<string?> CallAsync(string request)
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(request + "\n"));
            return await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        for (var i = 0; i < 300; i++)
        {
            Assert.Equal("OK", await CallAsync($"SET k{i} v{i}"));
        }

        await cluster.WaitUntilAsync(s => s.Checkpoint is { } c && s.Head - c.Sequence < interval, "a checkpoint verified by equal file hashes");
        await cluster.Host.InjectAsync("r3", FaultKind.Crash, CancellationToken.None);
        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r3") is { Generation: 2, State: "up" }, "r3 rebuilt from the checkpoint");
        Assert.InRange(cluster.Replica("r3").LastReplay ?? -1, 0, interval - 1);

        // r3 now holds the restored keys: with r1 frozen, r2 and r3 must decide every read.
        await cluster.Host.InjectAsync("r1", FaultKind.Hang, CancellationToken.None);
        for (var i = 0; i < 300; i += 37)
        {
            Assert.Equal($"v{i}", await CallAsync($"GET k{i}"));
        }
    }
}
