using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Clients;
using Resh.Domains;

namespace Resh.IntegrationTests;

/// <summary>
/// `resh run` under a systemd unit with Type=notify: READY=1 once it serves, STOPPING=1 when SIGTERM begins the drain,
/// RELOADING=1 and READY=1 around a reload (SIGHUP, as <c>systemctl reload</c> sends it).
/// </summary>
public sealed class SystemdTests
{
    [Fact]
    public async Task A_sighup_applies_changed_limits_and_admin_token_while_serving_names_what_needs_a_restart_and_refuses_a_broken_file()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var dir = Directory.CreateTempSubdirectory("resh-reload-").FullName;
        var (port, adminPort) = (PortAllocator.GetFreeTcpPort(IPAddress.Loopback), PortAllocator.GetFreeTcpPort(IPAddress.Loopback));
        var config = Tools.WriteExample("redis-3.yaml", dir, port, adminPort);
        var original = File.ReadAllText(config);
        await File.WriteAllTextAsync(config, original + "admin-token: first-token\n");

        var unit = UnderSystemd.Start(config, dir);
        var process = unit.Process;
        var admin = $"127.0.0.1:{adminPort}";
        try
        {
            Assert.StartsWith("READY=1", await unit.NextAsync(), StringComparison.Ordinal);
            await using var first = await RespClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("OK", (await first.CallAsync("SET", "before", "1").WaitAsync(TimeSpan.FromSeconds(10))).AsString());

            // One client at most, a new token, and a replica's command changed (which only a restart applies).
            await File.WriteAllTextAsync(config, original
                .Replace($"  listen: 127.0.0.1:{port}\n", $"  listen: 127.0.0.1:{port}\n  max-clients: 1\n", StringComparison.Ordinal)
                .Replace("--appendonly no\n", "--appendonly no --hz 20\n", StringComparison.Ordinal) + "admin-token: second-token\n");
            using (var hup = Process.Start("kill", ["-HUP", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await hup.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            Assert.StartsWith("RELOADING=1\nMONOTONIC_USEC=", await unit.NextAsync(), StringComparison.Ordinal);
            Assert.Equal("READY=1\nSTATUS=reloaded: applied admin-token, service.max-clients; changed but kept until a restart: replicas", await unit.NextAsync());

            // The limit holds for the next connection; the connected client goes on.
            Assert.Contains("max number of clients reached", await RefusedAsync(port), StringComparison.Ordinal);
            Assert.Equal("1", (await first.CallAsync("GET", "before").WaitAsync(TimeSpan.FromSeconds(10))).AsString());

            // The admin endpoint wants the new token; resh reload through it finds nothing new to apply.
            var (said, complained) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, await Resh.Cli.ReshCli.RunAsync(["reload", "--admin", admin, "--token", "first-token"], said, complained));
            Assert.Contains("bearer token", complained.ToString(), StringComparison.Ordinal);
            (said, complained) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, await Resh.Cli.ReshCli.RunAsync(["reload", "--config", config], said, complained));
            Assert.Equal("resh: reloaded: nothing applied; changed but kept until a restart: replicas", said.ToString().Trim());

            // A broken file is refused as a whole: the running settings stay.
            await File.WriteAllTextAsync(config, original.Replace($"  listen: 127.0.0.1:{port}\n", $"  listen: 127.0.0.1:{port}\n  max-clients: 0\n", StringComparison.Ordinal));
            (said, complained) = (new StringWriter(), new StringWriter());
            Assert.Equal(1, await Resh.Cli.ReshCli.RunAsync(["reload", "--admin", admin, "--token", "second-token"], said, complained));
            Assert.Contains("reload refused, nothing changed", complained.ToString(), StringComparison.Ordinal);
            Assert.Contains("service.max-clients", complained.ToString(), StringComparison.Ordinal);
            Assert.Contains("max number of clients reached", await RefusedAsync(port), StringComparison.Ordinal);
            Assert.Equal("OK", (await first.CallAsync("SET", "after", "2").WaitAsync(TimeSpan.FromSeconds(10))).AsString());
        }
        finally
        {
            await unit.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }

        // What a second client reads before the gateway closes its connection.
        static async Task<string> RefusedAsync(int port)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(TimeSpan.FromSeconds(10));
            var (buffer, read) = (new byte[256], 0);
            int n;
            while ((n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10))) > 0)
            {
                read += n;
            }

            return Encoding.UTF8.GetString(buffer, 0, read);
        }
    }

    [Fact]
    public async Task Resh_run_tells_systemd_when_it_serves_and_when_a_sigterm_begins_its_stop()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var dir = Directory.CreateTempSubdirectory("resh-systemd-").FullName;
        var config = Tools.WriteExample("redis-3.yaml", dir, PortAllocator.GetFreeTcpPort(IPAddress.Loopback), PortAllocator.GetFreeTcpPort(IPAddress.Loopback));

        var unit = UnderSystemd.Start(config, dir);
        var process = unit.Process;
        try
        {
            var ready = await unit.NextAsync();
            Assert.StartsWith("READY=1\nSTATUS=serving resp on 127.0.0.1:", ready, StringComparison.Ordinal);

            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            Assert.Equal("STOPPING=1", await unit.NextAsync());
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
            Assert.True(process.ExitCode == 0, await unit.Output + await unit.Errors);
            Assert.Contains("resh: stopped", await unit.Output, StringComparison.Ordinal);
        }
        finally
        {
            await unit.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// `resh run CONFIG` as a unit with Type=notify: systemd's side is a datagram socket whose path the process finds in
    /// NOTIFY_SOCKET. Disposing kills the process tree if it still runs.
    /// </summary>
    private sealed class UnderSystemd : IAsyncDisposable
    {
        private readonly Socket _notify;

        private UnderSystemd(Socket notify, Process process)
        {
            _notify = notify;
            Process = process;
            Output = process.StandardOutput.ReadToEndAsync();
            Errors = process.StandardError.ReadToEndAsync();
        }

        public Process Process { get; }

        public Task<string> Output { get; }

        public Task<string> Errors { get; }

        public static UnderSystemd Start(string config, string dir)
        {
            var path = Path.Combine(dir, "notify.sock");
            var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            notify.Bind(new UnixDomainSocketEndPoint(path));
            var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "resh.dll"), "run", config]) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["NOTIFY_SOCKET"] = path;
            return new UnderSystemd(notify, Process.Start(start)!);
        }

        /// <summary>The next notification the process sent.</summary>
        public async Task<string> NextAsync()
        {
            var buffer = new byte[4096];
            var n = await _notify.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(90));
            return Encoding.UTF8.GetString(buffer, 0, n);
        }

        public async ValueTask DisposeAsync()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }

            Process.Dispose();
            _notify.Dispose();
        }
    }
}
