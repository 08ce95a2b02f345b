using System.Diagnostics;
using System.Globalization;

namespace Resh.IntegrationTests;

/// <summary>Hosts as network namespaces on a bridge of the test's own (the test runs outside them); everything is removed on dispose, processes first.</summary>
public sealed class TestHosts : IAsyncDisposable
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..6];
    private readonly int _subnet = Random.Shared.Next(1, 250);

    private readonly List<string> _hosts;

    private TestHosts(IEnumerable<string> hosts)
    {
        _hosts = [.. hosts];
        Directory = Path.Combine(Path.GetTempPath(), "resh-2h-" + _suffix);
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string Bridge => "rbr" + _suffix;

    /// <summary>The address of the i-th host given to <see cref="CreateAsync"/>: .1, .2, ...</summary>
    public string Address(string host) => $"10.213.{_subnet}.{_hosts.IndexOf(host) + 1}";

    /// <summary>An address of the subnet that no host holds at first (a service address that moves).</summary>
    public string Service => $"10.213.{_subnet}.100";

    public string Namespace(string host) => $"resh{host}{_suffix}";

    public static async Task<TestHosts> CreateAsync(IReadOnlyList<string> hosts)
    {
        var net = new TestHosts(hosts);
        try
        {
            await net.IpAsync("link", "add", net.Bridge, "type", "bridge");
            await net.IpAsync("addr", "add", $"10.213.{net._subnet}.254/24", "dev", net.Bridge);
            await net.IpAsync("link", "set", net.Bridge, "up");
            foreach (var host in hosts)
            {
                var address = net.Address(host);
                var ns = net.Namespace(host);
                var veth = $"v{host.ToLowerInvariant()}{net._suffix}";
                await net.IpAsync("netns", "add", ns);
                await net.IpAsync("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
                await net.IpAsync("link", "set", veth, "master", net.Bridge, "up");
                await net.IpAsync("-n", ns, "addr", "add", address + "/24", "dev", "eth0");
                await net.IpAsync("-n", ns, "link", "set", "eth0", "up");
                await net.IpAsync("-n", ns, "link", "set", "lo", "up");
            }

            return net;
        }
        catch
        {
            await net.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs a program inside a host's network namespace in a session of its own; returns its log file. nsenter
    /// rather than `ip netns exec`, which mounts a sysfs of its own and so hides the cgroup hierarchies.
    /// </summary>
    public string Start(string host, string log, params string[] command)
    {
        var path = Path.Combine(Directory, log);
        File.WriteAllText(path, "");
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in (string[])["-c", "exec nsenter --net=\"/run/netns/$0\" setsid \"$@\" >>\"$RESH_TEST_LOG\" 2>&1 </dev/null", Namespace(host), .. command])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["RESH_TEST_LOG"] = path;
        Process.Start(start)!.Dispose();
        return path;
    }

    /// <summary>
    /// Starts one etcd member on each of <paramref name="hosts"/> (client port 2379, peer port 2380 on the host's address),
    /// together one new cluster; returns the client URLs, in the order of the hosts.
    /// </summary>
    public IReadOnlyList<string> StartEtcd(string etcd, IReadOnlyList<string> hosts)
    {
        var members = string.Join(',', hosts.Select(h => $"{h}=http://{Address(h)}:2380"));
        foreach (var h in hosts)
        {
            var ip = Address(h);
            Start(h, $"etcd-{h}.log", etcd, "--name", h, "--data-dir", Path.Combine(Directory, $"etcd-{h}"),
                "--listen-client-urls", $"http://{ip}:2379", "--advertise-client-urls", $"http://{ip}:2379",
                "--listen-peer-urls", $"http://{ip}:2380", "--initial-advertise-peer-urls", $"http://{ip}:2380",
                "--initial-cluster", members, "--initial-cluster-state", "new", "--log-level", "error");
        }

        return [.. hosts.Select(h => $"http://{Address(h)}:2379")];
    }

    /// <summary>SIGKILL to every process in a host's namespace.</summary>
    public void KillAll(string host)
    {
        using var pids = Process.Start(new ProcessStartInfo("ip", ["netns", "pids", Namespace(host)]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = pids.StandardOutput.ReadToEnd();
        pids.WaitForExit();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(line.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                try
                {
                    Process.GetProcessById(pid).Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                }
            }
        }
    }

    /// <summary>An HTTP GET from inside a host's namespace (its admin endpoint binds loopback there); returns the body.</summary>
    public async Task<string> GetAsync(string host, string url)
    {
        var start = new ProcessStartInfo("nsenter") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in (string[])[$"--net=/run/netns/{Namespace(host)}", "python3", "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())", url])
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var body = process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"GET {url} on host {host}: {error.Trim()}");
        }

        return await body;
    }

    public async Task IpAsync(params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)}: {error.Trim()} (this test needs root and network namespaces)");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts)
        {
            KillAll(host);
        }

        foreach (var args in _hosts.Select(h => new[] { "netns", "del", Namespace(h) }).Append(["link", "del", Bridge]))
        {
            try
            {
                await IpAsync(args);
            }
            catch (InvalidOperationException)
            {
            }
        }

        // RESH_KEEP_TEST_LOGS=1 keeps the hosts' logs and data for a look after a failure.
        if (Environment.GetEnvironmentVariable("RESH_KEEP_TEST_LOGS") == "1")
        {
            return;
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
