using System.Diagnostics;
using Resh.Domains;

namespace Resh.IntegrationTests;

/// <summary>An etcd member on loopback ports (alone, or one of a cluster), for a test; killed and its data removed on dispose.</summary>
internal sealed class Etcd : IAsyncDisposable
{
    private readonly string _dir;
    private readonly string _peer;
    private readonly EtcdCertificates? _tls;
    private string _name = "it";
    private string? _initialCluster;
    private bool _clientCertificates = true;
    private Process _process;

    private Etcd(string dir, Uri url, string peer, EtcdCertificates? tls)
    {
        _dir = dir;
        Url = url;
        _peer = peer;
        _tls = tls;
        _process = null!;
    }

    /// <summary>
    /// Starts a cluster of <paramref name="count"/> fresh members (peers over plain http on loopback; clients over https
    /// when <paramref name="tls"/> is given, with a client certificate required unless <paramref name="clientCertificates"/>
    /// is false) and waits until each answers a read.
    /// </summary>
    public static async Task<Etcd[]> StartClusterAsync(int count, EtcdCertificates? tls = null, bool clientCertificates = true)
    {
        Tools.Require("etcd", "apt-get install etcd-server");
        var scheme = tls is null ? "http" : "https";
        var members = Enumerable.Range(1, count).Select(i => new Etcd(
            Path.Combine(Path.GetTempPath(), "resh-etcd-data-" + Guid.NewGuid().ToString("N")[..8]),
            new Uri($"{scheme}://127.0.0.1:{PortAllocator.GetFreeTcpPort()}"),
            $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}",
            tls)
        { _name = $"m{i}", _clientCertificates = clientCertificates }).ToArray();
        var initial = string.Join(",", members.Select(m => $"{m._name}={m._peer}"));
        try
        {
            foreach (var member in members)
            {
                member._initialCluster = initial;
                member.Launch(null);
            }

            await Task.WhenAll(members.Select(m => m.WaitReadyAsync()));
            return members;
        }
        catch
        {
            foreach (var member in members)
            {
                await member.DisposeAsync();
            }

            throw;
        }
    }

    public Uri Url { get; }

    /// <summary>Starts a fresh member; <paramref name="quotaBytes"/> sets etcd's backend quota (the NOSPACE alarm fires beyond it).</summary>
    /// <param name="tls">Serve https with these certificates and require a client certificate signed by their authority.</param>
    public static async Task<Etcd> StartAsync(long? quotaBytes = null, EtcdCertificates? tls = null)
    {
        Tools.Require("etcd", "apt-get install etcd-server");
        var dir = Path.Combine(Path.GetTempPath(), "resh-etcd-data-" + Guid.NewGuid().ToString("N")[..8]);
        var scheme = tls is null ? "http" : "https";
        var running = new Etcd(dir, new Uri($"{scheme}://127.0.0.1:{PortAllocator.GetFreeTcpPort()}"), $"http://127.0.0.1:{PortAllocator.GetFreeTcpPort()}", tls);
        try
        {
            await running.LaunchAsync(quotaBytes);
            return running;
        }
        catch
        {
            await running.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills the member and starts it again on the same data and ports (with another quota, if given).</summary>
    public async Task RestartAsync(long? quotaBytes = null)
    {
        Kill();
        await LaunchAsync(quotaBytes);
    }

    /// <summary>Turns etcd's authentication on with <paramref name="user"/> as its root user (as etcdctl user add, auth enable).</summary>
    public async Task EnableAuthAsync(string user, string password)
    {
        using var role = await PostAsync("/v3/auth/role/add", "{\"name\":\"root\"}");
        using var added = await PostAsync("/v3/auth/user/add", $"{{\"name\":\"{user}\",\"password\":\"{password}\"}}");
        using var granted = await PostAsync("/v3/auth/user/grant", $"{{\"user\":\"{user}\",\"role\":\"root\"}}");
        using var enabled = await PostAsync("/v3/auth/enable", "{}");
    }

    /// <summary>Clears the NOSPACE alarms (after the quota was raised), as etcdctl alarm disarm does: etcd takes writes again.</summary>
    public async Task DisarmAsync()
    {
        using var alarms = await PostAsync("/v3/maintenance/alarm", "{\"action\":\"GET\"}");
        var members = alarms.RootElement.TryGetProperty("alarms", out var list) ? list.EnumerateArray().Select(a => a.GetProperty("memberID").GetString()).ToList() : [];
        Assert.NotEmpty(members);
        foreach (var member in members)
        {
            using var _ = await PostAsync("/v3/maintenance/alarm", $"{{\"action\":\"DEACTIVATE\",\"memberID\":\"{member}\",\"alarm\":\"NOSPACE\"}}");
        }
    }

    private async Task LaunchAsync(long? quotaBytes)
    {
        Launch(quotaBytes);
        await WaitReadyAsync();
    }

    private void Launch(long? quotaBytes)
    {
        var client = Url.ToString().TrimEnd('/');
        List<string> args = ["--name", _name, "--data-dir", _dir, "--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", _peer, "--initial-advertise-peer-urls", _peer, "--initial-cluster", _initialCluster ?? $"{_name}={_peer}", "--log-level", "error"];
        if (quotaBytes is { } quota)
        {
            args.AddRange(["--quota-backend-bytes", quota.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }

        if (_tls is { } tls)
        {
            args.AddRange(["--cert-file", tls.ServerCertificate, "--key-file", tls.ServerKey]);
            if (_clientCertificates)
            {
                args.AddRange(["--client-cert-auth", "--trusted-ca-file", tls.Authority]);
            }
        }

        _process = Process.Start(new ProcessStartInfo("etcd", args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private async Task WaitReadyAsync()
    {
        var client = Url.ToString().TrimEnd('/');

        // Ready once a read is answered (it needs a leader; /health would also fail while an alarm is raised).
        using var http = Http(TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await http.PostAsync(new Uri(Url, "/v3/kv/range"), new StringContent($"{{\"key\":\"{B64("/")}\"}}"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && clock.Elapsed < TimeSpan.FromSeconds(30) && !_process.HasExited)
            {
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(30) || _process.HasExited)
            {
                throw new InvalidOperationException($"etcd did not become ready on {client}");
            }

            await Task.Delay(50);
        }
    }

    private void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
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

    /// <summary>Writes <paramref name="key"/> (no lease), as another host or an intruder with etcd access would.</summary>
    public async Task PutAsync(string key, string value)
    {
        using var doc = await PostAsync("/v3/kv/put", $"{{\"key\":\"{B64(key)}\",\"value\":\"{B64(value)}\"}}");
    }

    /// <summary>Deletes <paramref name="key"/>.</summary>
    public async Task DeleteAsync(string key)
    {
        using var doc = await PostAsync("/v3/kv/deleterange", $"{{\"key\":\"{B64(key)}\"}}");
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
        using var http = Http(TimeSpan.FromSeconds(10));
        using var response = await http.PostAsync(new Uri(Url, "/v3/kv/range"), new StringContent($"{{\"key\":\"{B64("/")}\",\"revision\":\"{revision}\"}}"));
        return (await response.Content.ReadAsStringAsync()).Contains("compacted", StringComparison.Ordinal);
    }

    private async Task<System.Text.Json.JsonDocument> PostAsync(string path, string json)
    {
        using var http = Http(TimeSpan.FromSeconds(10));
        using var response = await http.PostAsync(new Uri(Url, path), new StringContent(json));
        response.EnsureSuccessStatusCode();
        return await System.Text.Json.JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync());
    }

    /// <summary>A client of this member: with TLS, presenting the test's client certificate and trusting its authority.</summary>
    private HttpClient Http(TimeSpan timeout)
    {
        var handler = new SocketsHttpHandler();
        if (_tls is { } tls)
        {
            handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                ClientCertificates = [System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(
                    System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(tls.ClientCertificate, tls.ClientKey).Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null)],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            };
        }

        return new HttpClient(handler) { Timeout = timeout };
    }

    private static string B64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));

    private static string Text(string? b64) => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(b64 ?? ""));

    private static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    public ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            Kill();
        }

        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }

        return ValueTask.CompletedTask;
    }
}
