using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Resh.Domains;

/// <summary>
/// Creates <see cref="ProcessDomain"/>s for one run. Detects the isolation mechanism once, owns the run's cgroup
/// parent (resh/&lt;runId&gt; in each hierarchy used) and the spawner thread every domain is started from.
/// Disposing it kills all its domains and removes the cgroup directories it created.
/// </summary>
public sealed class DomainFactory : IDomainFactory
{
    private readonly ILogger _logger;
    private readonly ILogger _domainLogger;
    private readonly ConcurrentDictionary<ProcessDomain, byte> _domains = new();
    private readonly object _disposeGate = new();
    private Task? _disposeTask;
    private volatile bool _disposed;

    /// <summary>Detects isolation, probes setpriv, starts the spawner thread and the watchdog; logs per category.</summary>
    public DomainFactory(DomainFactoryOptions? options = null, ILoggerFactory? loggerFactory = null)
        : this(
            options,
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<DomainFactory>(),
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ProcessDomain>())
    {
    }

    /// <summary>As the other constructor, with one logger for the factory and its domains.</summary>
    public DomainFactory(DomainFactoryOptions? options, ILogger logger)
        : this(options, logger, logger)
    {
    }

    private DomainFactory(DomainFactoryOptions? options, ILogger factoryLogger, ILogger domainLogger)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Process domains need Linux (/proc, process groups, cgroups).");
        }

        Options = options ?? new DomainFactoryOptions();
        ArgumentNullException.ThrowIfNull(factoryLogger);
        ArgumentNullException.ThrowIfNull(domainLogger);
        _logger = factoryLogger;
        _domainLogger = domainLogger;
        RunId = Options.RunId ?? CgroupRun.NewRunId();

        var shell = ExecutableResolver.FindTool("sh")
            ?? throw new InvalidOperationException("No 'sh' was found on PATH or in the system directories.");
        var setsid = ExecutableResolver.FindTool("setsid");
        if (setsid is null)
        {
            DomainLog.SetsidUnavailable(_logger);
        }

        Spawner = new Spawner("resh-domain-spawner");
        string? setpriv = null;
        if (Options.UseParentDeathSignal)
        {
            setpriv = ProbeSetpriv(shell, out var reason);
            if (setpriv is null)
            {
                DomainLog.ParentDeathSignalUnavailable(_logger, reason);
            }
        }

        Tools = new LaunchTools(shell, setpriv, setsid);
        try
        {
            Run = SelectIsolation();
        }
        catch
        {
            Spawner.Dispose();
            throw;
        }

        Isolation = Run?.Isolation ?? "signals";
        if (Options.UseWatchdog)
        {
            Watchdog = Watchdog.TryStart(Spawner, Tools, Run?.RunDirectories ?? [], _logger);
        }

        DomainLog.IsolationSelected(_logger, RunId, Isolation);
        if (Run is not null && Options.SweepStaleRuns)
        {
            foreach (var dir in Run.ReshDirectories)
            {
                CgroupRun.SweepStale(dir, _logger);
            }
        }

        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public string Isolation { get; }

    public string RunId { get; }

    /// <summary>True when a watchdog process cleans up domains if this process dies without disposing the factory.</summary>
    public bool UsesWatchdog => Watchdog is not null;

    /// <summary>True when domains get PR_SET_PDEATHSIG (setpriv was found and works).</summary>
    public bool UsesParentDeathSignal => Tools.Setpriv is not null;

    /// <summary>The run's cgroup directories (resh/&lt;runId&gt; per hierarchy); empty with "signals".</summary>
    public IReadOnlyList<string> CgroupRunDirectories => Run?.RunDirectories ?? [];

    internal DomainFactoryOptions Options { get; }

    internal LaunchTools Tools { get; }

    internal Spawner Spawner { get; }

    internal CgroupRun? Run { get; }

    internal Watchdog? Watchdog { get; }

    /// <summary>A new domain (not started). It is disposed with the factory unless disposed before.</summary>
    public ProcessDomain Create(DomainSpec spec)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var domain = new ProcessDomain(this, spec, _domainLogger);
        _domains[domain] = 0;
        return domain;
    }

    IDomain IDomainFactory.Create(DomainSpec spec) => Create(spec);

    public ValueTask DisposeAsync()
    {
        lock (_disposeGate)
        {
            _disposeTask ??= DisposeCoreAsync();
            return new ValueTask(_disposeTask);
        }
    }

    internal void Forget(ProcessDomain domain) => _domains.TryRemove(domain, out _);

    private async Task DisposeCoreAsync()
    {
        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await Task.WhenAll(_domains.Keys.Select(d => d.DisposeAsync().AsTask())).ConfigureAwait(false);
        Run?.Remove(_logger);
        Watchdog?.Dispose();

        // Ending the spawner thread delivers the parent-death signal to anything still alive that it started.
        Spawner.Dispose();
    }

    private CgroupRun? SelectIsolation()
    {
        var root = Options.CgroupRoot;
        switch (Options.Isolation)
        {
            case IsolationMode.Signals:
                return null;

            case IsolationMode.CgroupV1:
                return CgroupV1Run.TryCreate(root, RunId, out var v1Reason)
                    ?? throw new InvalidOperationException($"cgroup v1 isolation was requested but is not usable: {v1Reason}");

            case IsolationMode.CgroupV2:
                {
                    var v2Root = Options.CgroupV2Root
                        ?? (CgroupV2Run.IsV2Root(root) ? root : Path.Combine(root, "unified"));
                    return CgroupV2Run.TryCreate(v2Root, RunId, out var v2Reason)
                        ?? throw new InvalidOperationException($"cgroup v2 isolation was requested but is not usable: {v2Reason}");
                }

            default:
                {
                    // Only the main hierarchy: v2 when it is mounted at the root, else the v1 controllers.
                    string reason;
                    if (CgroupV2Run.IsV2Root(root))
                    {
                        var run = CgroupV2Run.TryCreate(root, RunId, out reason);
                        if (run is not null)
                        {
                            return run;
                        }

                        DomainLog.CgroupUnavailable(_logger, "cgroup-v2", reason);
                        return null;
                    }

                    var v1 = CgroupV1Run.TryCreate(root, RunId, out reason);
                    if (v1 is null)
                    {
                        DomainLog.CgroupUnavailable(_logger, "cgroup-v1", reason);
                    }

                    return v1;
                }
        }
    }

    /// <summary>Checks that setpriv exists and knows --pdeathsig (util-linux 2.33+), by running it once.</summary>
    private string? ProbeSetpriv(string shell, out string reason)
    {
        var setpriv = ExecutableResolver.FindTool("setpriv");
        if (setpriv is null)
        {
            reason = "setpriv (util-linux) was not found on PATH";
            return null;
        }

        var startInfo = new ProcessStartInfo(setpriv)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "--pdeathsig", "KILL", "--", shell, "-c", ":" })
        {
            startInfo.ArgumentList.Add(arg);
        }

        try
        {
            using var process = Spawner.StartAsync(startInfo).GetAwaiter().GetResult();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill();
                reason = $"{setpriv} did not finish";
                return null;
            }

            if (process.ExitCode != 0)
            {
                reason = $"{setpriv} --pdeathsig failed with exit code {process.ExitCode}: {stderr.GetAwaiter().GetResult().Trim()}";
                return null;
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            reason = e.Message;
            return null;
        }

        reason = "";
        return setpriv;
    }

    /// <summary>The process is exiting without having disposed the factory: kill everything, remove cgroups (bounded).</summary>
    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        var domains = _domains.Keys.ToList();
        foreach (var domain in domains)
        {
            domain.KillNow();
        }

        foreach (var domain in domains)
        {
            domain.RemoveCgroupNow(TimeSpan.FromSeconds(1));
        }

        Run?.Remove(_logger);
    }
}
