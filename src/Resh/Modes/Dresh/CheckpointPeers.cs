using System.Formats.Tar;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Group;

namespace Resh.Dresh;

/// <summary>
/// D-RESH hosts hand each other checkpoints: a host whose etcd history was compacted past its own newest
/// checkpoint fetches a peer's newest one. GET /checkpoint/newest?label=L answers the newest stored checkpoint
/// that has label L as a tar stream: resh-labels.json (the labels), resh-files.json (every file's SHA-256),
/// then the files under files/. The fetching host checks every file against its hash and that none is
/// missing, so a transfer cut off or damaged is refused rather than stored as a checkpoint. With an admin
/// token configured, the same bearer token is asked for (the checkpoint is the service's data; the token in force,
/// so a reload that changes admin-token changes it here too). With a shared
/// certificate (<see cref="PinnedTls"/>) the link is mutual TLS: only a host holding it can ask or answer.
/// </summary>
internal sealed class CheckpointPeerServer : IAsyncDisposable
{
    public const string LabelsEntry = "resh-labels.json";
    public const string FilesEntry = "resh-files.json";
    public const string FilesPrefix = "files/";

    private readonly WebApplication _app;

    public CheckpointPeerServer(IPEndPoint endpoint, Func<string?> token, CheckpointStore store, string scratch, ILoggerFactory loggerFactory, PinnedTls? tls = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint, listen =>
        {
            if (tls is not null)
            {
                listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.TlsHandshakeCallbackOptions { OnConnection = _ => ValueTask.FromResult(tls.ServerOptions()) });
            }
        }));
        _app = builder.Build();
        _app.MapGet("/checkpoint/newest", async (HttpContext http, string? label) =>
        {
            if (!BearerToken.Authorized(http, token()))
            {
                http.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
            }

            var (newest, _) = await VerifiedCheckpoint.NewestSnapshotAsync(store, label, http.RequestAborted);
            if (newest is null)
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                await http.Response.WriteAsync($"no stored checkpoint{(label is null ? "" : $" with label {label}")}\n", http.RequestAborted);
                return;
            }

            var dir = Path.Combine(scratch, "peer-" + Guid.NewGuid().ToString("N")[..12]);
            try
            {
                await store.RestoreAsync(newest.Id, dir, http.RequestAborted);
                http.Response.ContentType = "application/x-tar";
                await using var tar = new TarWriter(http.Response.Body, TarEntryFormat.Pax, leaveOpen: true);
                var labels = new PaxTarEntry(TarEntryType.RegularFile, LabelsEntry) { DataStream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(newest.Labels)) };
                await tar.WriteEntryAsync(labels, http.RequestAborted);
                var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(f => (Path: f, Name: Path.GetRelativePath(dir, f).Replace('\\', '/'))).ToList();
                var sums = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (path, name) in files)
                {
                    sums[name] = await Sha256Async(path, http.RequestAborted);
                }

                await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, FilesEntry) { DataStream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(sums)) }, http.RequestAborted);
                foreach (var (path, name) in files)
                {
                    await tar.WriteEntryAsync(path, FilesPrefix + name, http.RequestAborted);
                }
            }
            finally
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        });
    }

    public async Task StartAsync(CancellationToken cancellationToken) => await _app.StartAsync(cancellationToken);

    /// <summary>The bound address (with port 0, the one the system chose).</summary>
    public string Url => _app.Urls.FirstOrDefault() ?? "";

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>
    /// Fetches a peer's newest checkpoint with <paramref name="label"/> into <paramref name="target"/> (files
    /// only, under it) and returns its labels; an entry that would land outside the target is refused.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, string>> FetchAsync(HttpClient http, Uri peer, string label, string? token, string target, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(peer, $"/checkpoint/newest?label={Uri.EscapeDataString(label)}"));
        if (!string.IsNullOrEmpty(token))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new IOException($"{peer} answered {(int)response.StatusCode} {response.ReasonPhrase}: {(await response.Content.ReadAsStringAsync(ct)).Trim()}");
        }

        Directory.CreateDirectory(target);
        var root = Path.GetFullPath(target) + Path.DirectorySeparatorChar;
        IReadOnlyDictionary<string, string>? labels = null;
        Dictionary<string, string>? sums = null;
        var received = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        await using var tar = new TarReader(stream);
        while (await tar.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            if (entry.Name == LabelsEntry && entry.DataStream is { } labelStream)
            {
                labels = await JsonSerializer.DeserializeAsync<Dictionary<string, string>>(labelStream, cancellationToken: ct);
                continue;
            }

            if (entry.Name == FilesEntry && entry.DataStream is { } sumStream)
            {
                sums = await JsonSerializer.DeserializeAsync<Dictionary<string, string>>(sumStream, cancellationToken: ct);
                continue;
            }

            var path = Path.GetFullPath(Path.Combine(target, entry.Name.StartsWith(FilesPrefix, StringComparison.Ordinal) ? entry.Name[FilesPrefix.Length..] : entry.Name));
            if (entry.EntryType != TarEntryType.RegularFile || !entry.Name.StartsWith(FilesPrefix, StringComparison.Ordinal) || !path.StartsWith(root, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{peer} sent a checkpoint entry '{entry.Name}' that is not a file inside the checkpoint");
            }

            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await entry.ExtractToFileAsync(path, overwrite: false, ct);
            received[entry.Name[FilesPrefix.Length..]] = await Sha256Async(path, ct);
        }

        if (labels is null || sums is null)
        {
            throw new InvalidDataException($"{peer} sent a checkpoint without its {(labels is null ? $"labels ({LabelsEntry})" : $"file hashes ({FilesEntry})")}");
        }

        foreach (var (name, sum) in sums)
        {
            if (!received.TryGetValue(name, out var got))
            {
                throw new InvalidDataException($"{peer} sent a checkpoint without its file '{name}' (the transfer was cut off?)");
            }

            if (!string.Equals(got, sum, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{peer} sent a checkpoint whose file '{name}' does not match its SHA-256 (damaged in transfer)");
            }
        }

        if (received.Keys.FirstOrDefault(name => !sums.ContainsKey(name)) is { } extra)
        {
            throw new InvalidDataException($"{peer} sent a checkpoint file '{extra}' that its file list does not name");
        }

        return labels;
    }

    /// <summary>An HTTP client for fetching from peers: with <paramref name="tls"/>, it presents the shared certificate and accepts only a peer that presents it too.</summary>
    public static HttpClient CreateClient(PinnedTls? tls, TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler();
        if (tls is not null)
        {
            handler.SslOptions = tls.ClientOptions();
        }

        return new HttpClient(handler) { Timeout = timeout };
    }

    private static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(file, ct));
    }
}
