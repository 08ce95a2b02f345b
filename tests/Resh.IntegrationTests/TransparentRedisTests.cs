using System.Net;
using Resh.Group;
using StackExchange.Redis;

namespace Resh.IntegrationTests;

/// <summary>
/// What applications send, through StackExchange.Redis, against three real redis-server replicas: expiry and TTL
/// reads, random pops, SCAN, INFO and CONFIG as clients read them. Faults are injected during the runs; no vote
/// may split and no correct replica may be suspected, and the replicas end identical.
/// </summary>
public sealed class TransparentRedisTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static async Task<ConnectionMultiplexer> ConnectAsync(IPEndPoint endpoint)
    {
        var options = new ConfigurationOptions
        {
            EndPoints = { endpoint },
            AllowAdmin = true,
            AbortOnConnectFail = true,
            ConnectTimeout = 15000,
            SyncTimeout = 15000,
            AsyncTimeout = 15000,
        };
        return await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(Timeout);
    }

    private static Task AssertIdenticalAsync(Cluster cluster) => cluster.AssertReplicasIdenticalAsync();

    private static void AssertNoDisagreement(Cluster cluster)
    {
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name == "+disagreement");
    }

    /// <summary>Every key read through the gateway by its type, so a corrupted one is outvoted.</summary>
    private static async Task ReadEverythingAsync(IDatabase db, IServer server)
    {
        foreach (var key in server.Keys(pageSize: 100))
        {
            switch (await db.KeyTypeAsync(key))
            {
                case RedisType.String:
                    await db.StringGetAsync(key);
                    break;
                case RedisType.Set:
                    await db.SetMembersAsync(key);
                    break;
                case RedisType.Hash:
                    await db.HashGetAllAsync(key);
                    break;
                case RedisType.SortedSet:
                    await db.SortedSetRangeByRankWithScoresAsync(key);
                    break;
                case RedisType.List:
                    await db.ListRangeAsync(key);
                    break;
            }
        }
    }

    [Fact]
    public async Task Reads_racing_10000_expiring_keys_never_split_the_vote()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var redis = await ConnectAsync(cluster.EndPoint);
        var db = redis.GetDatabase();
        var random = new Random(7);
        const int Keys = 10_000;
        var sets = Enumerable.Range(0, Keys).Select(i => db.StringSetAsync($"e:{i}", $"v{i}", TimeSpan.FromMilliseconds(300 + random.Next(1500)))).ToArray();
        Assert.All(await Task.WhenAll(sets).WaitAsync(Timeout), Assert.True);

        // Read every key again and again while the deadlines pass: each read must be voted, never refused.
        var keys = Enumerable.Range(0, Keys).Select(i => (RedisKey)$"e:{i}").ToArray();
        var rounds = 0;
        long present;
        do
        {
            present = 0;
            foreach (var chunk in keys.Chunk(500))
            {
                var values = await db.StringGetAsync(chunk).WaitAsync(Timeout);
                present += values.Count(v => v.HasValue);
                var ttls = await Task.WhenAll(chunk.Take(20).Select(k => db.KeyTimeToLiveAsync(k))).WaitAsync(Timeout);
                Assert.All(ttls, t => Assert.True(t is null || t.Value <= TimeSpan.FromSeconds(2), $"ttl {t}"));
            }

            rounds++;
        }
        while (present > 0 && rounds < 500);

        Assert.Equal(0, present);
        Assert.True(rounds > 2, $"the keys expired within {rounds} rounds: no read raced a deadline");
        await Tools.WaitUntilAsync(async () => await db.ExecuteAsync("DBSIZE") is var size && (long)size == 0, Timeout, "every expired key deleted through the log");
        AssertNoDisagreement(cluster);
        Assert.All(cluster.Host.Status().Replicas, r => Assert.Equal((0L, 0L), (r.Mismatches, r.Recoveries)));
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_cache_with_expiry_random_pops_and_introspection_work_as_against_one_server()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var redis = await ConnectAsync(cluster.EndPoint);
        var db = redis.GetDatabase();
        var server = redis.GetServer(cluster.EndPoint);

        // Cache entries with expiry, and their TTLs as an application reads them.
        Assert.True(await db.StringSetAsync("session:1", "alice", TimeSpan.FromSeconds(100)));
        var ttl = await db.KeyTimeToLiveAsync("session:1");
        Assert.InRange(ttl!.Value.TotalSeconds, 95, 100);
        Assert.True(await db.KeyExpireAsync("session:1", TimeSpan.FromSeconds(30)));
        Assert.InRange((await db.KeyTimeToLiveAsync("session:1"))!.Value.TotalSeconds, 25, 30);
        Assert.True(await db.KeyExpireAsync("session:1", DateTime.UtcNow.AddHours(1)));
        Assert.InRange((await db.KeyTimeToLiveAsync("session:1"))!.Value.TotalMinutes, 59, 60);
        Assert.True(await db.KeyPersistAsync("session:1"));
        Assert.Null(await db.KeyTimeToLiveAsync("session:1"));
        Assert.Null(await db.KeyTimeToLiveAsync("missing"));
        Assert.True(await db.StringSetAsync("flash", "x", TimeSpan.FromMilliseconds(200)));
        await Tools.WaitUntilAsync(async () => !await db.KeyExistsAsync("flash"), Timeout, "the flash key to expire");

        // Automatic stream ids agree on every replica and never go back, even behind an explicit future id.
        var first = await db.StreamAddAsync("events", "f", "a");
        Assert.Matches("^[0-9]+-0$", (string)first!);
        Assert.Equal("99999999999999-0", (string)(await db.StreamAddAsync("events", "f", "b", messageId: "99999999999999-0"))!);
        Assert.Equal("99999999999999-1", (string)(await db.StreamAddAsync("events", "f", "c"))!);

        // A crash of one replica in the middle of the run.
        await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);

        // Random members: the gateway picks, every replica removes the same one.
        await db.SetAddAsync("jobs", [.. Enumerable.Range(0, 200).Select(i => (RedisValue)$"job{i}")]);
        var popped = new HashSet<string>();
        for (var i = 0; i < 50; i++)
        {
            popped.Add((string)(await db.SetPopAsync("jobs"))!);
        }

        Assert.Equal(50, popped.Count);
        Assert.Equal(150, await db.SetLengthAsync("jobs"));
        Assert.Equal(10, (await db.SetPopAsync("jobs", 10)).Length);
        Assert.Equal(5, (await db.SetRandomMembersAsync("jobs", 5)).Distinct().Count());
        Assert.Equal(20, (await db.SetRandomMembersAsync("jobs", -20)).Length);
        Assert.True((await db.SetRandomMemberAsync("jobs")).HasValue);
        await db.HashSetAsync("user:1", [new("name", "alice"), new("mail", "a@example.org"), new("age", "30")]);
        Assert.Equal(2, (await db.HashRandomFieldsWithValuesAsync("user:1", 2)).Length);
        await db.SortedSetAddAsync("board", [new("a", 1), new("b", 2.5), new("c", 3)]);
        var ranked = await db.SortedSetRandomMembersWithScoresAsync("board", 3);
        Assert.Equal(new[] { 1.0, 2.5, 3.0 }, ranked.Select(e => e.Score).Order());
        Assert.False(string.IsNullOrEmpty(await db.KeyRandomAsync()));

        // A corrupted replica in the middle of the run.
        await cluster.WaitHealthyAsync();
        await cluster.Host.InjectAsync("r2", FaultKind.Corrupt, CancellationToken.None);

        // What clients read on connect and operators read from dashboards.
        var info = await server.InfoAsync();
        Assert.Contains(info.SelectMany(g => g), p => p.Key == "role" && p.Value == "master");
        Assert.Contains(info.SelectMany(g => g), p => p.Key == "redis_version");
        var config = await server.ConfigGetAsync("maxmemory*");
        Assert.Contains(config, p => p.Key == "maxmemory-policy");
        Assert.Equal(cluster.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), (await server.ConfigGetAsync("port")).Single().Value);
        Assert.InRange((await server.TimeAsync()) - DateTime.UtcNow, TimeSpan.FromSeconds(-5), TimeSpan.FromSeconds(5));
        Assert.Equal(await server.DatabaseSizeAsync(), server.Keys(pageSize: 2).Count());
        Assert.Equal("master", (await server.RoleAsync()).Value);
        await server.ConfigSetAsync("slowlog-max-len", "64");
        Assert.Equal("64", (await server.ConfigGetAsync("slowlog-max-len")).Single().Value);

        await ReadEverythingAsync(db, server);
        await Tools.WaitUntilAsync(() => cluster.Host.Status().Replicas.All(r => r.Recoveries >= (r.Id == "r3" ? 0 : 1)), Timeout, "r1 and r2 rebuilt");
        AssertNoDisagreement(cluster);
        Assert.Equal(0, cluster.Replica("r3").Recoveries);
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Scan_over_100k_keys_while_writes_go_on_returns_every_key_present_throughout()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var redis = await ConnectAsync(cluster.EndPoint);
        var db = redis.GetDatabase();
        var server = redis.GetServer(cluster.EndPoint);
        const int Keys = 100_000;
        foreach (var chunk in Enumerable.Range(0, Keys).Chunk(5000))
        {
            await Task.WhenAll(chunk.Select(i => db.StringSetAsync($"s:{i}", i))).WaitAsync(Timeout);
        }

        await db.SetAddAsync("tags", [.. Enumerable.Range(0, 2000).Select(i => (RedisValue)$"t{i}")]);
        await db.HashSetAsync("profile", [.. Enumerable.Range(0, 1000).Select(i => new HashEntry($"f{i}", i))]);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                await db.StringSetAsync($"new:{n++}", n);
                await db.KeyDeleteAsync($"new:{n - 2}");
            }

            return n;
        });

        var seen = new HashSet<string>();
        var injected = false;
        foreach (var key in server.Keys(pattern: "s:*", pageSize: 1000))
        {
            seen.Add(key!);
            if (!injected && seen.Count == Keys / 2)
            {
                // The iteration is the gateway's: a rebuilt replica does not invalidate its cursor.
                await cluster.Host.InjectAsync("r3", FaultKind.Crash, CancellationToken.None);
                injected = true;
            }
        }

        await stop.CancelAsync();
        Assert.True(await writer.WaitAsync(Timeout) > 0);
        Assert.Equal(Keys, seen.Count);
        Assert.Equal(2000, db.SetScan("tags", pageSize: 100).Count());
        Assert.Equal(10, db.SetScan("tags", "t1?", pageSize: 100).Count());
        Assert.Equal(1000, db.HashScan("profile", pageSize: 64).Select(e => e.Name.ToString()).Distinct().Count());
        AssertNoDisagreement(cluster);
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Optimistic_transactions_and_locks_decided_in_log_order_lose_no_increment()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var redis = await ConnectAsync(cluster.EndPoint);
        var db = redis.GetDatabase();

        // A distributed lock as client libraries implement it (SET NX PX; release and extend are WATCH transactions).
        Assert.True(await db.LockTakeAsync("lock:report", "worker-1", TimeSpan.FromSeconds(30)));
        Assert.False(await db.LockTakeAsync("lock:report", "worker-2", TimeSpan.FromSeconds(30)));
        Assert.False(await db.LockReleaseAsync("lock:report", "worker-2"));
        Assert.True(await db.LockExtendAsync("lock:report", "worker-1", TimeSpan.FromSeconds(60)));
        Assert.InRange((await db.KeyTimeToLiveAsync("lock:report"))!.Value.TotalSeconds, 55, 60);
        Assert.True(await db.LockReleaseAsync("lock:report", "worker-1"));
        Assert.False(await db.KeyExistsAsync("lock:report"));

        // Read-modify-write under contention: each increment retried until its EXEC is not aborted.
        await db.StringSetAsync("balance", 0);
        var aborted = 0;
        var injected = 0;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            await using var own = await ConnectAsync(cluster.EndPoint);
            var mine = own.GetDatabase();
            for (var i = 0; i < 50; i++)
            {
                while (true)
                {
                    var current = (long)await mine.StringGetAsync("balance");
                    var transaction = mine.CreateTransaction();
                    transaction.AddCondition(Condition.StringEqual("balance", current));
                    _ = transaction.StringSetAsync("balance", current + 1);
                    if (await transaction.ExecuteAsync())
                    {
                        break;
                    }

                    Interlocked.Increment(ref aborted);
                }

                if (w == 0 && i == 25 && Interlocked.Exchange(ref injected, 1) == 0)
                {
                    await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
                }
            }
        }))).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(200, (long)await db.StringGetAsync("balance"));
        Assert.True(aborted > 0, "the writers never conflicted: the test proves nothing");

        // A corrupted replica afterwards: outvoted at the next read, and rebuilt.
        await cluster.WaitHealthyAsync();
        await cluster.Host.InjectAsync("r3", FaultKind.Corrupt, CancellationToken.None);
        await ReadEverythingAsync(db, redis.GetServer(cluster.EndPoint));
        await Tools.WaitUntilAsync(() => cluster.Replica("r3").Recoveries >= 1, Timeout, "r3 rebuilt");
        Assert.Equal(200, (long)await db.StringGetAsync("balance"));
        AssertNoDisagreement(cluster);
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_job_queue_with_two_workers_on_blpop_delivers_every_job_exactly_once()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        const int Jobs = 300;
        var taken = new System.Collections.Concurrent.ConcurrentBag<(int Worker, string Job)>();
        using var done = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            await using var client = await cluster.ConnectAsync();
            while (taken.Count < Jobs)
            {
                var reply = await client.CallAsync("BLPOP", "jobs", "urgent", "1").WaitAsync(Timeout);
                if (reply.Items is { Count: 2 } pair)
                {
                    taken.Add((w, pair[1].AsString()!));
                }
            }
        })).ToArray();

        await using (var producer = await cluster.ConnectAsync())
        {
            Assert.Equal("OK", (await producer.CallAsync("SET", "queue:name", "jobs")).AsString());
            for (var i = 0; i < Jobs; i++)
            {
                Assert.True((await producer.CallAsync("RPUSH", i % 10 == 0 ? "urgent" : "jobs", $"job{i}")).Integer > 0);
                if (i == Jobs / 2)
                {
                    await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);
                }

                if (i == 3 * Jobs / 4)
                {
                    await cluster.Host.InjectAsync("r2", FaultKind.Corrupt, CancellationToken.None);
                }
            }

            // A blocked client times out by the gateway's clock with a null reply.
            var empty = await producer.CallAsync("BLPOP", "nothing", "0.2").WaitAsync(Timeout);
            Assert.True(empty.IsNull);

            // A request pipelined behind a blocking one waits for it, then is answered (the client is blocked as in Redis).
            using var raw = new System.Net.Sockets.TcpClient();
            await raw.ConnectAsync(cluster.EndPoint).WaitAsync(Timeout);
            var stream = raw.GetStream();
            await stream.WriteAsync("BLPOP nothing 0.2\r\nPING\r\n"u8.ToArray());
            var received = new List<byte>();
            var chunk = new byte[64];
            while (!System.Text.Encoding.ASCII.GetString([.. received]).EndsWith("+PONG\r\n", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(chunk).AsTask().WaitAsync(Timeout);
                Assert.True(n > 0, "the gateway closed the connection");
                received.AddRange(chunk[..n]);
            }

            Assert.Equal("*-1\r\n+PONG\r\n", System.Text.Encoding.ASCII.GetString([.. received]));
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(2));
        await using (var redis = await ConnectAsync(cluster.EndPoint))
        {
            await ReadEverythingAsync(redis.GetDatabase(), redis.GetServer(cluster.EndPoint));
        }

        await Tools.WaitUntilAsync(() => cluster.Replica("r2").Recoveries >= 1, Timeout, "the corrupted r2 rebuilt");
        Assert.Equal(Jobs, taken.Count);
        Assert.Equal(Jobs, taken.Select(t => t.Job).Distinct().Count());
        Assert.Equal(2, taken.Select(t => t.Worker).Distinct().Count());
        AssertNoDisagreement(cluster);
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task A_consumer_group_with_blocking_readers_claims_and_pending_is_the_same_on_every_replica()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        const int Jobs = 200;
        await using var redis = await ConnectAsync(cluster.EndPoint);
        var db = redis.GetDatabase();
        Assert.True(await db.StreamCreateConsumerGroupAsync("orders", "workers", "0-0", createStream: true));

        // Two workers block in XREADGROUP; every seventh job is left unacknowledged, as a worker that died would.
        var taken = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        var unacked = new System.Collections.Concurrent.ConcurrentBag<string>();
        var workers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            await using var client = await cluster.ConnectAsync();
            while (taken.Count < Jobs)
            {
                var reply = await client.CallAsync("XREADGROUP", "GROUP", "workers", $"w{w}", "COUNT", "5", "BLOCK", "1000", "STREAMS", "orders", ">").WaitAsync(Timeout);
                Assert.False(reply.IsError, reply.ToString());
                foreach (var entry in reply.IsNull ? [] : reply.Items![0].Items![1].Items!)
                {
                    var id = entry.Items![0].AsString()!;
                    var job = int.Parse(entry.Items[1].Items![1].AsString()!, System.Globalization.CultureInfo.InvariantCulture);
                    Assert.True(taken.TryAdd(id, $"w{w}"), $"{id} delivered twice");
                    if (job % 7 == 0)
                    {
                        unacked.Add(id);
                    }
                    else
                    {
                        Assert.Equal(1, (await client.CallAsync("XACK", "orders", "workers", id)).Integer);
                    }
                }
            }
        })).ToArray();

        for (var i = 0; i < Jobs; i++)
        {
            Assert.False((await db.StreamAddAsync("orders", "job", i)).IsNull);
            if (i == Jobs / 2)
            {
                await cluster.Host.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);
            }

            if (i == 3 * Jobs / 4)
            {
                await cluster.Host.InjectAsync("r2", FaultKind.Corrupt, CancellationToken.None);
            }
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(Jobs, taken.Count);

        // Nothing new: a blocked read times out by the gateway's clock with a null reply.
        await using (var client = await cluster.ConnectAsync())
        {
            Assert.True((await client.CallAsync("XREADGROUP", "GROUP", "workers", "w0", "BLOCK", "200", "STREAMS", "orders", ">").WaitAsync(Timeout)).IsNull);
        }

        // The pending entries are the unacknowledged ones; none has been idle an hour, so a claim that asks for that takes
        // nothing, and one that asks for no idle time takes them all.
        var pending = await db.StreamPendingMessagesAsync("orders", "workers", 1000, RedisValue.Null);
        Assert.Equal(unacked.Order().ToArray(), pending.Select(p => p.MessageId.ToString()).Order().ToArray());
        Assert.All(pending, p => Assert.InRange(p.IdleTimeInMilliseconds, 0, 600_000));
        Assert.Equal(unacked.Count, (await db.StreamPendingAsync("orders", "workers")).PendingMessageCount);
        Assert.Empty(await db.StreamClaimIdsOnlyAsync("orders", "workers", "reaper", 3_600_000, [.. unacked.Select(id => (RedisValue)id)]));
        var auto = await db.StreamAutoClaimIdsOnlyAsync("orders", "workers", "reaper", 3_600_000, "0-0", 100);
        Assert.Empty(auto.ClaimedIds);
        auto = await db.StreamAutoClaimIdsOnlyAsync("orders", "workers", "reaper", 0, "0-0", 100);
        Assert.Equal(unacked.Order().ToArray(), auto.ClaimedIds.Select(id => id.ToString()).Order().ToArray());
        Assert.Equal(unacked.Count, (await db.StreamClaimAsync("orders", "workers", "w1", 0, [.. unacked.Select(id => (RedisValue)id)])).Length);

        // A RESP3 client reads its history as a map of streams, as from Redis.
        await using (var client = await cluster.ConnectAsync())
        {
            Assert.False((await client.CallAsync("HELLO", "3")).IsError);
            var history = await client.CallAsync("XREADGROUP", "GROUP", "workers", "w1", "STREAMS", "orders", "0").WaitAsync(Timeout);
            Assert.Equal('%', history.Type);
            Assert.Equal("orders", history.Items![0].AsString());
            Assert.Equal(unacked.Count, history.Items[1].Items!.Count);
        }

        var consumers = await db.StreamConsumerInfoAsync("orders", "workers");
        Assert.Equal(unacked.Count, consumers.Single(c => c.Name == "w1").PendingMessageCount);
        Assert.Equal(Jobs, (await db.StreamInfoAsync("orders")).Length);
        Assert.Equal(3, (await db.StreamConsumerInfoAsync("orders", "workers")).Length);

        await Tools.WaitUntilAsync(() => cluster.Replica("r2").Recoveries >= 1, Timeout, "the corrupted r2 rebuilt");
        AssertNoDisagreement(cluster);
        await AssertIdenticalAsync(cluster);

        // The group itself (delivery times and counts of every pending entry) is the same on every replica, including the
        // one rebuilt by replaying the log; only when each replica last saw a consumer is its own.
        var groups = new List<string>();
        foreach (var replica in cluster.Host.Status().Replicas)
        {
            await using var direct = await cluster.ConnectReplicaAsync(replica.Id);
            var full = (await direct.CallAsync("XINFO", "STREAM", "orders", "FULL", "COUNT", "0")).ToString();
            groups.Add(System.Text.RegularExpressions.Regex.Replace(full, "seen-time\\W+\\d+", "seen-time"));
        }

        Assert.All(groups.Skip(1), g => Assert.Equal(groups[0], g));
    }

    [Fact]
    public async Task Pub_sub_with_pattern_subscribers_delivers_every_message_once_in_order()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var subscriberConnection = await ConnectAsync(cluster.EndPoint);
        await using var publisherConnection = await ConnectAsync(cluster.EndPoint);
        var subscriber = subscriberConnection.GetSubscriber();
        var exact = await subscriber.SubscribeAsync(RedisChannel.Literal("orders.new"));
        var pattern = await subscriber.SubscribeAsync(RedisChannel.Pattern("orders.*"));
        var publisher = publisherConnection.GetSubscriber();
        const int Messages = 200;
        for (var i = 0; i < Messages; i++)
        {
            var receivers = await publisher.PublishAsync(RedisChannel.Literal(i % 2 == 0 ? "orders.new" : "orders.paid"), $"m{i}");
            Assert.Equal(i % 2 == 0 ? 2 : 1, receivers);
            if (i == Messages / 2)
            {
                await cluster.Host.InjectAsync("r3", FaultKind.Crash, CancellationToken.None);
            }
        }

        async Task<List<string>> ReadAsync(ChannelMessageQueue queue, int count)
        {
            var got = new List<string>();
            while (got.Count < count)
            {
                got.Add((string)(await queue.ReadAsync().AsTask().WaitAsync(Timeout)).Message!);
            }

            return got;
        }

        Assert.Equal(Enumerable.Range(0, Messages).Where(i => i % 2 == 0).Select(i => $"m{i}"), await ReadAsync(exact, Messages / 2));
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"m{i}"), await ReadAsync(pattern, Messages));
        await exact.UnsubscribeAsync();
        Assert.Equal(1, await publisher.PublishAsync(RedisChannel.Literal("orders.new"), "after"));
        AssertNoDisagreement(cluster);
        await AssertIdenticalAsync(cluster);
    }

    [Fact]
    public async Task Client_pause_holds_writes_of_every_session_until_unpause_while_reads_go_on()
    {
        await using var cluster = await Cluster.StartRedisAsync();
        await using var admin = await cluster.ConnectAsync();
        await using var writer = await cluster.ConnectAsync();
        Assert.Equal("OK", (await admin.CallAsync("CLIENT", "PAUSE", "600000", "WRITE")).AsString());
        var held = writer.CallAsync("SET", "paused", "1");

        // A read goes on during a WRITE pause and does not see the held write; UNPAUSE lets it through.
        Assert.True((await admin.CallAsync("GET", "paused").WaitAsync(Timeout)).IsNull);
        Assert.False(held.IsCompleted);
        Assert.Equal("OK", (await admin.CallAsync("CLIENT", "UNPAUSE")).AsString());
        Assert.Equal("OK", (await held.WaitAsync(Timeout)).AsString());
        Assert.Equal("1", (await admin.CallAsync("GET", "paused")).AsString());

        // A pause that ends by its timeout releases the held requests by the gateway's clock.
        Assert.Equal("OK", (await admin.CallAsync("CLIENT", "PAUSE", "200")).AsString());
        Assert.Equal(2, (await writer.CallAsync("INCR", "paused").WaitAsync(Timeout)).Integer);
        Assert.True((await admin.CallAsync("CLIENT", "PAUSE", "-1")).IsError);
        Assert.True((await admin.CallAsync("CLIENT", "PAUSE", "10", "SOME")).IsError);
        AssertNoDisagreement(cluster);
    }

    [Fact]
    public async Task A_password_in_the_resh_configuration_is_checked_by_the_gateway()
    {
        await using var cluster = await Cluster.StartRedisAsync(configure: o => o.Resp.Users["default"] = "s3cret");
        var options = ConfigurationOptions.Parse($"{cluster.EndPoint},password=s3cret,connectTimeout=15000,syncTimeout=15000");
        await using (var redis = await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(Timeout))
        {
            Assert.True(await redis.GetDatabase().StringSetAsync("guarded", "yes"));
        }

        await using var client = await cluster.ConnectAsync();
        Assert.Equal("NOAUTH Authentication required.", (await client.CallAsync("GET", "guarded")).AsString());
        Assert.StartsWith("WRONGPASS", (await client.CallAsync("AUTH", "wrong")).AsString(), StringComparison.Ordinal);
        Assert.Equal("OK", (await client.CallAsync("AUTH", "s3cret")).AsString());
        Assert.Equal("yes", (await client.CallAsync("GET", "guarded")).AsString());
    }
}
