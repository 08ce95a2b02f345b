using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Diagnostics;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Tests.Remus;

/// <summary>Strangers on the backup link's port: refused before they can change the term, the log or the outcome.</summary>
public sealed class LinkTlsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"resh-tls-{Guid.NewGuid():N}");
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

    private RemusOptions Options(string? pair, params IPEndPoint[] backups)
    {
        var options = new RemusOptions { Backups = backups, Epoch = TimeSpan.Zero, FailoverTimeout = TimeSpan.FromSeconds(30) };
        if (pair is not null)
        {
            options.TlsCertificate = Path.Combine(_dir, pair + ".pem");
            options.TlsKey = Path.Combine(_dir, pair + ".key");
            if (!File.Exists(options.TlsCertificate))
            {
                LinkTls.WriteNewPair(options.TlsCertificate, options.TlsKey, TimeSpan.FromDays(1));
            }
        }

        return options;
    }

    private TermFile Terms => new(Path.Combine(_dir, "term"));

    private BackupServer Backup(string? pair, OrderedLog log)
    {
        var server = new BackupServer(new IPEndPoint(IPAddress.Loopback, 0), Options(pair), log, null, Terms, Path.Combine(_dir, "transfer"), NullLogger.Instance);
        _owned.Add(server);
        server.Start();
        return server;
    }

    private BackupLink Primary(string? pair, IPEndPoint backup, ulong term, OrderedLog log)
    {
        var link = new BackupLink(Options(pair, backup), term, log, () => null, null, _metrics, NullLogger.Instance);
        _owned.Add(link);
        link.Start();
        return link;
    }

    [Fact]
    public async Task With_TLS_only_the_holder_of_the_pairs_key_attaches()
    {
        Terms.Write(5);
        var backupLog = new OrderedLog();
        var server = Backup("pair", backupLog);

        // A stranger speaking the plain protocol, with a term that would fence the real primary.
        using (var plain = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await plain.ConnectAsync(server.EndPoint).WaitAsync(Timeout);
            await plain.SendAsync(Frame(LinkFrame.Hello, new HelloFrame(99, 0, 0, 0).Encode()));
            await Tools.WaitUntilAsync(() => server.RefusedPeers >= 1, Timeout);
        }

        // A stranger with a certificate and key of its own.
        var stranger = Primary("other", server.EndPoint, 99, new OrderedLog());
        await Tools.WaitUntilAsync(() => server.RefusedPeers >= 2, Timeout);
        await stranger.DisposeAsync();
        _owned.Remove(stranger);
        Assert.Equal(5UL, server.Term);
        Assert.Equal(5UL, Terms.Read());
        Assert.False(server.Synced.IsCompleted);
        Assert.Null(stranger.Backup);

        // The real primary, holding the pair's key.
        var primaryLog = new OrderedLog();
        var link = Primary("pair", server.EndPoint, 6, primaryLog);
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
        var server = Backup(null, new OrderedLog());
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
        var e = Assert.Throws<InvalidOperationException>(() => LinkTls.From(options));
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
