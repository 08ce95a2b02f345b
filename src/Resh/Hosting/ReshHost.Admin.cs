using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Admin;
using Resh.Diagnostics;

namespace Resh.Hosting;

/// <summary>
/// The admin endpoint of a host: opened when it serves; readied by a standby before a takeover (opened at once when its
/// address is free, its web stack warmed up when the address is still the old gateway's); opened after a takeover once
/// the gateway that held its address let it go.
/// </summary>
public sealed partial class ReshHost
{
    /// <summary>Starts the admin endpoint once; an optional one that cannot listen is logged and left out.</summary>
    private async Task StartAdminAsync(IPEndPoint? endpoint, bool optional, CancellationToken cancellationToken)
    {
        if (endpoint is null || _admin is not null)
        {
            return;
        }

        // One start at a time: a standby's preparation may still be starting it when the takeover asks.
        await _adminGate.WaitAsync(cancellationToken);
        try
        {
            await StartAdminOnceAsync(endpoint, optional, cancellationToken);
        }
        finally
        {
            _adminGate.Release();
        }
    }

    private readonly SemaphoreSlim _adminGate = new(1, 1);

    private async Task StartAdminOnceAsync(IPEndPoint endpoint, bool optional, CancellationToken cancellationToken)
    {
        if (_admin is not null)
        {
            return;
        }

        if (optional && InUse(endpoint) is { } inUse)
        {
            // Taken (a backup or migration target that took over on the old gateway's host): said at once, without
            // starting the web stack only to fail, which takes a core for a fifth of a second when the service has just moved.
            HostLog.AdminUnavailable(_logger, endpoint, inUse);
            return;
        }

        var admin = new AdminServer(endpoint, () => _options.AdminToken, this, Events, Exporter(), _loggerFactory);
        try
        {
            await admin.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await admin.DisposeAsync();
            if (!optional)
            {
                throw new InvalidOperationException($"cannot listen on {endpoint}: {e.Message} (admin)", e);
            }

            HostLog.AdminUnavailable(_logger, endpoint, e.Message);
            return;
        }

        _admin = admin;
        AdminEndPoint = endpoint;
    }

    private MetricsExport? _exporter;
    private GcPauses? _gcPauses;

    /// <summary>Why nothing can listen on <paramref name="endpoint"/> now (another listener has it, or it cannot be bound here), or null.</summary>
    private static string? InUse(IPEndPoint endpoint)
    {
        using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // As the web server binds: a port left in TIME_WAIT by a closed listener is free.
            probe.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            probe.Bind(endpoint);
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return $"{endpoint} is in use by another listener";
        }
        catch (SocketException e)
        {
            return $"{endpoint}: {e.Message}";
        }
    }

    private MetricsExport Exporter()
    {
        if (_exporter is null)
        {
            _exporter = new MetricsExport(ReshMetrics.MeterName);
            RegisterObservables();
            _gcPauses = new GcPauses(Metrics.Meter, _logger);
        }

        return _exporter;
    }

    /// <summary>
    /// A standby without an admin endpoint of its own readies the configured one for the takeover. Free (the standby runs
    /// on a host of its own), it is opened now and serves the standby's status. Taken (by the gateway this one takes the
    /// service from, on the same host), its web stack is started on a loopback port, asked once and stopped: the first
    /// start in a process costs 350-400 ms of a busy two-core machine right after the takeover, when the moved service's
    /// first clients need it, a second one 90-200 ms (docs/benchmarks.md).
    /// </summary>
    private async Task PrepareAdminAsync(CancellationToken cancellationToken)
    {
        if (_options.Admin is not { } configured || _admin is not null)
        {
            return;
        }

        if (InUse(configured) is null)
        {
            await StartAdminAsync(configured, optional: true, cancellationToken);
            return;
        }

        await _adminGate.WaitAsync(cancellationToken);
        var warm = new AdminServer(new IPEndPoint(IPAddress.Loopback, 0), () => null, this, Events, Exporter(), NullLoggerFactory.Instance);
        try
        {
            await warm.StartAsync(cancellationToken);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            foreach (var address in warm.Addresses)
            {
                using var _ = await http.GetAsync(new Uri(new Uri(address), "/readyz"), cancellationToken);
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException or TaskCanceledException)
        {
            // Only a warm-up: the configured endpoint opens at the takeover either way.
        }
        finally
        {
            await warm.DisposeAsync();
            _adminGate.Release();
        }
    }

    private Task _adminOpener = Task.CompletedTask;
    private readonly CancellationTokenSource _adminOpenerStop = new();

    /// <summary>Opens the configured admin endpoint as soon as nothing else listens on it (for up to a minute).</summary>
    private async Task OpenAdminWhenFreeAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        try
        {
            for (var waited = TimeSpan.Zero; waited < AdminWait; waited += AdminPoll)
            {
                await Task.Delay(AdminPoll, cancellationToken);
                if (InUse(endpoint) is null)
                {
                    await StartAdminAsync(endpoint, optional: true, cancellationToken);
                    if (_admin is not null)
                    {
                        HostLog.AdminOpened(_logger, endpoint, waited + AdminPoll);
                        Events.Record("+admin-opened", null, $"{endpoint}, once the gateway that held it let it go");
                    }

                    return;
                }
            }

            HostLog.AdminUnavailable(_logger, endpoint, $"still in use after {AdminWait.TotalSeconds:0} s; the admin endpoint stays closed");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static readonly TimeSpan AdminPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan AdminWait = TimeSpan.FromMinutes(1);
}
