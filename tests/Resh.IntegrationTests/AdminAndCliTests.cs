using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Resh.Cli;
using Resh.Domains;

namespace Resh.IntegrationTests;

public sealed class AdminAndCliTests
{
    [Fact]
    public async Task The_admin_endpoint_reports_status_metrics_readiness_and_events_and_guards_mutations()
    {
        var adminPort = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
        await using var cluster = await Cluster.StartRedisAsync(configure: o =>
        {
            o.Admin = new IPEndPoint(IPAddress.Loopback, adminPort);
            o.AdminToken = "s3cret";
        });
        await using (var client = await cluster.ConnectAsync())
        {
            await client.CallAsync("SET", "a", "1");
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}/"), Timeout = TimeSpan.FromSeconds(30) };
        using var status = JsonDocument.Parse(await http.GetStringAsync("status"));
        var root = status.RootElement;
        Assert.Equal("resh", root.GetProperty("mode").GetString());
        Assert.Equal(1, root.GetProperty("faults").GetInt32());
        Assert.True(root.GetProperty("head").GetInt64() >= 1);
        var replicas = root.GetProperty("replicas").EnumerateArray().ToList();
        Assert.Equal(3, replicas.Count);
        foreach (var r in replicas)
        {
            Assert.Equal("up", r.GetProperty("state").GetString());
            Assert.True(r.GetProperty("pid").GetInt32() > 0);
            Assert.True(r.GetProperty("port").GetInt32() > 0);
            Assert.True(r.TryGetProperty("applied", out _));
            Assert.Equal(0, r.GetProperty("mismatches").GetInt64());
            Assert.Equal(0, r.GetProperty("recoveries").GetInt64());
        }

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("readyz")).StatusCode);
        var metrics = await http.GetStringAsync("metrics");
        Assert.Contains("resh_requests_total{outcome=\"decided\"}", metrics, StringComparison.Ordinal);
        Assert.Contains("resh_reply_latency_seconds_bucket", metrics, StringComparison.Ordinal);
        Assert.Contains("dotnet_gc_heap_total_allocated_bytes_total", metrics, StringComparison.Ordinal);

        // Mutations: POST only, and the token is required.
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await http.GetAsync("inject")).StatusCode);
        var refused = await http.PostAsJsonAsync("inject", new { replica = "r2", fault = "crash" });
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret");
        var bad = await http.PostAsJsonAsync("inject", new { replica = "r9", fault = "crash" });
        Assert.Equal(HttpStatusCode.Conflict, bad.StatusCode);
        var unknownFault = await http.PostAsJsonAsync("inject", new { replica = "r2", fault = "explode" });
        Assert.Equal(HttpStatusCode.BadRequest, unknownFault.StatusCode);
        var ok = await http.PostAsJsonAsync("inject", new { replica = "r2", fault = "crash" });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        await cluster.WaitUntilAsync(s => s.Replicas.Single(r => r.Id == "r2").Recoveries == 1 && s.Replicas.All(r => r.State == "up"), "r2 rebuilt");
        using var events = JsonDocument.Parse(await http.GetStringAsync("events"));
        var names = events.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        Assert.Contains("+fault-injected", names);
        Assert.Contains("+replica-suspected", names);
        Assert.Contains("+replica-recovered", names);
        Assert.Contains("resh_replica_recoveries_total{replica=\"r2\"} 1", await http.GetStringAsync("metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Config_validate_exits_zero_for_the_examples_and_two_with_the_key_for_a_broken_file()
    {
        foreach (var example in new[] { "redis-3.yaml", "nversion.yaml", "redis-durable.yaml", "spare.yaml", "remus.yaml", "dresh/host-a.yaml", "dresh/host-b.yaml", "dresh/host-c.yaml" })
        {
            var output = new StringWriter();
            var code = await ReshCli.RunAsync(["config", "validate", Path.Combine(Tools.RepoRoot, "examples", example)], output, new StringWriter());
            Assert.Equal(0, code);
            Assert.Contains("valid", output.ToString(), StringComparison.Ordinal);
        }

        var broken = Path.Combine(Path.GetTempPath(), $"broken-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(broken, "service:\n  listen: 127.0.0.1:6380\nfaults: 1\nreplicas:\n  - command: redis-server --port {port}\n");
        try
        {
            var errors = new StringWriter();
            var code = await ReshCli.RunAsync(["config", "validate", broken], new StringWriter(), errors);
            Assert.Equal(2, code);
            Assert.Contains("replicas", errors.ToString(), StringComparison.Ordinal);
            Assert.Contains("2f+1 = 3", errors.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(broken);
        }
    }

    [Fact]
    public async Task Resh_run_serves_redis_cli_and_kill_9_of_resh_leaves_no_replica_behind()
    {
        var redisCli = Tools.Require("redis-cli", "apt-get install redis-tools");
        Tools.Require("redis-server", "apt-get install redis-server");
        var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
        var adminPort = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
        var dir = Path.Combine(Path.GetTempPath(), "resh-cli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var config = Tools.WriteExample("redis-3.yaml", dir, port, adminPort);
        var replicaPids = new List<int>();
        using var process = await Tools.StartReshAsync(config);
        try
        {
            var set = await RunAsync(redisCli, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "SET", "cli", "works");
            Assert.Equal("OK", set.Trim());
            var get = await RunAsync(redisCli, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "GET", "cli");
            Assert.Equal("works", get.Trim());

            // `resh status` and `resh inject` talk to the admin endpoint of the running process.
            var output = new StringWriter();
            Assert.Equal(0, await ReshCli.RunAsync(["status", "--config", config], output, new StringWriter()));
            Assert.Contains("r1", output.ToString(), StringComparison.Ordinal);
            Assert.Contains("up", output.ToString(), StringComparison.Ordinal);

            // A switchover needs a backup: mode resh refuses it, saying why, and goes on serving.
            var refused = new StringWriter();
            Assert.Equal(1, await ReshCli.RunAsync(["switchover", "--config", config], new StringWriter(), refused));
            Assert.Contains("no switchover: mode resh has no backup", refused.ToString(), StringComparison.Ordinal);

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}/") };
            using var status = JsonDocument.Parse(await http.GetStringAsync("status"));
            replicaPids.AddRange(status.RootElement.GetProperty("replicas").EnumerateArray().Select(r => r.GetProperty("pid").GetInt32()));
            Assert.Equal(3, replicaPids.Count);
            Assert.All(replicaPids, pid => Assert.True(Alive(pid)));

            process.Kill(entireProcessTree: false);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await Tools.WaitUntilAsync(() => replicaPids.All(pid => !Alive(pid)), TimeSpan.FromSeconds(20), "the replicas to die with resh");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            foreach (var pid in replicaPids.Where(Alive))
            {
                Process.GetProcessById(pid).Kill();
            }

            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task<string> RunAsync(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true })!;
        var output = await p.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return output;
    }
}
