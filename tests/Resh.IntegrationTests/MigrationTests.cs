using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Domains;
using Resh.Group;
using Resh.Hosting;
using Resh.Migration;
using Resh.Modes;

namespace Resh.IntegrationTests;

/// <summary>`resh migrate` in one process pair on loopback: a mode resh or spare group moved to a `resh receive` target while clients write.</summary>
public sealed class MigrationTests
{
    private static ReshOptions Options(string state, Action<MigrationOptions>? migration = null, ReplicationMode mode = ReplicationMode.Resh)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var options = new ReshOptions
        {
            Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
            Replication = new ModeOptions { Mode = mode, Spare = new SpareOptions { UpdateEvery = TimeSpan.FromMilliseconds(200) } },
            Group = new GroupOptions
            {
                Faults = 1,
                Replicas = [.. Enumerable.Range(1, mode == ReplicationMode.Spare ? 4 : 3).Select(i => new ReplicaSpec($"r{i}", Tools.RedisCommand))],
                StateDirectory = state,
                ReplyTimeout = TimeSpan.FromSeconds(5),
                StartupTimeout = TimeSpan.FromSeconds(60),
            },
        };
        options.Replication.Migration = new MigrationOptions { ApplyInterval = TimeSpan.FromMilliseconds(100), LinkTimeout = TimeSpan.FromSeconds(5) };
        migration?.Invoke(options.Replication.Migration);
        return options;
    }

    private static ILoggerFactory Logs() => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));

    private static string NewState() => Path.Combine(Path.GetTempPath(), "resh-migrate-" + Guid.NewGuid().ToString("N")[..12]);

    [Theory]
    [InlineData(ReplicationMode.Resh)]
    [InlineData(ReplicationMode.Spare)]
    public async Task A_service_migrates_under_writes_in_pre_copy_rounds_and_the_target_serves_everything_acknowledged(ReplicationMode mode)
    {
        var state = NewState();
        var targetAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        // Mode resh: the target's configured admin address is free on its host, and opens while the target stands by.
        // Mode spare: source and target share one, as one configuration on one host does; the target opens it once the
        // source let it go.
        var admin = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        var shared = mode == ReplicationMode.Spare;
        var targetOptions = Options(Path.Combine(state, "target"), mode: mode);
        targetOptions.Admin = admin;
        await using var target = new ReshHost(targetOptions, Logs());
        using var stop = new CancellationTokenSource();
        var receiving = target.RunBackupAsync(targetAt, null, stop.Token);
        var sourceOptions = Options(Path.Combine(state, "source"), m => m.DeltaThreshold = 50, mode);
        sourceOptions.Admin = shared ? admin : null;
        await using var source = new ReshHost(sourceOptions, Logs());
        using var writing = new CancellationTokenSource();
        try
        {
            await source.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            var acked = new ConcurrentDictionary<string, string>();
            await using (var client = await RespClient.ConnectAsync(source.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10)))
            {
                for (var i = 0; i < 2000; i++)
                {
                    Assert.Equal("OK", (await client.CallAsync("SET", $"before:{i}", new string('x', 200)).WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                    acked[$"before:{i}"] = new string('x', 200);
                }

                // Keys with a deadline in database 1 only: the target never framed them, so only its sweep at the takeover
                // finds them, and it skips databases without deadlines (database 0 here).
                Assert.Equal("OK", (await client.CallAsync("SELECT", "1").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                for (var i = 0; i < 50; i++)
                {
                    Assert.Equal("OK", (await client.CallAsync("SET", $"expiring:{i}", "v", "PX", "4000").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                }
            }

            // Writers go on through the pre-copy; they stop at the handover (their connection closes) and are not retried.
            var writers = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
            {
                try
                {
                    await using var client = await RespClient.ConnectAsync(source.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                    for (var i = 0; !writing.IsCancellationRequested; i++)
                    {
                        if ((await client.CallAsync("SET", $"during:{c}:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(30))).AsString() == "OK")
                        {
                            acked[$"during:{c}:{i}"] = $"v{i}";
                        }
                    }
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or EndOfStreamException or ObjectDisposedException)
                {
                    // The source drained this client at the handover.
                }
            })).ToList();

            var status = (MigrationStatus)await source.MigrateAsync(targetAt, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(120));
            if (!shared)
            {
                Assert.Equal(admin, target.AdminEndPoint);
                await AssertStatusAsync(admin);
            }

            Assert.NotEmpty(status.Rounds);
            Assert.True(status.Rounds[0].Bytes > 2000 * 200, $"round 1 carried the data: {status.Rounds[0].Bytes} bytes");
            Assert.NotNull(status.Ended);

            // The stop-and-copy: the host asked for its own switchover; whoever runs it (the CLI) stops it.
            Assert.True(source.ShutdownRequested.IsCancellationRequested);
            await source.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
            await writing.CancelAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.True(await receiving.WaitAsync(TimeSpan.FromSeconds(60)), "the target took the service over");
            if (shared)
            {
                await Tools.WaitUntilAsync(() => Equals(target.AdminEndPoint, admin), TimeSpan.FromSeconds(30), "the target opened the admin address the source let go");
                Assert.Contains(target.Events.Since(), e => e.Name == "+admin-opened");
                await AssertStatusAsync(admin);
            }

            Assert.Contains(source.Events.Since(), e => e.Name == "+handed-over");
            Assert.True(target.Log.Count >= source.Log.Count, $"the target holds #{target.Log.Count - 1}, the source ordered up to #{source.Log.Count - 1}");
            Assert.True(acked.Count > 2000, "writes were acknowledged during the pre-copy");
            await Tools.AssertAllReadableAsync(target.ListenEndPoint, acked);
            if (mode == ReplicationMode.Spare)
            {
                // Every replica was woken for the takeover; then the mode's own balance holds again: f+1 active, f+1 passive.
                await Tools.WaitUntilAsync(
                    () => target.Status().Replicas is var r && r.Count(x => x.Role == "active" && x.State == "up") == 2 && r.Count(x => x.Role == "passive") == 2,
                    TimeSpan.FromSeconds(30),
                    "two active and two passive replicas on the target");
            }
            else
            {
                Assert.Equal(3, target.Status().Replicas.Count(r => r.State == "up"));
            }

            // The keys with a deadline expire on the target, by its gateway's clock, and the others stay.
            await using var reader = await RespClient.ConnectAsync(target.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("OK", (await reader.CallAsync("SELECT", "1").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            await Tools.WaitUntilAsync(
                async () => (await reader.CallAsync("DBSIZE").WaitAsync(TimeSpan.FromSeconds(30))).Integer == 0,
                TimeSpan.FromSeconds(30),
                "the keys with a deadline expired on the target");
            Assert.Equal("OK", (await reader.CallAsync("SELECT", "0").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            Assert.True((await reader.CallAsync("DBSIZE").WaitAsync(TimeSpan.FromSeconds(30))).Integer >= 2000);
        }
        finally
        {
            await writing.CancelAsync();
            await stop.CancelAsync();
            await source.DisposeAsync();
            await target.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    private static async Task AssertStatusAsync(IPEndPoint admin)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        Assert.Contains("\"replicas\"", await http.GetStringAsync(new Uri($"http://{admin}/status")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_migration_to_an_address_where_nothing_receives_fails_clearly_and_the_service_goes_on()
    {
        var state = NewState();
        var nowhere = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        await using var source = new ReshHost(Options(state, m => m.LinkTimeout = TimeSpan.FromMilliseconds(500)), Logs());
        try
        {
            await source.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            var e = await Assert.ThrowsAsync<TimeoutException>(() => source.MigrateAsync(nowhere, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("resh receive", e.Message, StringComparison.Ordinal);
            Assert.False(source.ShutdownRequested.IsCancellationRequested);
            Assert.Contains(source.Events.Since(), ev => ev.Name == "+migration-failed");
            await using var client = await RespClient.ConnectAsync(source.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("OK", (await client.CallAsync("SET", "still", "here").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
        }
        finally
        {
            await source.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }
}
