using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Resh.Domains;
using Resh.Group;

namespace Resh.IntegrationTests;

/// <summary>The live page at the admin address, in a real headless Chromium driven over the DevTools protocol.</summary>
public sealed class DashboardTests
{
    [Fact]
    public async Task The_live_page_shows_a_crashed_replica_recover_and_come_back_up()
    {
        var chromium = Tools.Require("chromium", "apt-get install chromium");
        Tools.Require("redis-server", "apt-get install redis-server");
        var adminPort = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
        await using var cluster = await Cluster.StartRedisAsync(configure: o => o.Admin = new IPEndPoint(IPAddress.Loopback, adminPort));
        await using (var client = await cluster.ConnectAsync())
        {
            // Enough state that a rebuilt replica spends a moment recovering.
            for (var batch = 0; batch < 20; batch++)
            {
                await client.PipelineAsync([.. Enumerable.Range(0, 1000).Select(i => new[] { "SET", $"k{batch}:{i}", "v" })]).WaitAsync(TimeSpan.FromSeconds(30));
            }
        }

        await using var browser = await Browser.StartAsync(chromium, $"http://127.0.0.1:{adminPort}/");
        async Task<string> StateOf(string replica) => await browser.EvaluateAsync($"document.getElementById('replica-{replica}')?.dataset.state ?? ''");
        await Tools.WaitUntilAsync(async () => await StateOf("r2") == "up", TimeSpan.FromSeconds(30), "the page shows r2 up");
        Assert.Equal("resh mode resh, f=1", await browser.EvaluateAsync("document.querySelector('h1').textContent"));

        // The page keeps the states it showed for each replica (from its polls and from the events, since a rebuild can be
        // over between two polls): r2 goes from up through a rebuild back to up, as generation 2.
        await cluster.Host.InjectAsync("r2", FaultKind.Crash, CancellationToken.None);
        await Tools.WaitUntilAsync(
            async () => await StateOf("r2") == "up" && await browser.EvaluateAsync("document.getElementById('replica-r2').dataset.generation") == "2",
            TimeSpan.FromSeconds(60),
            "the page shows r2 back up as generation 2");
        var shown = (await browser.EvaluateAsync("document.getElementById('replica-r2').dataset.history")).Split(' ');
        Assert.Equal("up", shown[0]);
        Assert.Equal("up", shown[^1]);
        Assert.Contains(shown, s => s is "suspected" or "starting" or "recovering");
        // The event stream may deliver "+replica-recovered" a moment after a poll already showed r2 up.
        async Task<string> EventsOfR2() => await browser.EvaluateAsync("[...document.querySelectorAll('#events .event')].filter(e => e.dataset.replica === 'r2').map(e => e.dataset.name).join(' ')");
        await Tools.WaitUntilAsync(async () => (await EventsOfR2()).Contains("+replica-recovered", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "the page lists r2's recovery among the events");
        Assert.Contains("+replica-suspected", await EventsOfR2(), StringComparison.Ordinal);

        // RESH_DASHBOARD_SCREENSHOT=docs/dashboard.png keeps a picture of the page for the operator guide.
        if (Environment.GetEnvironmentVariable("RESH_DASHBOARD_SCREENSHOT") is { Length: > 0 } picture)
        {
            await File.WriteAllBytesAsync(picture, Convert.FromBase64String(await browser.CallAsync("Page.captureScreenshot", "data")));
        }
    }

    /// <summary>Headless Chromium with one page, evaluated through the DevTools protocol on a WebSocket.</summary>
    private sealed class Browser : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _profile;
        private readonly ClientWebSocket _socket = new();
        private int _nextId;

        private Browser(Process process, string profile)
        {
            _process = process;
            _profile = profile;
        }

        public static async Task<Browser> StartAsync(string chromium, string url)
        {
            var profile = Directory.CreateTempSubdirectory("resh-chromium-").FullName;
            var start = new ProcessStartInfo(chromium, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-port=0", $"--user-data-dir={profile}", "--window-size=1280,800", url])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            var browser = new Browser(Process.Start(start)!, profile);
            try
            {
                // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID" names the port.
                var port = 0;
                while (port == 0)
                {
                    var line = await browser._process.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))
                        ?? throw new InvalidOperationException("chromium exited before it listened for DevTools");
                    if (line.StartsWith("DevTools listening on ", StringComparison.Ordinal))
                    {
                        port = new Uri(line["DevTools listening on ".Length..].Trim()).Port;
                    }
                }

                _ = browser._process.StandardError.ReadToEndAsync();
                _ = browser._process.StandardOutput.ReadToEndAsync();
                using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
                string? page = null;
                await Tools.WaitUntilAsync(
                    async () =>
                    {
                        using var targets = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"));
                        page = targets.RootElement.EnumerateArray().Where(t => t.GetProperty("type").GetString() == "page")
                            .Select(t => t.GetProperty("webSocketDebuggerUrl").GetString()).FirstOrDefault();
                        return page is not null;
                    },
                    TimeSpan.FromSeconds(30),
                    "chromium's page target");
                await browser._socket.ConnectAsync(new Uri(page!), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
                return browser;
            }
            catch
            {
                await browser.DisposeAsync();
                throw;
            }
        }

        /// <summary>The value of a JavaScript expression in the page, as text.</summary>
        public Task<string> EvaluateAsync(string expression) => SendAsync("Runtime.evaluate", new { expression, returnByValue = true }, r => r.GetProperty("result"), "value");

        /// <summary>Calls a DevTools method without parameters and returns one property of its result.</summary>
        public Task<string> CallAsync(string method, string property) => SendAsync(method, new { }, r => r, property);

        private async Task<string> SendAsync(string method, object parameters, Func<JsonElement, JsonElement> select, string property)
        {
            var id = ++_nextId;
            var request = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters });
            await _socket.SendAsync(request, WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            var buffer = new byte[1 << 16];
            while (true)
            {
                using var message = new MemoryStream();
                WebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage);

                using var reply = JsonDocument.Parse(message.ToArray());
                if (reply.RootElement.TryGetProperty("id", out var replyId) && replyId.GetInt32() == id)
                {
                    var value = select(reply.RootElement.GetProperty("result"));
                    return value.TryGetProperty(property, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString()! : v.ToString()) : "";
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (_socket.State == WebSocketState.Open)
                {
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
                }
            }
            catch (Exception e) when (e is WebSocketException or TimeoutException)
            {
            }

            _socket.Dispose();
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            _process.Dispose();
            try
            {
                Directory.Delete(_profile, recursive: true);
            }
            catch (IOException)
            {
                // Chromium's last writes may race the deletion; the directory is under the temporary one.
            }
        }
    }
}
