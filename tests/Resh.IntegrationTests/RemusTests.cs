using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Clients;
using Resh.Domains;
using Resh.Group;
using Resh.Hosting;
using Resh.Modes;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.IntegrationTests;

/// <summary>Mode remus with real redis-server replicas: a primary gateway and a backup, in this process.</summary>
public sealed class RemusTests
{
    private static ReshOptions Options(string state, IPEndPoint backup, Action<RemusOptions>? remus = null)
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var options = new ReshOptions
        {
            Gateway = new Gateway.GatewayOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0) },
            Replication = new ModeOptions { Mode = ReplicationMode.Remus },
            Group = new GroupOptions
            {
                Replicas = [new ReplicaSpec("r1", Tools.RedisCommand)],
                StateDirectory = state,
                ReplyTimeout = TimeSpan.FromSeconds(1),
                StartupTimeout = TimeSpan.FromSeconds(60),
            },
        };
        options.Replication.Remus = new RemusOptions { Backups = [backup], Epoch = TimeSpan.FromMilliseconds(25), FailoverTimeout = TimeSpan.FromSeconds(5), ApplyInterval = TimeSpan.FromMilliseconds(200) };
        remus?.Invoke(options.Replication.Remus);
        return options;
    }

    /// <summary>Starts the primary, writes 200 keys through it and waits until its backup is attached and up to date; returns what was acknowledged.</summary>
    private static async Task<Dictionary<string, string>> StartAndWriteProtectedAsync(ReshHost primary)
    {
        await primary.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
        var acked = new Dictionary<string, string>();
        await using (var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            for (var i = 0; i < 200; i++)
            {
                Assert.Equal("OK", (await client.CallAsync("SET", $"k{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
                acked[$"k{i}"] = $"v{i}";
            }
        }

        await Tools.WaitUntilAsync(() => primary.Status().Remus!.Protected, TimeSpan.FromSeconds(30), "the backup attached and up to date");
        return acked;
    }

    /// <summary>The backup took over because the primary handed the service over, and serves everything acknowledged.</summary>
    private static async Task AssertHandedOverAsync(ReshHost primary, ReshHost backup, Task<bool> backupRun, Dictionary<string, string> acked)
    {
        Assert.True(await backupRun.WaitAsync(TimeSpan.FromSeconds(30)), "the backup took over");
        Assert.Contains(primary.Events.Since(), e => e.Name == "+handed-over");
        Assert.Contains(backup.Events.Since(), e => e.Name == "+takeover" && e.Detail.Contains("handed the service over", StringComparison.Ordinal));
        await Tools.AssertAllReadableAsync(backup.ListenEndPoint, acked);
    }

    private static ILoggerFactory Logs() => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));

    private static string NewState() => Path.Combine(Path.GetTempPath(), "resh-remus-" + Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task Kill_9_of_the_primary_replica_under_load_loses_nothing_and_breaks_no_client()
    {
        await WithPrimaryAsync(async (primary, backup, backupAt) =>
        {
            var acked = new ConcurrentDictionary<string, string>();
            var errors = new ConcurrentBag<string>();
            var count = 0;
            await Task.WhenAll(Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
            {
                await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                for (var i = 0; i < 300; i++)
                {
                    var key = $"k:{c}:{i}";
                    var reply = await client.CallAsync("SET", key, $"v{i}").WaitAsync(TimeSpan.FromSeconds(60));
                    if (reply.AsString() == "OK")
                    {
                        acked[key] = $"v{i}";
                    }
                    else
                    {
                        errors.Add($"{key}: {reply}");
                    }

                    if (Interlocked.Increment(ref count) == 300)
                    {
                        await primary.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);
                    }
                }
            }))).WaitAsync(TimeSpan.FromMinutes(3));

            Assert.Empty(errors);
            Assert.Equal(1200, acked.Count);
            await Tools.AssertAllReadableAsync(primary.ListenEndPoint, acked);
            var status = primary.Status();
            Assert.True(status.Replicas.Single().Generation >= 2);
            Assert.Contains(primary.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r1");
            var remus = Assert.IsType<RemusStatus>(status.Remus);
            Assert.Equal("primary", remus.Role);
            Assert.True(remus.Protected);
            Assert.Equal(backupAt.ToString(), remus.Backup);

            // Every request a client saw answered is held by the backup.
            await Tools.WaitUntilAsync(() => primary.Status().Remus!.AckedCount == primary.Log.Count, TimeSpan.FromSeconds(10), "the backup to acknowledge the whole log");
            Assert.Equal(primary.Log.Count, backup.Log.Count);
            Assert.Equal("backup", backup.Status().Remus!.Role);
        });
    }

    /// <summary>
    /// A primary with its backup, both in this process; <paramref name="body"/> runs against them (and the backup's address). A controlled stop of
    /// the primary then stops the backup without a takeover.
    /// </summary>
    private static async Task WithPrimaryAsync(Func<ReshHost, ReshHost, IPEndPoint, Task> body)
    {
        var state = NewState();
        var backupAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        await using var backup = new ReshHost(Options(Path.Combine(state, "backup"), backupAt), Logs());
        using var stop = new CancellationTokenSource();
        var backupRun = backup.RunBackupAsync(backupAt, null, stop.Token);
        await using var primary = new ReshHost(Options(Path.Combine(state, "primary"), backupAt), Logs());
        try
        {
            await primary.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            await body(primary, backup, backupAt);
        }
        finally
        {
            await primary.DisposeAsync();
            Assert.False(await backupRun.WaitAsync(TimeSpan.FromSeconds(30)), "a controlled stop of the primary stops the backup without a takeover");
            await backup.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_hung_only_replica_is_suspected_and_rebuilt_and_the_client_is_answered()
    {
        await WithPrimaryAsync(async (primary, _, _) =>
        {
            await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("OK", (await client.CallAsync("SET", "a", "1").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            await primary.InjectAsync("r1", FaultKind.Hang, CancellationToken.None);

            // Nobody else can answer: the reply timeout alone must find the hung replica.
            Assert.Equal("1", (await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
            Assert.Contains(primary.Events.Since(), e => e.Name == "+replica-suspected" && e.Replica == "r1" && e.Detail.Contains("no replica answered", StringComparison.Ordinal));
            Assert.True(primary.Status().Replicas.Single().Generation >= 2);
        });
    }

    [Fact]
    public async Task A_replica_rebuilt_after_a_corrupt_read_replays_the_log_once_and_serves_again()
    {
        await WithPrimaryAsync(async (primary, _, _) =>
        {
            await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("OK", (await client.CallAsync("SET", "a", "1").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            await primary.InjectAsync("r1", FaultKind.Corrupt, CancellationToken.None);

            // With one replica nobody outvotes the corrupted value: the client reads it, and the log records that reply.
            Assert.StartsWith("resh-corrupted-", (await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(30))).AsString(), StringComparison.Ordinal);
            await primary.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);

            // The rebuilt replica's replayed (correct) reply differs from the recorded one: a divergence, not a fault.
            Assert.Equal("1", (await client.CallAsync("GET", "a").WaitAsync(TimeSpan.FromSeconds(60))).AsString());
            await Tools.WaitUntilAsync(() => primary.Events.Since().Any(e => e.Name == "+replay-divergence" && e.Replica == "r1"), TimeSpan.FromSeconds(30), "the divergence recorded");
            var status = primary.Status().Replicas.Single();
            Assert.Equal("up", status.State);
            Assert.Equal(2, status.Generation);
            Assert.Single(primary.Events.Since(), e => e.Name == "+replica-suspected");
        });
    }

    [Fact]
    public async Task A_switchover_hands_the_service_to_the_backup_at_once_and_loses_no_acknowledged_write()
    {
        var state = NewState();
        var marker = Path.Combine(state, "released");
        var backupAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());

        // A failover timeout far longer than the test waits: only a handover can make the backup serve in time.
        await using var backup = new ReshHost(Options(Path.Combine(state, "backup"), backupAt, r => r.FailoverTimeout = TimeSpan.FromSeconds(60)), Logs());
        using var stop = new CancellationTokenSource();
        var backupRun = backup.RunBackupAsync(backupAt, null, stop.Token);
        await using var primary = new ReshHost(Options(Path.Combine(state, "primary"), backupAt, r => r.ReleaseCommand = $"touch {marker}"), Logs());
        try
        {
            var acked = await StartAndWriteProtectedAsync(primary);
            Assert.Contains("backup", backup.RequestSwitchover(), StringComparison.Ordinal);
            Assert.Null(primary.RequestSwitchover());
            await primary.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));

            Assert.True(File.Exists(marker), "the primary ran its release command before the handover");
            await AssertHandedOverAsync(primary, backup, backupRun, acked);
        }
        finally
        {
            await stop.CancelAsync();
            await primary.DisposeAsync();
            await backup.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_primary_migrates_to_a_third_host_under_writes_the_target_serves_everything_acknowledged_and_the_backup_follows_it()
    {
        var state = NewState();
        var backupAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        var targetAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());
        var moveOptions = new Migration.MigrationOptions { DeltaThreshold = 50, ApplyInterval = TimeSpan.FromMilliseconds(100), LinkTimeout = TimeSpan.FromSeconds(5) };

        // A failover timeout far longer than the test waits: the backup must follow when told, and never take over.
        await using var backup = new ReshHost(Options(Path.Combine(state, "backup"), backupAt, r => r.FailoverTimeout = TimeSpan.FromSeconds(60)), Logs());
        using var stop = new CancellationTokenSource();
        var backupRun = backup.RunBackupAsync(backupAt, null, stop.Token);
        var targetOptions = Options(Path.Combine(state, "target"), backupAt);
        targetOptions.Replication.Migration = moveOptions;
        await using var target = new ReshHost(targetOptions, Logs());
        var receiving = target.RunReceiveAsync(targetAt, null, stop.Token);
        var primaryOptions = Options(Path.Combine(state, "primary"), backupAt);
        primaryOptions.Replication.Migration = moveOptions;
        await using var primary = new ReshHost(primaryOptions, Logs());
        using var writing = new CancellationTokenSource();
        try
        {
            var acked = new ConcurrentDictionary<string, string>(await StartAndWriteProtectedAsync(primary));
            var term = primary.Status().Remus!.Term;
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => primary.MigrateAsync(backupAt, CancellationToken.None));
            Assert.Contains("resh switchover", refused.Message, StringComparison.Ordinal);

            // Writers go on through the pre-copy, every reply still gated by the backup; they stop at the handover.
            var writers = Enumerable.Range(0, 4).Select(c => Task.Run(async () =>
            {
                try
                {
                    await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
                    for (var i = 0; !writing.IsCancellationRequested; i++)
                    {
                        if ((await client.CallAsync("SET", $"during:{c}:{i}", $"v{i}").WaitAsync(TimeSpan.FromSeconds(30))).AsString() == "OK")
                        {
                            acked[$"during:{c}:{i}"] = $"v{i}";
                        }
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or EndOfStreamException or ObjectDisposedException)
                {
                    // The primary drained this client at the handover.
                }
            })).ToList();

            var status = (Migration.MigrationStatus)await primary.MigrateAsync(targetAt, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(120));
            Assert.NotEmpty(status.Rounds);
            Assert.True(primary.ShutdownRequested.IsCancellationRequested);
            await primary.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
            await writing.CancelAsync();
            await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.True(await receiving.WaitAsync(TimeSpan.FromSeconds(60)), "the target took the service over");
            var events = primary.Events.Since();
            Assert.Contains(events, e => e.Name == "+backup-follows");
            Assert.Contains(events, e => e.Name == "+handed-over" && e.Detail.Contains(targetAt.ToString(), StringComparison.Ordinal));
            Assert.False(primary.StandsByAfterHandover);
            var remus = target.Status().Remus!;
            Assert.Equal("primary", remus.Role);
            Assert.True(remus.Term > term, $"the target's term {remus.Term} is newer than the primary's {term}");
            Assert.True(acked.Count > 200, "writes were acknowledged during the pre-copy");
            await Tools.AssertAllReadableAsync(target.ListenEndPoint, acked);

            // The backup kept its log and is the new primary's backup now, in its term: replies wait for it again.
            await Tools.WaitUntilAsync(() => target.Status().Remus is { Protected: true } r && r.Backup == backupAt.ToString(), TimeSpan.FromSeconds(60), "the backup attached to the new primary and caught up");
            Assert.False(backupRun.IsCompleted, "the backup neither stopped nor took over");
            Assert.Equal(target.Status().Remus!.Term, backup.Status().Remus!.Term);
            await using (var client = await RespClient.ConnectAsync(target.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10)))
            {
                Assert.Equal("OK", (await client.CallAsync("SET", "after", "move").WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            }

            // Its reply waited for the backup: the backup's log holds the request.
            Assert.True(backup.Status().Remus!.AckedCount >= target.Status().Remus!.AckedCount, "the backup holds what the new primary counts as acknowledged");
        }
        finally
        {
            await writing.CancelAsync();
            await stop.CancelAsync();
            await primary.DisposeAsync();
            await target.DisposeAsync();
            await backup.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task With_on_replica_failure_failover_a_dead_primary_replica_hands_the_service_to_the_backup_and_loses_nothing()
    {
        var state = NewState();
        var backupAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());

        // A failover timeout far longer than the test waits: only the handover can make the backup serve in time.
        await using var backup = new ReshHost(Options(Path.Combine(state, "backup"), backupAt, r => r.FailoverTimeout = TimeSpan.FromSeconds(60)), Logs());
        using var stop = new CancellationTokenSource();
        var backupRun = backup.RunBackupAsync(backupAt, null, stop.Token);
        await using var primary = new ReshHost(Options(Path.Combine(state, "primary"), backupAt, r => r.OnReplicaFailure = ReplicaFailureAction.Failover), Logs());
        try
        {
            var acked = await StartAndWriteProtectedAsync(primary);
            await primary.InjectAsync("r1", FaultKind.Crash, CancellationToken.None);

            // The primary asks for its own stop, as a switchover; whoever runs it (the CLI) then stops it.
            await Tools.WaitUntilAsync(() => primary.ShutdownRequested.IsCancellationRequested, TimeSpan.FromSeconds(30), "the primary asking to hand over");
            await primary.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));

            await AssertHandedOverAsync(primary, backup, backupRun, acked);
            Assert.Contains(primary.Events.Since(), e => e.Name == "+replica-failover" && e.Replica == "r1");
        }
        finally
        {
            await stop.CancelAsync();
            await primary.DisposeAsync();
            await backup.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_reply_is_never_released_before_the_backup_acknowledged_its_epoch()
    {
        var state = NewState();
        await using var fake = await FakeBackup.StartAsync();
        await using var primary = new ReshHost(Options(state, fake.EndPoint, r => (r.Epoch, r.FailoverTimeout) = (TimeSpan.Zero, TimeSpan.FromSeconds(30))), Logs());
        try
        {
            await primary.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            var reply = client.CallAsync("SET", "held", "until-acked");

            // The backup has the request and the primary's replica answered it: the reply is decided and held.
            await Tools.WaitUntilAsync(() => fake.Received.Any(e => e.Kind == LogEventKind.Request && e.Payload.Span.IndexOf("until-acked"u8) >= 0) && primary.Status().Remus!.HeldReplies >= 1, TimeSpan.FromSeconds(30), "the SET shipped and its reply held");
            Assert.False(reply.IsCompleted);
            Assert.True(primary.Status().Remus!.AckedCount < primary.Log.Count);

            fake.ReleaseAcks();
            Assert.Equal("OK", (await reply.WaitAsync(TimeSpan.FromSeconds(30))).AsString());
            Assert.Equal(0, primary.Status().Remus!.HeldReplies);
        }
        finally
        {
            await primary.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task A_primary_with_an_older_term_is_fenced_by_the_backup_and_serves_nothing()
    {
        var state = NewState();
        var backupAt = new IPEndPoint(IPAddress.Loopback, PortAllocator.GetFreeTcpPort());

        // This backup has seen term 5 (a takeover happened); the primary comes back with term 1.
        new TermFile(Path.Combine(state, "backup", "term")).Write(5);
        await using var backup = new ReshHost(Options(Path.Combine(state, "backup"), backupAt), Logs());
        using var stop = new CancellationTokenSource();
        var backupRun = backup.RunBackupAsync(backupAt, null, stop.Token);
        await using var primary = new ReshHost(Options(Path.Combine(state, "primary"), backupAt), Logs());
        try
        {
            await primary.StartAsync().WaitAsync(TimeSpan.FromSeconds(90));
            await using var client = await RespClient.ConnectAsync(primary.ListenEndPoint).WaitAsync(TimeSpan.FromSeconds(10));
            var reply = client.CallAsync("SET", "stale", "write");
            await Tools.WaitUntilAsync(() => primary.IsFenced, TimeSpan.FromSeconds(30), "the primary to be fenced");
            Assert.True(primary.ShutdownRequested.IsCancellationRequested);
            Assert.Contains(primary.Events.Since(), e => e.Name == "+fenced" && e.Detail.Contains("term 5", StringComparison.Ordinal));
            await primary.StopAsync();

            // The client never saw a reply: the connection ends without one.
            string? answer;
            try
            {
                answer = (await reply.WaitAsync(TimeSpan.FromSeconds(30))).AsString();
            }
            catch (Exception e) when (e is IOException or SocketException or EndOfStreamException or InvalidDataException)
            {
                answer = null;
            }

            Assert.NotEqual("OK", answer);
            Assert.Equal(0L, backup.Log.Count);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await backupRun.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (OperationCanceledException)
            {
            }

            await backup.DisposeAsync();
            await primary.DisposeAsync();
            Directory.Delete(state, recursive: true);
        }
    }

    /// <summary>A scripted backup on port 0: welcomes the primary, records what it ships, and acknowledges only when told.</summary>
    private sealed class FakeBackup : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task _run = Task.CompletedTask;

        private FakeBackup()
        {
            _listener = new TcpListener(IPAddress.Loopback, 0);
        }

        public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

        public ConcurrentQueue<LogEntry> Received { get; } = new();

        public static Task<FakeBackup> StartAsync()
        {
            var fake = new FakeBackup();
            fake._listener.Start();
            fake._run = Task.Run(() => fake.RunAsync(fake._stop.Token));
            return Task.FromResult(fake);
        }

        public void ReleaseAcks() => _release.TrySetResult();

        private async Task RunAsync(CancellationToken ct)
        {
            using var socket = await _listener.AcceptSocketAsync(ct);
            await using var link = await LinkConnection.AcceptAsync(socket, null, ct);
            var (type, payload) = await link.ReceiveAsync(ct);
            Assert.Equal(LinkFrame.Hello, type);
            var hello = HelloFrame.Decode(payload);
            await link.SendAsync(LinkFrame.Welcome, new NumberFrame(hello.Term, 0).Encode(), ct);
            var held = new List<NumberFrame>();
            while (!ct.IsCancellationRequested)
            {
                var next = link.ReceiveAsync(ct);
                while (!next.IsCompleted)
                {
                    if (_release.Task.IsCompleted && held.Count > 0)
                    {
                        foreach (var ack in held)
                        {
                            await link.SendAsync(LinkFrame.Ack, ack.Encode(), ct);
                        }

                        held.Clear();
                    }

                    await Task.WhenAny(next, _release.Task.IsCompleted ? Task.Delay(Timeout.Infinite, ct) : _release.Task);
                }

                (type, payload) = await next;
                if (type == LinkFrame.Epoch)
                {
                    var (number, first, entries) = EpochFrame.Decode(payload);
                    foreach (var e in entries)
                    {
                        Received.Enqueue(e);
                    }

                    held.Add(new NumberFrame(number, first + entries.Count));
                    if (_release.Task.IsCompleted)
                    {
                        await link.SendAsync(LinkFrame.Ack, held[^1].Encode(), ct);
                        held.Clear();
                    }
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _run.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or EndOfStreamException or TimeoutException)
            {
            }

            _stop.Dispose();
        }
    }
}
