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
}
