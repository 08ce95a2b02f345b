using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Admin;
using Resh.Diagnostics;
using Resh.Domains;
using Resh.Group;

namespace Resh.Tests.Gateway;

/// <summary>The admin endpoint against requests a web page in a browser on the same machine could make.</summary>
public sealed class AdminGuardTests
{
    [Fact]
    public async Task A_browser_like_POST_is_refused_and_changes_nothing_while_tools_get_through()
    {
        var target = new FakeTarget();
        await using var admin = await StartAsync(target, token: null);
        using var http = new HttpClient { BaseAddress = admin.Uri, Timeout = TimeSpan.FromSeconds(30) };

        // A form post from a page: it carries the page's Origin (and Sec-Fetch-Site), never a custom header.
        using var forged = new HttpRequestMessage(HttpMethod.Post, "shutdown");
        forged.Headers.Add("Origin", "http://evil.example");
        forged.Headers.Add("Sec-Fetch-Site", "cross-site");
        forged.Content = new StringContent("");
        var refused = await http.SendAsync(forged);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("browser", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, target.Shutdowns);

        using var fetchNoOrigin = new HttpRequestMessage(HttpMethod.Post, "shutdown") { Content = new StringContent("") };
        fetchNoOrigin.Headers.Add("Sec-Fetch-Site", "same-site");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(fetchNoOrigin)).StatusCode);
        Assert.Equal(0, target.Shutdowns);

        // resh's own client sends X-Resh-Admin; a script (curl) sends no browser headers at all.
        using var tool = new HttpRequestMessage(HttpMethod.Post, "shutdown") { Content = new StringContent("") };
        tool.Headers.Add(AdminGuard.Header, "1");
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(tool)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await http.PostAsync("shutdown", new StringContent(""))).StatusCode);
        Assert.Equal(2, target.Shutdowns);
    }

    [Fact]
    public async Task A_request_under_a_name_that_is_not_loopback_is_refused_even_for_reading()
    {
        await using var admin = await StartAsync(new FakeTarget(), token: null);
        using var http = new HttpClient { BaseAddress = admin.Uri, Timeout = TimeSpan.FromSeconds(30) };

        // DNS rebinding: the page's own name resolves to 127.0.0.1, and the browser sends that name as Host.
        using var rebound = new HttpRequestMessage(HttpMethod.Get, "status");
        rebound.Headers.Host = $"attacker.example:{admin.Uri.Port}";
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(rebound)).StatusCode);

        using var local = new HttpRequestMessage(HttpMethod.Get, "readyz");
        local.Headers.Host = $"localhost:{admin.Uri.Port}";
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(local)).StatusCode);
    }

    [Fact]
    public async Task With_a_token_a_mutation_needs_it_and_the_header_alone_is_not_enough()
    {
        var target = new FakeTarget();
        await using var admin = await StartAsync(target, token: "s3cret");
        using var http = new HttpClient { BaseAddress = admin.Uri, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Add(AdminGuard.Header, "1");

        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsJsonAsync("inject", new { replica = "r1", fault = "crash" })).StatusCode);
        Assert.Equal(0, target.Injections);
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "s3cret");
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsJsonAsync("inject", new { replica = "r1", fault = "crash" })).StatusCode);
        Assert.Equal(1, target.Injections);
    }

    private static async Task<RunningAdmin> StartAsync(FakeTarget target, string? token)
    {
        var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
        var exporter = new MetricsExport("Resh.Tests.AdminGuard");
        var server = new AdminServer(new IPEndPoint(IPAddress.Loopback, port), () => token, target, new EventJournal(), exporter, NullLoggerFactory.Instance);
        await server.StartAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        return new RunningAdmin(server, exporter, new Uri($"http://127.0.0.1:{port}/"));
    }

    private sealed class RunningAdmin(AdminServer server, MetricsExport exporter, Uri uri) : IAsyncDisposable
    {
        public Uri Uri { get; } = uri;

        public async ValueTask DisposeAsync()
        {
            await server.DisposeAsync();
            exporter.Dispose();
        }
    }

    private sealed class FakeTarget : IAdminTarget
    {
        private int _shutdowns;
        private int _injections;

        public int Shutdowns => Volatile.Read(ref _shutdowns);

        public int Injections => Volatile.Read(ref _injections);

        public bool Ready => true;

        public ReshStatus Status() => new("resh", 1, 0, 0, 3, true, []);

        public Task<string> InjectAsync(string replica, FaultKind fault, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _injections);
            return Task.FromResult("injected");
        }

        public Task<VerifiedCheckpoint> CheckpointAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("no checkpoints here");

        public void RequestShutdown() => Interlocked.Increment(ref _shutdowns);
    }
}
