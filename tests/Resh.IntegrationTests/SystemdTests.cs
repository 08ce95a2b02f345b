using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Domains;

namespace Resh.IntegrationTests;

/// <summary>`resh run` under a systemd unit with Type=notify: READY=1 once it serves, STOPPING=1 when SIGTERM begins the drain.</summary>
public sealed class SystemdTests
{
    [Fact]
    public async Task Resh_run_tells_systemd_when_it_serves_and_when_a_sigterm_begins_its_stop()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var dir = Directory.CreateTempSubdirectory("resh-systemd-").FullName;
        var config = Tools.WriteExample("redis-3.yaml", dir, PortAllocator.GetFreeTcpPort(IPAddress.Loopback), PortAllocator.GetFreeTcpPort(IPAddress.Loopback));

        // systemd's side: a datagram socket whose path the unit's process finds in NOTIFY_SOCKET.
        var path = Path.Combine(dir, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        async Task<string> NextAsync()
        {
            var buffer = new byte[4096];
            var n = await notify.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(90));
            return Encoding.UTF8.GetString(buffer, 0, n);
        }

        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "resh.dll"), "run", config]) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["NOTIFY_SOCKET"] = path;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            var ready = await NextAsync();
            Assert.StartsWith("READY=1\nSTATUS=serving resp on 127.0.0.1:", ready, StringComparison.Ordinal);

            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            Assert.Equal("STOPPING=1", await NextAsync());
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
            Assert.True(process.ExitCode == 0, await output + await errors);
            Assert.Contains("resh: stopped", await output, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            Directory.Delete(dir, recursive: true);
        }
    }
}
