using System.Diagnostics;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
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
    private GrpcChannel? _channel;
    private readonly Lock _gate = new();

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
        var auth = new Auth.AuthClient(Channel());
        await auth.RoleAddAsync(new AuthRoleAddRequest { Name = "root" }, Deadline());
        await auth.UserAddAsync(new AuthUserAddRequest { Name = user, Password = password }, Deadline());
        await auth.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = user, Role = "root" }, Deadline());
        await auth.AuthEnableAsync(new AuthEnableRequest(), Deadline());
    }

    /// <summary>Clears the NOSPACE alarms (after the quota was raised), as etcdctl alarm disarm does: etcd takes writes again.</summary>
    public async Task DisarmAsync()
    {
        var maintenance = new Maintenance.MaintenanceClient(Channel());
        var alarms = await maintenance.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get }, Deadline());
        Assert.NotEmpty(alarms.Alarms);
        foreach (var alarm in alarms.Alarms)
        {
            await maintenance.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Deactivate, MemberID = alarm.MemberID, Alarm = AlarmType.Nospace }, Deadline());
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
        // Ready once a read is answered (it needs a leader; /health would also fail while an alarm is raised).
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await Kv().RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/") }, Deadline(TimeSpan.FromSeconds(5)));
                return;
            }
            catch (RpcException) when (clock.Elapsed < TimeSpan.FromSeconds(30) && !_process.HasExited)
            {
            }
            catch (RpcException e)
            {
                throw new InvalidOperationException($"etcd did not become ready on {Url}: {e.Status.Detail}", e);
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
        var range = await Kv().RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(PrefixEnd(prefix)) }, Deadline());
        return range.Kvs.ToDictionary(kv => kv.Key.ToStringUtf8(), kv => kv.Value.ToStringUtf8(), StringComparer.Ordinal);
    }

    /// <summary>Writes <paramref name="key"/> (no lease), as another host or an intruder with etcd access would.</summary>
    public async Task PutAsync(string key, string value) =>
        await Kv().PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) }, Deadline());

    /// <summary>Deletes <paramref name="key"/>.</summary>
    public async Task DeleteAsync(string key) =>
        await Kv().DeleteRangeAsync(new DeleteRangeRequest { Key = ByteString.CopyFromUtf8(key) }, Deadline());

    /// <summary>How many keys are under <paramref name="prefix"/> (last modified at or before <paramref name="maxModRevision"/>, when given).</summary>
    public async Task<long> CountAsync(string prefix, long maxModRevision = 0)
    {
        var range = await Kv().RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(PrefixEnd(prefix)), KeysOnly = true, MaxModRevision = maxModRevision }, Deadline());
        return range.Kvs.Count;
    }

    /// <summary>Whether etcd no longer holds <paramref name="revision"/> (a read at it is refused as compacted).</summary>
    public async Task<bool> IsCompactedAsync(long revision)
    {
        try
        {
            await Kv().RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("/"), Revision = revision }, Deadline());
            return false;
        }
        catch (RpcException e) when (e.Status.Detail.Contains("compacted", StringComparison.Ordinal))
        {
            return true;
        }
    }

    private KV.KVClient Kv() => new(Channel());

    private static CallOptions Deadline(TimeSpan? timeout = null) => new(deadline: DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10)));

    /// <summary>
    /// A gRPC channel to this member (as resh uses etcd), made once: with TLS, presenting the test's client certificate
    /// and trusting any server certificate (the test's own authority signed it).
    /// </summary>
    private GrpcChannel Channel()
    {
        lock (_gate)
        {
            if (_channel is not null)
            {
                return _channel;
            }

            var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
            if (_tls is { } tls)
            {
                handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions
                {
                    ClientCertificates = [System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(
                        System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(tls.ClientCertificate, tls.ClientKey).Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12), null)],
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                };
            }

            return _channel = GrpcChannel.ForAddress(Url, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true, MaxReconnectBackoff = TimeSpan.FromMilliseconds(200) });
        }
    }

    private static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);

    public ValueTask DisposeAsync()
    {
        _channel?.Dispose();
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
