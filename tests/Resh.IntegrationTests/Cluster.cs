using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Group;
using Resh.Hosting;

namespace Resh.IntegrationTests;

/// <summary>Programs the integration tests need. A missing one fails the test with what to install: never a silent skip.</summary>
public static class Tools
{
    public static string Require(string program, string install)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"this test needs {program}; install it with: {install} (scripts/test.sh does)");
    }

    public static string RepoRoot
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("RESH_REPO_ROOT") ?? AppContext.BaseDirectory;
            var d = new DirectoryInfo(dir);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "Resh.slnx")))
            {
                d = d.Parent;
            }

            return d?.FullName ?? throw new InvalidOperationException("cannot find the repository root (Resh.slnx)");
        }
    }

    public const string RedisCommand = "redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save \"\" --appendonly no";

    /// <summary>Copies an example configuration into <paramref name="dir"/> with its service and admin ports replaced.</summary>
    public static string WriteExample(string example, string dir, int port, int adminPort)
    {
        var text = File.ReadAllText(Path.Combine(RepoRoot, "examples", example))
            .Replace("127.0.0.1:6380", $"127.0.0.1:{port}", StringComparison.Ordinal)
            .Replace("127.0.0.1:6390", $"127.0.0.1:{adminPort}", StringComparison.Ordinal);
        var path = Path.Combine(dir, example);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Starts `resh run CONFIG` and waits until it serves; with <paramref name="log"/>, its output is appended there.</summary>
    public static async Task<Process> StartReshAsync(string config, TimeSpan? timeout = null, string? log = null)
    {
        var resh = Path.Combine(AppContext.BaseDirectory, "resh.dll");
        var process = Process.Start(new ProcessStartInfo("dotnet", [resh, "run", config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var serving = new TaskCompletionSource();
        var gate = new Lock();
        void Keep(string? line)
        {
            if (log is not null && line is not null)
            {
                lock (gate)
                {
                    File.AppendAllText(log, line + "\n");
                }
            }
        }

        process.OutputDataReceived += (_, e) =>
        {
            Keep(e.Data);
            if (e.Data?.Contains("serving", StringComparison.Ordinal) == true)
            {
                serving.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await serving.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }

        return process;
    }

    /// <summary>Reads every key through <paramref name="endpoint"/> (pipelined) and checks its acknowledged value.</summary>
    public static async Task AssertAllReadableAsync(IPEndPoint endpoint, IReadOnlyDictionary<string, string> acked)
    {
        await using var client = await RespClient.ConnectAsync(endpoint).WaitAsync(TimeSpan.FromSeconds(10));
        var keys = acked.Keys.ToList();
        for (var i = 0; i < keys.Count; i += 200)
        {
            var batch = keys.Skip(i).Take(200).ToList();
            var replies = await client.PipelineAsync([.. batch.Select(k => new[] { "GET", k })]).WaitAsync(TimeSpan.FromSeconds(30));
            for (var j = 0; j < batch.Count; j++)
            {
                Assert.Equal(acked[batch[j]], replies[j].AsString());
            }
        }
    }

    /// <summary>Waits until a process's log file holds a text; on timeout the message carries the log's last lines.</summary>
    public static async Task WaitForLogAsync(string log, string text, TimeSpan timeout, string what)
    {
        try
        {
            await WaitUntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains(text, StringComparison.Ordinal), timeout, what);
        }
        catch (TimeoutException e)
        {
            var tail = File.Exists(log) ? string.Join("\n", File.ReadLines(log).TakeLast(30)) : "(no log)";
            throw new TimeoutException($"{e.Message}; the end of {Path.GetFileName(log)}:\n{tail}", e);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    /// <summary>Polls an asynchronous condition (e.g. a read from etcd) until it holds; each poll is bounded by the timeout too.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition().WaitAsync(timeout))
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0}s waiting for {what}");
            }

            await Task.Delay(20);
        }
    }
}

/// <summary>A gateway with real replicas on loopback, in-process; disposing it kills every replica.</summary>
public sealed class Cluster : IAsyncDisposable
{
    private readonly string _state;
    private readonly RecentLog _log;

    private Cluster(ReshHost host, string state, RecentLog log)
    {
        Host = host;
        _state = state;
        _log = log;
    }

    public ReshHost Host { get; }

    public IPEndPoint EndPoint => Host.ListenEndPoint;

    /// <summary>The group's state directory (replicas' data under replicas/ID/gN).</summary>
    public string StateDirectory => _state;

    public static async Task<Cluster> StartRedisAsync(int replicas = 3, Action<ReshOptions>? configure = null)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        return await StartAsync([.. Enumerable.Range(1, replicas).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))], configure);
    }

    public static async Task<Cluster> StartAsync(IReadOnlyList<ReplicaSpec> replicas, Action<ReshOptions>? configure = null)
    {
        var state = Path.Combine(Path.GetTempPath(), "resh-it-" + Guid.NewGuid().ToString("N")[..12]);
        var options = new ReshOptions
        {
            Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
            Group = new GroupOptions
            {
                Faults = (replicas.Count - 1) / 2,
                Replicas = replicas,
                StateDirectory = state,
                ReplyTimeout = TimeSpan.FromSeconds(1),
                StartupTimeout = TimeSpan.FromSeconds(60),
            },
        };
        configure?.Invoke(options);
        var log = new RecentLog();
        var host = new ReshHost(options, LoggerFactory.Create(b => b.SetMinimumLevel(RecentLog.Level).AddProvider(log)));
        try
        {
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }

        return new Cluster(host, state, log);
    }

    /// <summary>
    /// Runs <paramref name="clients"/> writers of unique keys; <paramref name="onProgress"/> sees the count of
    /// acknowledged writes; <paramref name="until"/>, if given, ends the writers early once it is true.
    /// </summary>
    public async Task<(ConcurrentDictionary<string, string> Acked, List<string> Errors)> WriteAsync(
        int clients, int perClient, Func<int, Task> onProgress, Func<bool>? until = null)
    {
        var acked = new ConcurrentDictionary<string, string>();
        var errors = new List<string>();
        var count = 0;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            await using var client = await ConnectAsync();
            for (var i = 0; i < perClient && until?.Invoke() != true; i++)
            {
                var key = $"k:{c}:{i}";
                var value = $"v:{c}:{i}:{Guid.NewGuid():N}";
                RespValue reply;
                try
                {
                    reply = await client.CallAsync("SET", key, value).WaitAsync(TimeSpan.FromSeconds(30));
                }
                catch (Exception e)
                {
                    lock (errors)
                    {
                        errors.Add($"{key}: {e.GetType().Name}: {e.Message}");
                    }

                    return;
                }

                if (reply.AsString() == "OK")
                {
                    acked[key] = value;
                }
                else
                {
                    lock (errors)
                    {
                        errors.Add($"{key}: {reply}");
                    }
                }

                await onProgress(Interlocked.Increment(ref count));
            }
        }))).WaitAsync(TimeSpan.FromMinutes(3));
        return (acked, errors);
    }

    public Task<RespClient> ConnectAsync() => RespClient.ConnectAsync(EndPoint).WaitAsync(TimeSpan.FromSeconds(10));

    public ReplicaStatus Replica(string id) => Host.Status().Replicas.Single(r => r.Id == id);

    /// <summary>A direct connection to a replica, bypassing the gateway.</summary>
    public Task<RespClient> ConnectReplicaAsync(string id) =>
        RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Replica(id).Port)).WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>Waits for the group's status to meet the condition; a timeout says what the group last showed and logged.</summary>
    public async Task WaitUntilAsync(Func<GroupStatus, bool> condition, string what, int seconds = 60)
    {
        try
        {
            await Tools.WaitUntilAsync(() => condition(Host.Status()), TimeSpan.FromSeconds(seconds), what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{Describe()}", e);
        }
    }

    /// <summary>The group's status, events and last log lines, for a failing test's message.</summary>
    public string Describe()
    {
        var s = Host.Status();
        var replicas = string.Join("; ", s.Replicas.Select(r => $"{r.Id} {r.Role} {r.State} g{r.Generation} applied {r.Applied}"));
        var events = string.Join(" | ", Host.Events.Since().TakeLast(30).Select(e => $"{e.Name} {e.Replica} {e.Detail}"));
        return $"head {s.Head}, decided {s.Decided}, voting {s.Voting}: {replicas}\nevents: {events}\nlog:\n{_log.Tail()}";
    }

    /// <summary>Every replica votes and has applied everything in the log.</summary>
    public Task WaitHealthyAsync(int seconds = 60) =>
        WaitUntilAsync(s => s.Replicas.All(r => r.State == "up" && r.Applied == s.Head), "every replica up and caught up", seconds);

    /// <summary>Every replica up and caught up, and all of them holding the same keys and values.</summary>
    public async Task AssertReplicasIdenticalAsync()
    {
        await WaitHealthyAsync();
        var dumps = new List<SortedDictionary<string, string?>>();
        foreach (var r in Host.Status().Replicas)
        {
            dumps.Add(await DumpAsync(r.Id));
        }

        Assert.All(dumps.Skip(1), d => Assert.Equal(dumps[0], d));
    }

    /// <summary>All keys and string values of one replica, read directly.</summary>
    public async Task<SortedDictionary<string, string?>> DumpAsync(string id)
    {
        await using var client = await ConnectReplicaAsync(id);
        var keys = await client.CallAsync("KEYS", "*");
        var result = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in keys.Items ?? [])
        {
            var k = key.AsString()!;
            var type = (await client.CallAsync("TYPE", k)).AsString();
            result[k] = type == "string" ? (await client.CallAsync("GET", k)).AsString() : $"<{type}:{(await client.CallAsync("DUMP", k)).Bulk?.Length}>";
        }

        return result;
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        try
        {
            Directory.Delete(_state, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
