using System.Diagnostics;
using Resh.Domains;

namespace Resh.IntegrationTests;

/// <summary>A one-member etcd on loopback ports, for a test; killed and its data removed on dispose.</summary>
internal sealed class Etcd : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private Etcd(Process process, string dir, Uri url)
    {
        _process = process;
        _dir = dir;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<Etcd> StartAsync()
    {
        var etcd = Tools.Require("etcd", "apt-get install etcd-server");
        var dir = Path.Combine(Path.GetTempPath(), "resh-etcd-data-" + Guid.NewGuid().ToString("N")[..8]);
        var client = $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}";
        var peer = $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}";
        var process = Process.Start(new ProcessStartInfo(etcd, ["--name", "it", "--data-dir", dir, "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", $"it={peer}", "--log-level", "error"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var running = new Etcd(process, dir, new Uri(client));
        using var http = new HttpClient();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(running.Url, "/health"));
                if (response.IsSuccessStatusCode)
                {
                    return running;
                }
            }
            catch (HttpRequestException) when (clock.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
            {
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30) || process.HasExited)
            {
                await running.DisposeAsync();
                throw new InvalidOperationException($"etcd did not become healthy on {client}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The keys under <paramref name="prefix"/> and their values, as text.</summary>
    public async Task<Dictionary<string, string>> RangeAsync(string prefix)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        using var doc = await PostAsync("/v3/kv/range", $"{{\"key\":\"{B64(prefix)}\",\"range_end\":\"{B64(PrefixEnd(prefix))}\"}}");
        if (doc.RootElement.TryGetProperty("kvs", out var kvs))
        {
            foreach (var kv in kvs.EnumerateArray())
            {
                result[Text(kv.GetProperty("key").GetString())] = kv.TryGetProperty("value", out var v) ? Text(v.GetString()) : "";
            }
        }

        return result;
    }

    /// <summary>How many keys are under <paramref name="prefix"/> (last modified at or before <paramref name="maxModRevision"/>, when given).</summary>
    public async Task<long> CountAsync(string prefix, long maxModRevision = 0)
    {
        using var doc = await PostAsync("/v3/kv/range", $"{{\"key\":\"{B64(prefix)}\",\"range_end\":\"{B64(PrefixEnd(prefix))}\",\"keys_only\":true,\"max_mod_revision\":\"{maxModRevision}\"}}");
        return doc.RootElement.TryGetProperty("kvs", out var kvs) ? kvs.GetArrayLength() : 0;
    }

    /// <summary>Whether etcd no longer holds <paramref name="revision"/> (a read at it is refused as compacted).</summary>
    public async Task<bool> IsCompactedAsync(long revision)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.PostAsync(new Uri(Url, "/v3/kv/range"), new StringContent($"{{\"key\":\"{B64("/")}\",\"revision\":\"{revision}\"}}"));
        return (await response.Content.ReadAsStringAsync()).Contains("compacted", StringComparison.Ordinal);
    }

    private async Task<System.Text.Json.JsonDocument> PostAsync(string path, string json)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.PostAsync(new Uri(Url, path), new StringContent(json));
        response.EnsureSuccessStatusCode();
        return await System.Text.Json.JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync());
    }

    private static string B64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));

    private static string Text(string? b64) => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64 ?? ""));

    private static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
