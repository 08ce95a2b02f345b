using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Resh.Diagnostics;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Tests.Remus;

/// <summary>
/// The Remus link in one process, over loopback, with the link's time on a fake clock: output commit, fencing by
/// term, a backup's takeover decision on silence, a controlled stop, and a primary that stops trusting a silent backup.
/// </summary>
public sealed class BackupLinkTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"resh-link-{Guid.NewGuid():N}");
    private readonly ReshMetrics _metrics = new();
    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        _metrics.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static RemusOptions Options(params IPEndPoint[] backups) => new()
    {
        Backups = backups,
        Epoch = TimeSpan.Zero,
        FailoverTimeout = TimeSpan.FromSeconds(3),
    };

    private TermFile Terms => new(Path.Combine(_dir, "term"));

    private BackupServer Backup(OrderedLog log)
    {
        var server = new BackupServer(new IPEndPoint(IPAddress.Loopback, 0), Options(), log, null, Terms, Path.Combine(_dir, "transfer"), NullLogger.Instance, _clock);
        _owned.Add(server);
        server.Start();
        return server;
    }

    private BackupLink Primary(IPEndPoint backup, ulong term, OrderedLog log)
    {
        var link = new BackupLink(Options(backup), term, log, () => null, null, _metrics, NullLogger.Instance, clock: _clock);
        _owned.Add(link);
        link.Start();
        return link;
    }

    private static void Append(OrderedLog log, int count)
    {
        for (var i = 0; i < count; i++)
        {
            log.Append(new LogEntry(LogEventKind.Request, 1, 0, Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n{i % 10}\r\n"), 1));
        }
    }

    [Fact]
    public async Task A_reply_is_committed_only_once_the_backup_holds_its_request()
    {
        var backupLog = new OrderedLog();
        var server = Backup(backupLog);
        var primaryLog = new OrderedLog();
        var link = Primary(server.EndPoint, 1, primaryLog);
        await server.Synced.WaitAsync(Timeout);
        Append(primaryLog, 5);

        await Tools.WaitUntilAsync(() => link.CommittedCount == 5, Timeout);
        Assert.Equal(5, backupLog.Count);
        Assert.True(link.Protected);
        Assert.Equal(server.EndPoint.ToString(), link.Backup);
        Assert.False(server.Outcome.IsCompleted);
    }

    [Fact]
    public async Task A_primary_with_an_older_term_is_fenced_and_the_backup_keeps_its_own()
    {
        Terms.Write(5);
        var server = Backup(new OrderedLog());
        var link = Primary(server.EndPoint, 3, new OrderedLog());

        var reason = await link.Fenced.WaitAsync(Timeout);
        Assert.Contains("term 5", reason, StringComparison.Ordinal);
        Assert.Equal(0, link.CommittedCount);
        Assert.False(server.Synced.IsCompleted);
        Assert.Equal(5UL, server.Term);
        Assert.Equal(5UL, Terms.Read());
    }

    [Fact]
    public async Task A_primary_with_a_newer_term_is_followed_and_the_term_is_kept_on_disk()
    {
        Terms.Write(5);
        var server = Backup(new OrderedLog());
        var link = Primary(server.EndPoint, 7, new OrderedLog());

        await server.Synced.WaitAsync(Timeout);
        Assert.Equal(7UL, server.Term);
        Assert.Equal(7UL, Terms.Read());
        Assert.False(link.Fenced.IsCompleted);
    }

    [Fact]
    public async Task A_backup_that_hears_nothing_for_the_failover_timeout_takes_over()
    {
        var backupLog = new OrderedLog();
        var server = Backup(backupLog);
        var primaryLog = new OrderedLog();
        var link = Primary(server.EndPoint, 1, primaryLog);
        await server.Synced.WaitAsync(Timeout);
        Append(primaryLog, 3);
        await Tools.WaitUntilAsync(() => link.CommittedCount == 3, Timeout);

        // The primary dies without a goodbye; the backup decides on its own clock.
        await link.DisposeAsync();
        _owned.Remove(link);
        Assert.False(server.Outcome.IsCompleted);
        _clock.Advance(TimeSpan.FromSeconds(3.5));

        Assert.Equal(BackupOutcome.PrimaryLost, await server.Outcome.WaitAsync(Timeout));
        Assert.Equal(3, backupLog.Count);
        Assert.Equal(2UL, server.BeginTerm());
        Assert.Equal(2UL, Terms.Read());
    }

    [Fact]
    public async Task A_controlled_stop_of_the_primary_stops_the_backup_without_a_takeover()
    {
        var server = Backup(new OrderedLog());
        var link = Primary(server.EndPoint, 1, new OrderedLog());
        await server.Synced.WaitAsync(Timeout);

        // The link says goodbye on the connection it holds once the backup is attached.
        await Tools.WaitUntilAsync(() => link.Backup is not null, Timeout);
        await link.SayGoodbyeAsync(Timeout);

        Assert.Equal(BackupOutcome.PrimaryStopped, await server.Outcome.WaitAsync(Timeout));
        Assert.Equal(1UL, Terms.Read());
    }

    [Fact]
    public async Task A_primary_stops_trusting_a_backup_that_falls_silent_and_replies_wait()
    {
        // A backup that welcomes the primary and then never answers again (frozen, or cut off).
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var silent = Task.Run(async () =>
        {
            var connection = await LinkConnection.AcceptAsync(await listener.AcceptAsync(), null, CancellationToken.None);
            var (type, _) = await connection.ReceiveAsync(CancellationToken.None);
            Assert.Equal(LinkFrame.Hello, type);
            await connection.SendAsync(LinkFrame.Welcome, new NumberFrame(1, 0).Encode(), CancellationToken.None);
            return connection;
        });
        var primaryLog = new OrderedLog();
        var link = Primary((IPEndPoint)listener.LocalEndPoint!, 1, primaryLog);
        var lost = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        link.BackupChanged += backup =>
        {
            if (backup is null)
            {
                lost.TrySetResult();
            }
        };
        await using var connection = await silent.WaitAsync(Timeout);
        await Tools.WaitUntilAsync(() => link.Backup is not null, Timeout);
        Append(primaryLog, 2);

        // Nothing acknowledged: nothing is committed, and after the failover timeout the link gives the backup up.
        await Tools.WaitUntilAsync(
            () =>
            {
                _clock.Advance(TimeSpan.FromMilliseconds(500));
                return lost.Task.IsCompleted;
            },
            Timeout);
        Assert.Equal(0, link.CommittedCount);
        Assert.Null(link.Backup);
        Assert.False(link.Fenced.IsCompleted);
    }
}
