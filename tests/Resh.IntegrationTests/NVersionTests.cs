using Resh.Cli;

namespace Resh.IntegrationTests;

/// <summary>redis-server, Garnet and redis-server vote together (examples/nversion.yaml).</summary>
public sealed class NVersionTests
{
    [Fact]
    public async Task A_mixed_workload_passes_across_redis_and_garnet_with_code_only_errors()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        Tools.Require("dotnet", "the .NET SDK");
        var example = Path.Combine(Tools.RepoRoot, "examples", "nversion.yaml");
        var options = ConfigLoader.LoadFile(example);
        await using var cluster = await Cluster.StartAsync(options.Group.Replicas, o =>
        {
            o.Resp = options.Resp;
            o.Group.StartupTimeout = options.Group.StartupTimeout;
        });
        Assert.Contains(cluster.Host.Status().Replicas, r => r.Id == "garnet");
        await using var client = await cluster.ConnectAsync();

        for (var i = 0; i < 200; i++)
        {
            Assert.Equal("OK", (await client.CallAsync("SET", $"nv:{i}", $"value-{i}")).AsString());
        }

        Assert.Equal("value-7", (await client.CallAsync("GET", "nv:7")).AsString());
        Assert.Equal(1, (await client.CallAsync("INCR", "nv:counter")).Integer);
        Assert.Equal(11, (await client.CallAsync("INCRBY", "nv:counter", "10")).Integer);
        Assert.Equal(1, (await client.CallAsync("DEL", "nv:0")).Integer);
        Assert.Equal(0, (await client.CallAsync("EXISTS", "nv:0")).Integer);
        Assert.Equal(2, (await client.CallAsync("EXISTS", "nv:1", "nv:2")).Integer);
        Assert.Equal(12, (await client.CallAsync("APPEND", "nv:1", "-more")).Integer);
        var mget = await client.CallAsync("MGET", "nv:1", "nv:missing", "nv:3");
        Assert.Equal(["value-1-more", null, "value-3"], mget.Items!.Select(v => v.AsString()));
        Assert.Equal("OK", (await client.CallAsync("MSET", "a", "1", "b", "2")).AsString());
        Assert.Equal(3, (await client.CallAsync("RPUSH", "nv:list", "x", "y", "z")).Integer);
        Assert.Equal(3, (await client.CallAsync("LLEN", "nv:list")).Integer);
        Assert.Equal("x", (await client.CallAsync("LPOP", "nv:list")).AsString());
        Assert.Equal(1, (await client.CallAsync("HSET", "nv:hash", "f", "v")).Integer);
        Assert.Equal("v", (await client.CallAsync("HGET", "nv:hash", "f")).AsString());

        // Errors whose texts differ between the implementations still agree by their code.
        var wrongType = await client.CallAsync("INCR", "nv:list");
        Assert.True(wrongType.IsError);
        var notInt = await client.CallAsync("INCR", "nv:1");
        Assert.True(notInt.IsError);

        var status = cluster.Host.Status();
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+disagreement" or "+replica-suspected");
        Assert.All(status.Replicas, r => Assert.Equal(0, r.Mismatches));
    }

    [Fact]
    public async Task The_determinism_layer_holds_across_redis_and_garnet()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var options = ConfigLoader.LoadFile(Path.Combine(Tools.RepoRoot, "examples", "nversion.yaml"));
        await using var cluster = await Cluster.StartAsync(options.Group.Replicas, o =>
        {
            o.Resp = options.Resp;
            o.Group.StartupTimeout = options.Group.StartupTimeout;
        });
        var timeout = TimeSpan.FromSeconds(30);
        await using var client = await cluster.ConnectAsync();

        // Expiry owned by the gateway: TTL read from the voted deadline, the key deleted through the log. (Garnet 2.2.8
        // refuses SET ... PXAT, the form SET ... EX takes under the gateway, so the deadlines are set with EXPIRE here.)
        Assert.Equal("OK", (await client.CallAsync("SET", "session", "x")).AsString());
        Assert.Equal(1, (await client.CallAsync("EXPIRE", "session", "100")).Integer);
        Assert.InRange((await client.CallAsync("TTL", "session")).Integer, 95, 100);
        Assert.Equal("OK", (await client.CallAsync("SET", "flash", "x")).AsString());
        Assert.Equal(1, (await client.CallAsync("PEXPIRE", "flash", "150")).Integer);
        await Tools.WaitUntilAsync(async () => (await client.CallAsync("EXISTS", "flash")).Integer == 0, timeout, "flash to be deleted");

        // Random members picked by the gateway's seed, the same on both implementations.
        Assert.Equal(20, (await client.CallAsync(["SADD", "pool", .. Enumerable.Range(0, 20).Select(i => $"m{i}")])).Integer);
        Assert.False((await client.CallAsync("SPOP", "pool")).IsNull);
        Assert.Equal(3, (await client.CallAsync("SRANDMEMBER", "pool", "3")).Items!.Count);
        Assert.Equal(18, (await client.CallAsync("SPOP", "pool", "18")).Items!.Count);

        // A cursor kept by the gateway.
        for (var i = 0; i < 30; i++)
        {
            await client.CallAsync("SET", $"scan:{i}", "v");
        }

        var seen = new HashSet<string>();
        var cursor = "0";
        do
        {
            var page = await client.CallAsync("SCAN", cursor, "MATCH", "scan:*", "COUNT", "7");
            cursor = page.Items![0].AsString()!;
            seen.UnionWith(page.Items[1].Items!.Select(k => k.AsString()!));
        }
        while (cursor != "0");
        Assert.Equal(30, seen.Count);

        // WATCH decided in log order: a write between WATCH and EXEC aborts the block.
        await using var other = await cluster.ConnectAsync();
        Assert.Equal("OK", (await client.CallAsync("WATCH", "scan:1")).AsString());
        await other.CallAsync("SET", "scan:1", "changed");
        await client.CallAsync("MULTI");
        await client.CallAsync("SET", "scan:1", "mine");
        Assert.True((await client.CallAsync("EXEC")).IsNull);
        Assert.Equal("changed", (await client.CallAsync("GET", "scan:1")).AsString());

        // A blocked pop woken by a push; a published message delivered once.
        var pop = other.CallAsync("BLPOP", "queue", "10");
        await client.CallAsync("RPUSH", "queue", "job");
        Assert.Equal("job", (await pop.WaitAsync(timeout)).Items![1].AsString());

        var status = cluster.Host.Status();
        Assert.DoesNotContain(cluster.Host.Events.Since(), e => e.Name is "+disagreement" or "+replica-suspected");
        Assert.All(status.Replicas, r => Assert.Equal(0, r.Mismatches));
    }
}
