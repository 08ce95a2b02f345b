// Over 400 lines: one process domain's lifecycle (start, readiness, freeze and thaw, kill of the whole tree, exit), whose steps share the process handle and its cgroup.
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Resh.Native;

namespace Resh.Domains;

/// <summary>
/// A domain as a child process tree: started through <see cref="LaunchChain"/> on the factory's spawner thread,
/// in its own session/process group and (where available) its own cgroup(s).
/// </summary>
/// <remarks>
/// Control methods are thread safe. <see cref="Pause"/>, <see cref="Resume"/> and <see cref="Kill"/> are
/// idempotent and no-ops after exit; <see cref="Pause"/>/<see cref="Resume"/> before <see cref="Start"/> throw
/// <see cref="InvalidOperationException"/>. <see cref="Start"/> is a no-op while running; a domain does not
/// restart (after exit, or after <see cref="Kill"/> before start, it throws): create a new one instead.
/// The working directory of the service is <see cref="DomainSpec.DataDirectory"/>.
/// </remarks>
public sealed class ProcessDomain : IDomain
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(2);

    private readonly DomainFactory _factory;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly object _disposeGate = new();
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process;
    private CgroupGroup? _cgroup;
    private volatile int _pid;
    private volatile bool _ownSession;
    private volatile DomainState _state = DomainState.Created;
    private volatile bool _disposed;
    private int _killRequested;
    private int _killLogged;
    private long _cpuTicks;
    private Task? _disposeTask;

    internal ProcessDomain(DomainFactory factory, DomainSpec spec, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentException.ThrowIfNullOrWhiteSpace(spec.Id, nameof(spec));
        _factory = factory;
        _logger = logger;
        Spec = spec;
        StandardOutputPath = Path.GetFullPath(Path.Combine(spec.LogDirectory, spec.Id + ".out"));
        StandardErrorPath = Path.GetFullPath(Path.Combine(spec.LogDirectory, spec.Id + ".err"));
    }

    public string Id => Spec.Id;

    public DomainSpec Spec { get; }

    /// <summary>&lt;LogDirectory&gt;/&lt;id&gt;.out: the service's stdout, appended.</summary>
    public string StandardOutputPath { get; }

    /// <summary>&lt;LogDirectory&gt;/&lt;id&gt;.err: the service's stderr (and launch errors), appended.</summary>
    public string StandardErrorPath { get; }

    public DomainState State => _exited.Task.IsCompleted ? DomainState.Exited : _state;

    public int? Pid => _pid == 0 ? null : _pid;

    public Task<int> Exited => _exited.Task;

    public string Isolation => _factory.Isolation;

    /// <summary>The cgroup directories of this domain (empty with "signals" isolation or before start).</summary>
    public IReadOnlyList<string> CgroupDirectories => _cgroup?.Directories ?? [];

    public TimeSpan CpuTime
    {
        get
        {
            var pid = _pid;
            if (pid != 0)
            {
                ObserveCpu(ReadCpuNow(pid));
            }

            return TimeSpan.FromTicks(Interlocked.Read(ref _cpuTicks));
        }
    }

    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state != DomainState.Created)
            {
                if (_exited.Task.IsCompleted)
                {
                    throw new InvalidOperationException($"Domain {Id} has exited; domains do not restart, create a new one.");
                }

                return;
            }

            if (Volatile.Read(ref _killRequested) != 0)
            {
                throw new InvalidOperationException($"Domain {Id} was killed before it started.");
            }

            StartCore();
        }
    }

    public void Pause()
    {
        lock (_gate)
        {
            ThrowIfNotStarted();
            if (_exited.Task.IsCompleted || _state == DomainState.Paused)
            {
                return;
            }

            if (_cgroup is { } cgroup)
            {
                FreezeCgroup(cgroup);
            }
            else
            {
                StopWithSignals();
            }

            _state = DomainState.Paused;
            DomainLog.Paused(_logger, Id);
        }
    }

    public void Resume()
    {
        lock (_gate)
        {
            ThrowIfNotStarted();
            if (_exited.Task.IsCompleted || _state != DomainState.Paused)
            {
                return;
            }

            if (_cgroup is { } cgroup)
            {
                cgroup.Thaw();
            }
            else
            {
                SignalTree(Libc.SigCont, includeMain: true);
            }

            _state = DomainState.Running;
            DomainLog.Resumed(_logger, Id);
        }
    }

    public void Kill()
    {
        // Set before taking the lock: a Pause or Start waiting inside the lock sees it and gives up quickly.
        Interlocked.Exchange(ref _killRequested, 1);
        lock (_gate)
        {
            if (_pid == 0)
            {
                return;
            }

            KillCore();
        }
    }

    public ValueTask DisposeAsync()
    {
        lock (_disposeGate)
        {
            _disposeTask ??= DisposeCoreAsync();
            return new ValueTask(_disposeTask);
        }
    }

    /// <summary>Best-effort synchronous teardown at process exit (the factory's ProcessExit hook).</summary>
    internal void KillNow()
    {
        Interlocked.Exchange(ref _killRequested, 1);
        if (_pid != 0)
        {
            KillCore();
        }
    }

    /// <summary>Waits (bounded) for the cgroup to empty and removes it; synchronous, for the ProcessExit hook.</summary>
    internal void RemoveCgroupNow(TimeSpan timeout)
    {
        if (_cgroup is not { } cgroup)
        {
            return;
        }

        var deadline = Stopwatch.StartNew();
        while (!cgroup.TryRemove(out _) && deadline.Elapsed < timeout)
        {
            cgroup.KillAll();
            Thread.Sleep(10);
        }
    }

    private void StartCore()
    {
        var spec = Spec;
        if (spec.Arguments.Count == 0 || string.IsNullOrEmpty(spec.Arguments[0]))
        {
            throw new DomainStartException($"Domain {Id}: no program to run (empty argument list).");
        }

        var programName = spec.Arguments[0];
        string? searchPath = null;
        spec.Environment?.TryGetValue("PATH", out searchPath);
        searchPath ??= Environment.GetEnvironmentVariable("PATH") ?? "";
        var program = ExecutableResolver.Find(programName, searchPath)
            ?? throw new DomainStartException(programName.Contains('/', StringComparison.Ordinal)
                ? $"Domain {Id}: program '{programName}' does not exist or is not executable."
                : $"Domain {Id}: program '{programName}' was not found on PATH ({searchPath}).");

        try
        {
            Directory.CreateDirectory(spec.DataDirectory);
            Directory.CreateDirectory(spec.LogDirectory);
            File.AppendAllText(StandardOutputPath, "");
            File.AppendAllText(StandardErrorPath, "");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new DomainStartException($"Domain {Id}: cannot prepare directories: {e.Message}", e);
        }

        CgroupGroup? cgroup = null;
        if (_factory.Run is { } run)
        {
            try
            {
                cgroup = run.CreateGroup(Id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DomainStartException($"Domain {Id}: cannot create its cgroup under {string.Join(", ", run.RunDirectories)}: {e.Message}", e);
            }
        }

        var tools = _factory.Tools;
        var argv = LaunchChain.Build(tools, cgroup?.ProcsFiles ?? [], StandardOutputPath, StandardErrorPath, program, spec.Arguments.Skip(1));
        var startInfo = new ProcessStartInfo(argv[0])
        {
            UseShellExecute = false,
            WorkingDirectory = Path.GetFullPath(spec.DataDirectory),
        };
        foreach (var arg in argv.Skip(1))
        {
            startInfo.ArgumentList.Add(arg);
        }

        if (spec.Environment is { } environment)
        {
            foreach (var (key, value) in environment)
            {
                startInfo.Environment[key] = value;
            }
        }

        Process process;
        try
        {
            process = _factory.Spawner.StartAsync(startInfo).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not DomainStartException)
        {
            cgroup?.TryRemove(out _);
            throw new DomainStartException($"Domain {Id}: cannot start '{program}': {e.Message}", e);
        }

        _process = process;
        _cgroup = cgroup;
        _ownSession = tools.Setsid is not null;
        _pid = process.Id;
        _state = DomainState.Running;
        if (_ownSession)
        {
            _factory.Watchdog?.Register(_pid);
        }

        _ = WatchExitAsync(process);

        WaitUntilIsolated(program);
        DomainLog.Started(_logger, Id, _pid, Isolation, program);
    }

    /// <summary>
    /// Returns once the process is in its cgroup(s) and its own session, i.e. only the final exec of the service
    /// remains, so a Pause or Kill right after Start covers everything the service will ever fork.
    /// </summary>
    private void WaitUntilIsolated(string program)
    {
        var pid = _pid;
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (_exited.Task.IsCompleted)
            {
                var code = _exited.Task.Result;
                if (code == LaunchChain.SetupFailedExitCode)
                {
                    throw new DomainStartException(
                        $"Domain {Id}: launching '{program}' failed while redirecting output or joining the cgroup (exit code {code}). {TailOf(StandardErrorPath)}");
                }

                // The service ran and already ended: Exited carries its code.
                return;
            }

            if (Volatile.Read(ref _killRequested) != 0)
            {
                return;
            }

            var inSession = !_ownSession || (ProcFs.TryReadStat(pid, out var stat) && stat.Session == pid);
            if (inSession && (_cgroup is null || _cgroup.Contains(pid)))
            {
                return;
            }

            if (watch.Elapsed > _factory.Options.StartTimeout)
            {
                KillCore();
                throw new DomainStartException(
                    $"Domain {Id}: '{program}' (pid {pid}) did not reach its own session/cgroup within {_factory.Options.StartTimeout}. {TailOf(StandardErrorPath)}");
            }

            Thread.Sleep(PollInterval);
        }
    }

    private async Task WatchExitAsync(Process process)
    {
        int code;
        try
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
            code = process.ExitCode;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            code = -1;
        }

        // cgroup accounting survives the exit; with signals this is the last chance to see the main pid.
        if (_cgroup is { } cgroup && cgroup.ReadCpu() is { } cpu)
        {
            ObserveCpu(cpu);
        }

        _exited.TrySetResult(code);
        DomainLog.Exited(_logger, Id, process.Id, code);
    }

    private void FreezeCgroup(CgroupGroup cgroup)
    {
        var watch = Stopwatch.StartNew();
        var lastRequest = TimeSpan.Zero;
        cgroup.RequestFreeze();
        while (!cgroup.IsFrozen())
        {
            if (_exited.Task.IsCompleted || Volatile.Read(ref _killRequested) != 0)
            {
                return;
            }

            if (watch.Elapsed > _factory.Options.FreezeTimeout)
            {
                cgroup.Thaw();
                throw new TimeoutException($"Domain {Id}: the cgroup did not freeze within {_factory.Options.FreezeTimeout}; it was thawed again.");
            }

            // cgroup v1 may stay FREEZING when a task could not be frozen at once; writing FROZEN again retries.
            if (watch.Elapsed - lastRequest > TimeSpan.FromMilliseconds(50))
            {
                lastRequest = watch.Elapsed;
                cgroup.RequestFreeze();
            }

            Thread.Sleep(PollInterval);
        }
    }

    private void StopWithSignals()
    {
        var watch = Stopwatch.StartNew();
        SignalTree(Libc.SigStop, includeMain: true);
        while (true)
        {
            if (_exited.Task.IsCompleted || Volatile.Read(ref _killRequested) != 0)
            {
                return;
            }

            var running = Tree(includeMain: true).Where(p => !p.IsStopped).ToList();
            if (running.Count == 0)
            {
                return;
            }

            if (watch.Elapsed > _factory.Options.FreezeTimeout)
            {
                SignalTree(Libc.SigCont, includeMain: true);
                throw new TimeoutException($"Domain {Id}: the process tree did not stop within {_factory.Options.FreezeTimeout}; it was continued again.");
            }

            foreach (var p in running)
            {
                Libc.Signal(p.Pid, Libc.SigStop);
            }

            Thread.Sleep(PollInterval);
        }
    }

    private void KillCore()
    {
        _cgroup?.KillAll();
        var exited = _exited.Task.IsCompleted;
        if (!exited)
        {
            var pid = _pid;
            if (_ownSession)
            {
                Libc.Signal(-pid, Libc.SigKill);
            }

            Libc.Signal(pid, Libc.SigKill);
        }

        // After exit the main pid may be reused: only the session's members are addressed then.
        SignalTree(Libc.SigKill, includeMain: !exited);
        if (Interlocked.Exchange(ref _killLogged, 1) == 0)
        {
            DomainLog.Killed(_logger, Id);
        }
    }

    /// <summary>Signals the process group (while the main process lives) and every member of the tree.</summary>
    private void SignalTree(int signal, bool includeMain)
    {
        var pid = _pid;
        if (includeMain && !_exited.Task.IsCompleted && _ownSession)
        {
            Libc.Signal(-pid, signal);
        }

        foreach (var p in Tree(includeMain))
        {
            Libc.Signal(p.Pid, signal);
        }
    }

    public bool? OwnsListener(int port)
    {
        if (!OperatingSystem.IsLinux() || _pid == 0)
        {
            return null;
        }

        var inodes = ProcFs.ListenerInodes(port);
        if (inodes.Count == 0)
        {
            return null;
        }

        var pids = _cgroup?.Pids() ?? [.. Tree(includeMain: true).Select(p => p.Pid)];
        return pids.Any(pid => ProcFs.HoldsSocket(pid, inodes));
    }

    private List<ProcStat> Tree(bool includeMain)
    {
        var pid = _pid;
        var root = includeMain && !_exited.Task.IsCompleted ? pid : (int?)null;
        int? session = _ownSession ? pid : null;
        if (root is null && session is null)
        {
            return [];
        }

        return ProcFs.Tree(root ?? -1, session);
    }

    private TimeSpan? ReadCpuNow(int pid)
    {
        if (_cgroup is { } cgroup)
        {
            return cgroup.ReadCpu();
        }

        var tree = Tree(includeMain: true);
        if (tree.Count == 0)
        {
            return null;
        }

        var ticks = tree.Sum(p => p.TotalTicks);
        return TimeSpan.FromTicks(ticks * TimeSpan.TicksPerSecond / Libc.ClockTicksPerSecond);
    }

    /// <summary>Keeps the largest value seen: accounting never goes backwards, and stays after the source is gone.</summary>
    private void ObserveCpu(TimeSpan? value)
    {
        if (value is not { } v)
        {
            return;
        }

        var current = Interlocked.Read(ref _cpuTicks);
        while (v.Ticks > current)
        {
            var seen = Interlocked.CompareExchange(ref _cpuTicks, v.Ticks, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private async Task DisposeCoreAsync()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        Kill();
        var timeout = _factory.Options.StopTimeout;
        var watch = Stopwatch.StartNew();
        if (_pid != 0)
        {
            try
            {
                await _exited.Task.WaitAsync(timeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                DomainLog.StopTimedOut(_logger, Id, timeout);
            }

            // Leftover descendants (e.g. ones that ignored the group kill by changing session) are gone from the
            // cgroup only once dead; rmdir succeeds then.
            if (_cgroup is { } cgroup)
            {
                ObserveCpu(cgroup.ReadCpu());
                string? error = null;
                while (!cgroup.TryRemove(out error) && watch.Elapsed < timeout)
                {
                    cgroup.KillAll();
                    await Task.Delay(10).ConfigureAwait(false);
                }

                if (error is not null)
                {
                    DomainLog.CgroupRemoveFailed(_logger, string.Join(", ", cgroup.Directories), error);
                }
            }
            else
            {
                while (Tree(includeMain: false).Count > 0 && watch.Elapsed < timeout)
                {
                    SignalTree(Libc.SigKill, includeMain: false);
                    await Task.Delay(10).ConfigureAwait(false);
                }
            }
        }

        if (_pid != 0 && _ownSession)
        {
            _factory.Watchdog?.Unregister(_pid);
        }

        _process?.Dispose();
        _factory.Forget(this);
    }

    private void ThrowIfNotStarted()
    {
        if (_pid == 0)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            throw new InvalidOperationException($"Domain {Id} has not been started.");
        }
    }

    private static string TailOf(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            if (text.Length == 0)
            {
                return "";
            }

            return $"{path}: {(text.Length > 600 ? "..." + text[^600..] : text)}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
