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

    /// <summary>Compacts etcd's history: the revisions before <paramref name="revision"/> are gone.</summary>
    public async Task CompactAsync(long revision)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var compact = await http.PostAsync(new Uri(Url, "/v3/kv/compaction"), new StringContent($"{{\"revision\":\"{revision}\",\"physical\":true}}"));
        compact.EnsureSuccessStatusCode();
    }

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
