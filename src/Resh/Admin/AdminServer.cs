using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Resh.Diagnostics;
using Resh.Group;

namespace Resh.Admin;

/// <summary>What the admin endpoint needs from the running gateway.</summary>
public interface IAdminTarget
{
    ReshStatus Status();

    bool Ready { get; }

    Task<string> InjectAsync(string replica, FaultKind fault, CancellationToken cancellationToken);

    /// <summary>Takes a service checkpoint now (if the log moved since the last) and returns the newest verified one.</summary>
    /// <exception cref="InvalidOperationException">Checkpoints are not configured, or the checkpoint failed.</exception>
    Task<VerifiedCheckpoint> CheckpointAsync(CancellationToken cancellationToken);

    /// <summary>Starts a controlled shutdown; returns at once.</summary>
    void RequestShutdown();

    /// <summary>Starts a planned switchover (a controlled stop that hands the service to the backup); returns why not, or null.</summary>
    string? RequestSwitchover() => "this gateway has no backup to hand its service to (a switchover needs mode: remus)";

    /// <summary>Migrates the service to <paramref name="target"/> (`resh receive` there): pre-copy rounds, then the stop-and-copy.</summary>
    /// <exception cref="InvalidOperationException">The service cannot be migrated, or the target could not be brought up to date.</exception>
    Task<Composition.ModeStatus> MigrateAsync(System.Net.IPEndPoint target, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("this gateway cannot be migrated");

    /// <summary>Reads the configuration again and applies what can change while serving (as SIGHUP does).</summary>
    /// <exception cref="InvalidOperationException">This gateway was not started from a configuration file.</exception>
    Task<Hosting.ReloadOutcome> ReloadAsync(CancellationToken cancellationToken) =>
        throw new InvalidOperationException("this gateway was not started from a configuration file; there is nothing to reload");
}

public sealed record MigrateRequest(string? To);

public sealed record InjectRequest(string? Replica, string? Fault);

/// <summary>
/// The admin HTTP endpoint. It binds loopback addresses only; mutations are POST-only and, when a token
/// is configured, need "Authorization: Bearer TOKEN"; a browser cannot forge them (<see cref="AdminGuard"/>).
/// </summary>
public sealed class AdminServer : IAsyncDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    private readonly WebApplication _app;

    /// <summary>One JSON line per event, as server-sent events carry it.</summary>
    private static readonly JsonSerializerOptions Line = new(JsonSerializerDefaults.Web) { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The live page at /: plain HTML and script shipped in the assembly, nothing to build or fetch.</summary>
    private static readonly Lazy<string> Dashboard = new(() =>
    {
        using var stream = typeof(AdminServer).Assembly.GetManifestResourceStream("Resh.Admin.dashboard.html")
            ?? throw new InvalidOperationException("the dashboard page is not in the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>
    /// GET /events/stream: server-sent events, every event of the journal after <paramref name="after"/> (or the
    /// Last-Event-ID a reconnecting browser sends) and then each new one as it is recorded, until the client leaves or
    /// the admin endpoint stops.
    /// </summary>
    private static async Task StreamEventsAsync(HttpContext http, EventJournal events, long? after, CancellationToken stopping)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        var last = after ?? (long.TryParse(http.Request.Headers["Last-Event-ID"], System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : 0);
        using var done = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
        try
        {
            await http.Response.WriteAsync(": resh events\n\n", done.Token);
            while (true)
            {
                foreach (var e in events.Since(last))
                {
                    await http.Response.WriteAsync($"id: {e.Id}\ndata: {JsonSerializer.Serialize(e, Line)}\n\n", done.Token);
                    last = e.Id;
                }

                await http.Response.Body.FlushAsync(done.Token);
                await Task.Delay(200, done.Token);
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
        }
    }

    public AdminServer(IPEndPoint endpoint, Func<string?> token, IAdminTarget target, EventJournal events, MetricsExport metrics, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!IPAddress.IsLoopback(endpoint.Address))
        {
            throw new ArgumentException($"admin: {endpoint} is not a loopback address; the admin endpoint binds loopback only (e.g. 127.0.0.1:6390)", nameof(endpoint));
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint));
        _app = builder.Build();
        _app.Use(async (HttpContext http, RequestDelegate next) =>
        {
            if (AdminGuard.Refusal(http.Request, token()) is { } refusal)
            {
                await Results.Json(new { error = refusal.Error }, Json, statusCode: refusal.Status).ExecuteAsync(http);
                return;
            }

            await next(http);
        });

        _app.MapGet("/status", () => Results.Json(target.Status(), Json));
        _app.MapGet("/readyz", () => target.Ready ? Results.Text("ready\n") : Results.Text("not ready: fewer than f+1 replicas vote\n", statusCode: 503));
        _app.MapGet("/events", (long? after) => Results.Json(events.Since(after ?? 0), Json));
        _app.MapGet("/", () => Results.Text(Dashboard.Value, "text/html; charset=utf-8"));
        _app.MapGet("/events/stream", (HttpContext http, long? after) => StreamEventsAsync(http, events, after, _app.Lifetime.ApplicationStopping));
        _app.MapPrometheusScrapingEndpoint("/metrics", metrics.Provider, null, null);
        _app.MapPost("/inject", async (HttpContext http) =>
        {
            InjectRequest? request;
            try
            {
                request = await http.Request.ReadFromJsonAsync<InjectRequest>(Json, http.RequestAborted);
            }
            catch (JsonException e)
            {
                return Results.Json(new { error = $"body is not JSON like {{\"replica\":\"r2\",\"fault\":\"crash\"}}: {e.Message}" }, Json, statusCode: 400);
            }

            if (request?.Replica is null || request.Fault is null || !Enum.TryParse<FaultKind>(request.Fault, ignoreCase: true, out var fault) || !Enum.IsDefined(fault))
            {
                return Results.Json(new { error = "need {\"replica\":\"r2\",\"fault\":\"crash|hang|corrupt|slow\"}" }, Json, statusCode: 400);
            }

            try
            {
                var detail = await target.InjectAsync(request.Replica, fault, http.RequestAborted);
                return Results.Json(new { replica = request.Replica, fault = request.Fault.ToLowerInvariant(), detail }, Json);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException)
            {
                return Results.Json(new { error = e.Message }, Json, statusCode: 409);
            }
        });
        _app.MapPost("/checkpoint", async (HttpContext http) =>
        {
            try
            {
                return Results.Json(await target.CheckpointAsync(http.RequestAborted), Json);
            }
            catch (InvalidOperationException e)
            {
                return Results.Json(new { error = e.Message }, Json, statusCode: 409);
            }
        });
        _app.MapPost("/shutdown", (HttpContext http) =>
        {
            target.RequestShutdown();
            return Results.Json(new { stopping = true }, Json, statusCode: 202);
        });
        _app.MapPost("/migrate", async (HttpContext http) =>
        {
            MigrateRequest? request;
            try
            {
                request = await http.Request.ReadFromJsonAsync<MigrateRequest>(Json, http.RequestAborted);
            }
            catch (JsonException e)
            {
                return Results.Json(new { error = $"body is not JSON like {{\"to\":\"10.0.0.2:6395\"}}: {e.Message}" }, Json, statusCode: 400);
            }

            if (request?.To is null || !System.Net.IPEndPoint.TryParse(request.To, out var to) || to.Port == 0)
            {
                return Results.Json(new { error = "need {\"to\":\"HOST:PORT\"}: the address resh receive listens on" }, Json, statusCode: 400);
            }

            try
            {
                return Results.Json((object)await target.MigrateAsync(to, http.RequestAborted), Json);
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                return Results.Json(new { error = e.Message }, Json, statusCode: 409);
            }
        });
        _app.MapPost("/reload", async (HttpContext http) =>
        {
            try
            {
                var outcome = await target.ReloadAsync(http.RequestAborted);
                return outcome.Errors.Count == 0 ? Results.Json(outcome, Json) : Results.Json(new { error = outcome.ToString(), errors = outcome.Errors }, Json, statusCode: 422);
            }
            catch (InvalidOperationException e)
            {
                return Results.Json(new { error = e.Message }, Json, statusCode: 409);
            }
        });
        _app.MapPost("/switchover", (HttpContext http) =>
            target.RequestSwitchover() is { } problem
                ? Results.Json(new { error = problem }, Json, statusCode: 409)
                : Results.Json(new { switchingOver = true }, Json, statusCode: 202));
    }

    public Task StartAsync(CancellationToken cancellationToken) => _app.StartAsync(cancellationToken);

    /// <summary>The addresses it listens on once started (with the port chosen for a port 0).</summary>
    public IReadOnlyCollection<string> Addresses => [.. _app.Urls];

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(timeout.Token);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}
