using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Domains;
using Resh.Group;
using Resh.Hosting;

namespace Resh.Cli;

/// <summary>
/// `resh demo`: three replicas behind the gateway, a concurrent workload, a crash and a corruption
/// injected on the way, then every key read back and the group's own account of what happened.
/// </summary>
internal static class Demo
{
    private const int Clients = 4;
    private const int KeysPerClient = 250;

    public static async Task<int> RunAsync(string service, LogLevel level, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        var state = Path.Combine(Path.GetTempPath(), $"resh-demo-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        var options = new ReshOptions
        {
            Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
            Group = new GroupOptions
            {
                Faults = 1,
                StateDirectory = state,
                ReplyTimeout = TimeSpan.FromSeconds(2),
                Replicas = service == "redis" ? RedisReplicas() : SampleKvReplicas(),
            },
        };
        if (service == "redis" && ProgramPath.Find("redis-server") is null)
        {
            await errors.WriteLineAsync("error: redis-server is not on PATH; install it (apt-get install redis-server) or run `resh demo` with the built-in service");
            return ReshCli.ExitFailure;
        }

        // The demo prints the group's own events; logs only for what goes wrong (or when asked with --log-level).
        using var loggerFactory = ReshCli.CreateLoggerFactory(level == LogLevel.Information ? LogLevel.Error : level);
        await using var host = new ReshHost(options, loggerFactory);
        try
        {
            await host.StartAsync(ct);
        }
        catch (Exception e) when (e is DomainStartException or InvalidOperationException)
        {
            await errors.WriteLineAsync($"error: {e.Message}");
            return ReshCli.ExitFailure;
        }

        var clock = Stopwatch.StartNew();
        var endpoint = host.ListenEndPoint;
        await output.WriteLineAsync($"resh demo: {options.Group.Replicas.Count} replicas of {(service == "redis" ? "redis-server" : "resh-samplekv (variants a, b, a: N-version)")}, f=1, gateway on {endpoint}");
        await output.WriteLineAsync($"workload: {Clients} concurrent clients, {KeysPerClient} SET + GET + INCR each; a crash of r1 and a corruption of r2 on the way");

        var written = 0;
        var clientErrors = 0;
        var wrong = 0;
        var crashAt = Clients * KeysPerClient / 4;
        var corruptAt = Clients * KeysPerClient / 2;
        var injected = new List<string>();
        var injectLock = new SemaphoreSlim(1);

        async Task MaybeInjectAsync(int count)
        {
            if (count != crashAt && count != corruptAt)
            {
                return;
            }

            await injectLock.WaitAsync(ct);
            try
            {
                var (replica, fault) = count == crashAt ? ("r1", FaultKind.Crash) : ("r2", FaultKind.Corrupt);
                var detail = await host.InjectAsync(replica, fault, ct);
                var line = $"  [{clock.Elapsed.TotalSeconds,5:0.00}s] injected {fault.ToString().ToLowerInvariant()} into {replica}: {detail}";
                injected.Add(line);
                await output.WriteLineAsync(line);
            }
            catch (Exception e) when (e is InvalidOperationException or NotSupportedException)
            {
                await output.WriteLineAsync($"  could not inject: {e.Message}");
            }
            finally
            {
                injectLock.Release();
            }
        }

        var workers = Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            await using var client = await RespClient.ConnectAsync(endpoint, ct);
            for (var i = 0; i < KeysPerClient; i++)
            {
                var key = $"demo:{c}:{i}";
                var set = await client.CallAsync(ct, "SET", key, $"value-{c}-{i}");
                var incr = await client.CallAsync(ct, "INCR", $"demo:counter:{c}");
                if (set.IsError || incr.IsError)
                {
                    Interlocked.Increment(ref clientErrors);
                }

                await MaybeInjectAsync(Interlocked.Increment(ref written));
            }
        }, ct)).ToArray();
        await Task.WhenAll(workers);

        // Read everything back through the gateway: reads of the corrupted key are outvoted and expose r2.
        await using (var reader = await RespClient.ConnectAsync(endpoint, ct))
        {
            for (var c = 0; c < Clients; c++)
            {
                for (var i = 0; i < KeysPerClient; i++)
                {
                    var value = await reader.CallAsync(ct, "GET", $"demo:{c}:{i}");
                    if (value.IsError)
                    {
                        clientErrors++;
                    }
                    else if (value.AsString() != $"value-{c}-{i}")
                    {
                        wrong++;
                    }
                }

                var counter = await reader.CallAsync(ct, "GET", $"demo:counter:{c}");
                if (counter.AsString() != KeysPerClient.ToString(System.Globalization.CultureInfo.InvariantCulture))
                {
                    wrong++;
                }
            }
        }

        await output.WriteLineAsync($"verification: {Clients * (KeysPerClient + 1)} keys read back through the gateway: {wrong} wrong, {clientErrors} client errors");

        // Wait for the group to heal: every replica voting again.
        var healed = await WaitAsync(() => host.Status().Replicas.All(r => r.State == "up") && host.Status().Replicas.Sum(r => r.Recoveries) >= 2, TimeSpan.FromSeconds(60), ct);
        await output.WriteLineAsync();
        await output.WriteLineAsync("events:");
        foreach (var e in host.Events.Since())
        {
            await output.WriteLineAsync($"  {e.Time:HH:mm:ss.fff} {e.Name,-22} {e.Replica ?? "-",-4} {e.Detail}");
        }

        await output.WriteLineAsync();
        await output.WriteLineAsync(StatusTable.Render(host.Status()));
        var status = host.Status();
        var recoveries = status.Replicas.Sum(r => r.Recoveries);
        var ok = wrong == 0 && clientErrors == 0 && healed;
        await output.WriteLineAsync(ok
            ? $"result: PASS: {injected.Count} faults injected, every one masked (0 wrong replies, 0 client errors), {recoveries} replicas rebuilt and voting again in {clock.Elapsed.TotalSeconds:0.0}s"
            : $"result: FAIL: wrong={wrong}, client errors={clientErrors}, healed={healed}");
        await host.StopAsync();
        try
        {
            Directory.Delete(state, recursive: true);
        }
        catch (IOException)
        {
        }

        return ok ? ReshCli.ExitOk : ReshCli.ExitFailure;
    }

    private static async Task<bool> WaitAsync(Func<bool> condition, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (condition())
            {
                return true;
            }

            await Task.Delay(50, ct);
        }

        return condition();
    }

    private static List<ReplicaSpec> RedisReplicas() =>
        [.. Enumerable.Range(1, 3).Select(i => new ReplicaSpec($"r{i}", "redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save \"\" --appendonly no"))];

    private static List<ReplicaSpec> SampleKvReplicas()
    {
        var kv = SampleKvCommand();
        return
        [
            new ReplicaSpec("r1", kv + " --port {port} --dir {dir} --variant a"),
            new ReplicaSpec("r2", kv + " --port {port} --dir {dir} --variant b"),
            new ReplicaSpec("r3", kv + " --port {port} --dir {dir} --variant a"),
        ];
    }

    /// <summary>The command that runs the built-in sample service shipped next to resh.</summary>
    internal static string SampleKvCommand()
    {
        var dir = AppContext.BaseDirectory;
        var host = Path.Combine(dir, "resh-samplekv");
        if (File.Exists(host))
        {
            return Quote(host);
        }

        return "dotnet " + Quote(Path.Combine(dir, "resh-samplekv.dll"));
    }

    private static string Quote(string path) => "'" + path.Replace("'", "'\\''") + "'";
}

/// <summary>Looks a program up on PATH.</summary>
internal static class ProgramPath
{
    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
