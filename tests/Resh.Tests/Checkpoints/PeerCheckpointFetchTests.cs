using System.Formats.Tar;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Resh.Dresh;

namespace Resh.Tests.Checkpoints;

/// <summary>A peer's checkpoint as it arrives: whole and as hashed, or refused (scripted peers on port 0).</summary>
public sealed class PeerCheckpointFetchTests : IDisposable
{
    private readonly string _target = Path.Combine(Path.GetTempPath(), "resh-fetch-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        if (Directory.Exists(_target))
        {
            Directory.Delete(_target, recursive: true);
        }
    }

    private static readonly Dictionary<string, byte[]> Files = new()
    {
        ["dump.rdb"] = Encoding.ASCII.GetBytes("REDIS0011 the whole state"),
        ["sub/more.dat"] = Encoding.ASCII.GetBytes("more"),
    };

    [Fact]
    public async Task A_whole_checkpoint_arrives_with_its_labels_and_files()
    {
        var labels = await FetchAsync(Tar(Files, Hashes(Files)));

        Assert.Equal("7", labels["resh.sequence"]);
        Assert.Equal(Files["dump.rdb"], await File.ReadAllBytesAsync(Path.Combine(_target, "dump.rdb")));
        Assert.Equal(Files["sub/more.dat"], await File.ReadAllBytesAsync(Path.Combine(_target, "sub", "more.dat")));
    }

    [Fact]
    public async Task With_a_shared_certificate_only_a_host_holding_it_may_fetch_and_only_from_a_peer_holding_it()
    {
        Directory.CreateDirectory(_target);
        string Pair(string name)
        {
            PinnedTls.WriteNewPair(Path.Combine(_target, name + ".pem"), Path.Combine(_target, name + ".key"), TimeSpan.FromDays(1));
            return name;
        }

        PinnedTls Load(string name) => PinnedTls.Load(Path.Combine(_target, name + ".pem"), Path.Combine(_target, name + ".key"), "test")!;
        Pair("shared");
        Pair("stranger");
        using var shared = Load("shared");
        using var stranger = Load("stranger");
        await using var store = await Resh.Checkpoints.CheckpointStore.OpenAsync(Path.Combine(_target, "store"));
        await using var server = new CheckpointPeerServer(new IPEndPoint(IPAddress.Loopback, 0), () => "token", store, _target, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, shared);
        await server.StartAsync(CancellationToken.None);
        var url = new Uri(server.Url);
        Assert.Equal("https", url.Scheme);

        async Task<Exception> FetchWith(PinnedTls? tls)
        {
            using var http = CheckpointPeerServer.CreateClient(tls, TimeSpan.FromSeconds(10));
            return await Assert.ThrowsAnyAsync<Exception>(() => CheckpointPeerServer.FetchAsync(http, url, "resh.etcd", "token", Path.Combine(_target, "fetched"), CancellationToken.None));
        }

        // Through the handshake: the (empty) store answers that it has no checkpoint.
        Assert.Contains("404", (await FetchWith(shared)).Message, StringComparison.Ordinal);

        // A client with another certificate, or none, does not get through the handshake.
        Assert.IsType<HttpRequestException>(await FetchWith(stranger));
        Assert.IsType<HttpRequestException>(await FetchWith(null));

        // A server with another certificate is not trusted by a host holding the shared one.
        await using var impostor = new CheckpointPeerServer(new IPEndPoint(IPAddress.Loopback, 0), () => "token", store, _target, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, stranger);
        await impostor.StartAsync(CancellationToken.None);
        using (var http = CheckpointPeerServer.CreateClient(shared, TimeSpan.FromSeconds(10)))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => CheckpointPeerServer.FetchAsync(http, new Uri(impostor.Url), "resh.etcd", "token", Path.Combine(_target, "fetched2"), CancellationToken.None));
        }
    }

    [Fact]
    public async Task A_transfer_cut_off_before_a_file_is_refused()
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => FetchAsync(Tar(Files.Take(1).ToDictionary(), Hashes(Files))));
        Assert.Contains("without its file 'sub/more.dat'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_damaged_in_transfer_is_refused()
    {
        var damaged = new Dictionary<string, byte[]>(Files) { ["dump.rdb"] = Encoding.ASCII.GetBytes("REDIS0011 the whole statf") };
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => FetchAsync(Tar(damaged, Hashes(Files))));
        Assert.Contains("'dump.rdb' does not match its SHA-256", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_checkpoint_without_file_hashes_is_refused()
    {
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => FetchAsync(Tar(Files, sums: null)));
        Assert.Contains(CheckpointPeerServer.FilesEntry, e.Message, StringComparison.Ordinal);
    }

    private static Dictionary<string, string> Hashes(Dictionary<string, byte[]> files) =>
        files.ToDictionary(f => f.Key, f => Convert.ToHexStringLower(SHA256.HashData(f.Value)));

    private static byte[] Tar(Dictionary<string, byte[]> files, Dictionary<string, string>? sums)
    {
        using var buffer = new MemoryStream();
        using (var tar = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, CheckpointPeerServer.LabelsEntry) { DataStream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["resh.sequence"] = "7" })) });
            if (sums is not null)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, CheckpointPeerServer.FilesEntry) { DataStream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(sums)) });
            }

            foreach (var (name, bytes) in files)
            {
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, CheckpointPeerServer.FilesPrefix + name) { DataStream = new MemoryStream(bytes) });
            }
        }

        return buffer.ToArray();
    }

    /// <summary>Serves <paramref name="body"/> once as the answer to whatever is asked, then fetches it.</summary>
    private async Task<IReadOnlyDictionary<string, string>> FetchAsync(byte[] body)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var peer = await listener.AcceptTcpClientAsync();
            var stream = peer.GetStream();
            var request = new byte[4096];
            var read = 0;
            while (!Encoding.ASCII.GetString(request, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                read += await stream.ReadAsync(request.AsMemory(read));
            }

            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(body);
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            return await CheckpointPeerServer.FetchAsync(http, new Uri($"http://127.0.0.1:{port}"), "resh.etcd.cursor", null, _target, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            await serve.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }
}
