namespace Resh.Domains;

/// <summary>How domains are isolated: pause/resume, kill and CPU accounting.</summary>
public enum IsolationMode
{
    /// <summary>The main cgroup hierarchy when writable (v2 if /sys/fs/cgroup is v2, else v1 freezer + cpuacct), else signals.</summary>
    Auto,

    /// <summary>cgroup v1 freezer + cpuacct; the factory fails when they are not usable.</summary>
    CgroupV1,

    /// <summary>
    /// cgroup v2 (cgroup.freeze, cgroup.kill, cpu.stat); the factory fails when not usable. Uses
    /// <see cref="DomainFactoryOptions.CgroupV2Root"/>, else the v2 tree at the cgroup root or at its "unified" mount.
    /// </summary>
    CgroupV2,

    /// <summary>No cgroups: SIGSTOP/SIGCONT/SIGKILL to the process group, CPU from /proc/&lt;pid&gt;/stat.</summary>
    Signals,
}

public sealed class DomainFactoryOptions
{
    /// <summary>Identifies this run's cgroup directory (resh/&lt;RunId&gt;). Default: "&lt;pid-namespace&gt;-&lt;pid&gt;-&lt;random&gt;".</summary>
    public string? RunId { get; init; }

    public IsolationMode Isolation { get; init; } = IsolationMode.Auto;

    /// <summary>Where cgroup hierarchies are mounted.</summary>
    public string CgroupRoot { get; init; } = "/sys/fs/cgroup";

    /// <summary>A cgroup v2 mount to use with <see cref="IsolationMode.CgroupV2"/> (e.g. the hybrid "unified" mount).</summary>
    public string? CgroupV2Root { get; init; }

    /// <summary>
    /// Kill and remove the cgroups of earlier runs whose owner process (same pid namespace) is gone, e.g. after the
    /// owner was SIGKILLed and left grandchildren behind. Only run ids in the default format are considered.
    /// </summary>
    public bool SweepStaleRuns { get; init; } = true;

    /// <summary>Use util-linux setpriv --pdeathsig KILL so domains die with this process. Default true.</summary>
    public bool UseParentDeathSignal { get; init; } = true;

    /// <summary>
    /// Run a watchdog process that, if this process dies without disposing the factory, kills every domain's
    /// process group and everything in the run's cgroups (what services forked, which the parent-death signal
    /// does not reach) and removes the cgroups. Default true.
    /// </summary>
    public bool UseWatchdog { get; init; } = true;

    /// <summary>Bound for a started process to be in its cgroup / own session before Start returns.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bound for Pause to see the tree frozen/stopped.</summary>
    public TimeSpan FreezeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Bound for DisposeAsync to see the tree gone after SIGKILL.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
