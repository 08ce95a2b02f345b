using System.Buffers.Binary;
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

    /// <summary>The link's options; with <paramref name="pair"/>, mutual TLS with that pair's certificate (made on first use).</summary>
    private RemusOptions Options(string? pair, params IPEndPoint[] backups)
    {
        var options = new RemusOptions { Backups = backups, Epoch = TimeSpan.Zero, FailoverTimeout = TimeSpan.FromSeconds(3) };
        if (pair is not null)
        {
            options.TlsCertificate = Path.Combine(_dir, pair + ".pem");
            options.TlsKey = Path.Combine(_dir, pair + ".key");
            if (!File.Exists(options.TlsCertificate))
            {
                PinnedTls.WriteNewPair(options.TlsCertificate, options.TlsKey, TimeSpan.FromDays(1));
            }
        }

        return options;
    }

    private TermFile Terms => new(Path.Combine(_dir, "term"));

    private BackupServer Backup(OrderedLog log, string? pair = null)
    {
        var server = new BackupServer(new IPEndPoint(IPAddress.Loopback, 0), Options(pair), log, null, Terms, Path.Combine(_dir, "transfer"), NullLogger.Instance, _clock);
        _owned.Add(server);
        server.Start();
        return server;
    }

    private BackupLink Primary(IPEndPoint backup, ulong term, OrderedLog log, string? pair = null)
    {
        var link = new BackupLink(Options(pair, backup), term, log, () => null, null, _metrics, NullLogger.Instance, clock: _clock);
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
    public async Task A_primary_that_took_over_stays_unprotected_until_a_new_backup_caught_up_with_its_log()
    {
        // A primary that took over holds a long log; a fresh backup attaches and is shipped all of it.
        var primaryLog = new OrderedLog();
        Append(primaryLog, 100_000);
        var backupLog = new OrderedLog();
        var server = Backup(backupLog);
        var link = new BackupLink(Options(null, server.EndPoint), 2, primaryLog, () => null, null, _metrics, NullLogger.Instance, unprotected: true, clock: _clock);
        _owned.Add(link);
        Assert.Equal(long.MaxValue, link.CommittedCount);
        link.Start();

        // Until the backup acknowledged the whole log, replies are not held for it: never protected with less acknowledged.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!link.Protected)
        {
            Assert.Equal(long.MaxValue, link.CommittedCount);
            Assert.True(waited.Elapsed < Timeout, "the backup did not catch up");
            await Task.Yield();
        }

        Assert.True(link.AckedCount >= 100_000, $"protected at #{link.AckedCount}");
        Append(primaryLog, 5);
        await Tools.WaitUntilAsync(() => link.CommittedCount == 100_005, Timeout);
        Assert.Equal(100_005, backupLog.Count);
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
    public async Task A_backup_told_the_service_moves_keeps_its_log_fences_the_old_term_and_follows_the_new_primary()
    {
        var backupLog = new OrderedLog();
        var server = Backup(backupLog);
        var primaryLog = new OrderedLog();
        var old = Primary(server.EndPoint, 1, primaryLog);
        await server.Synced.WaitAsync(Timeout);
        Append(primaryLog, 5);
        await Tools.WaitUntilAsync(() => old.CommittedCount == 5, Timeout);

        // The old primary migrates: the backup waits, with no failover timeout, however long the target takes.
        Assert.True(await old.SayMovingAsync(Timeout));
        await Tools.WaitUntilAsync(() => server.Following, Timeout);
        Assert.Equal(2UL, server.Term);
        Assert.Equal(2UL, Terms.Read());
        _clock.Advance(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<TimeoutException>(() => server.Outcome.WaitAsync(TimeSpan.FromMilliseconds(300)));

        // The old primary cannot attach again: its link redials (on the fake clock) and is fenced by the raised term.
        await Tools.WaitUntilAsync(
            () =>
            {
                _clock.Advance(TimeSpan.FromMilliseconds(100));
                return old.Fenced.IsCompleted;
            },
            Timeout);
        Assert.Contains("term 2", await old.Fenced, StringComparison.Ordinal);
        Assert.False(server.Outcome.IsCompleted);

        // The target took over with the same log and more of its own (entries the backup never got included), and
        // attaches in the next term: it ships from what the backup holds, no checkpoint.
        var targetLog = new OrderedLog();
        Append(targetLog, 7);
        var target = Primary(server.EndPoint, 2, targetLog);
        await Tools.WaitUntilAsync(() => target.CommittedCount == 7, Timeout);
        Assert.False(server.Following);
        Assert.Equal(5, target.AttachedAt);
        Append(targetLog, 3);
        await Tools.WaitUntilAsync(() => backupLog.Count == 10, Timeout);

        // From now on the failover timeout counts again: losing the new primary is a takeover.
        await target.DisposeAsync();
        _owned.Remove(target);
        _clock.Advance(TimeSpan.FromSeconds(3.5));
        Assert.Equal(BackupOutcome.PrimaryLost, await server.Outcome.WaitAsync(Timeout));
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

    [Fact]
    public async Task With_TLS_only_the_holder_of_the_pairs_key_attaches()
    {
        Terms.Write(5);
        var backupLog = new OrderedLog();
        var server = Backup(backupLog, "pair");

        // A stranger speaking the plain protocol, with a term that would fence the real primary.
        using (var plain = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await plain.ConnectAsync(server.EndPoint).WaitAsync(Timeout);
            await plain.SendAsync(Frame(LinkFrame.Hello, new HelloFrame(99, 0, 0, 0).Encode()));
            await Tools.WaitUntilAsync(() => server.RefusedPeers >= 1, Timeout);
        }

        // A stranger with a certificate and key of its own.
        var stranger = Primary(server.EndPoint, 99, new OrderedLog(), "other");
        await Tools.WaitUntilAsync(() => server.RefusedPeers >= 2, Timeout);
        await stranger.DisposeAsync();
        _owned.Remove(stranger);
        Assert.Equal(5UL, server.Term);
        Assert.Equal(5UL, Terms.Read());
        Assert.False(server.Synced.IsCompleted);
        Assert.Null(stranger.Backup);

        // The real primary, holding the pair's key.
        var primaryLog = new OrderedLog();
        var link = Primary(server.EndPoint, 6, primaryLog, "pair");
        await server.Synced.WaitAsync(Timeout);
        primaryLog.Append(new LogEntry(LogEventKind.Request, 1, 0, "*1\r\n$4\r\nPING\r\n"u8.ToArray(), 1));
        await Tools.WaitUntilAsync(() => link.CommittedCount == 1 && backupLog.Count == 1, Timeout);
        Assert.Equal(6UL, Terms.Read());
        Assert.False(server.Outcome.IsCompleted);
    }

    [Theory]
    [InlineData("oversized")]
    [InlineData("goodbye-first")]
    public async Task Without_TLS_a_first_frame_that_is_not_a_small_Hello_is_refused_before_anything_changes(string first)
    {
        var server = Backup(new OrderedLog());
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.EndPoint).WaitAsync(Timeout);
        var bytes = first == "oversized"
            ? Frame(LinkFrame.Hello, new byte[LinkConnection.MaxHelloBytes + 1])
            : Frame(LinkFrame.Goodbye, []);
        await socket.SendAsync(bytes);

        await Tools.WaitUntilAsync(() => server.RefusedPeers == 1, Timeout);
        Assert.False(server.Outcome.IsCompleted);
        Assert.Equal(0UL, server.Term);
    }

    [Fact]
    public void A_certificate_without_its_key_is_refused_with_the_setting_named()
    {
        var options = Options("pair");
        options.TlsKey = Path.Combine(_dir, "missing.key");
        var e = Assert.Throws<InvalidOperationException>(() => PinnedTls.Load(options.TlsCertificate, options.TlsKey, "remus.tls-certificate/remus.tls-key"));
        Assert.Contains("remus.tls-certificate/remus.tls-key", e.Message, StringComparison.Ordinal);
    }

    private static byte[] Frame(LinkFrame type, byte[] payload)
    {
        var frame = new byte[payload.Length + 5];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(payload.Length + 1));
        frame[4] = (byte)type;
        payload.CopyTo(frame, 5);
        return frame;
    }
}
