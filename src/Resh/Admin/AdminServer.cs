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
}

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

    public AdminServer(IPEndPoint endpoint, string? token, IAdminTarget target, EventJournal events, MetricsExport metrics, ILoggerFactory loggerFactory)
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
            if (AdminGuard.Refusal(http.Request, token) is { } refusal)
            {
                await Results.Json(new { error = refusal.Error }, Json, statusCode: refusal.Status).ExecuteAsync(http);
                return;
            }

            await next(http);
        });

        _app.MapGet("/status", () => Results.Json(target.Status(), Json));
        _app.MapGet("/readyz", () => target.Ready ? Results.Text("ready\n") : Results.Text("not ready: fewer than f+1 replicas vote\n", statusCode: 503));
        _app.MapGet("/events", (long? after) => Results.Json(events.Since(after ?? 0), Json));
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
    }

    public Task StartAsync(CancellationToken cancellationToken) => _app.StartAsync(cancellationToken);

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
