namespace Resh.Domains;

/// <summary>Lifecycle of one replica's execution environment.</summary>
public enum DomainState
{
    Created,
    Running,
    Paused,
    Exited,
}

/// <summary>
/// What to run for one domain. <see cref="Arguments"/>[0] is the program (looked up on PATH);
/// placeholders are already filled in.
/// </summary>
public sealed record DomainSpec(
    string Id,
    IReadOnlyList<string> Arguments,
    string DataDirectory,
    string LogDirectory,
    IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>
/// One replica's isolated execution environment: a process tree with its own data directory,
/// log files and (where available) cgroup. Knows processes, nothing of protocols.
/// All control methods are idempotent and safe to call from any thread.
/// </summary>
public interface IDomain : IAsyncDisposable
{
    string Id { get; }

    DomainState State { get; }

    /// <summary>Process id of the domain's main process, or null before start.</summary>
    int? Pid { get; }

    /// <summary>Starts the process. Throws <see cref="DomainStartException"/> with the reason when it cannot.</summary>
    void Start();

    /// <summary>Completes when the main process has exited (with its exit code; 128+signal for signals).</summary>
    Task<int> Exited { get; }

    /// <summary>Freezes the whole process tree (cgroup freezer where writable, else SIGSTOP to the process group).</summary>
    void Pause();

    void Resume();

    /// <summary>SIGKILL to the whole process tree. Idempotent.</summary>
    void Kill();

    /// <summary>CPU time (user + system) consumed by the whole process tree so far.</summary>
    TimeSpan CpuTime { get; }

    /// <summary>"cgroup-v1", "cgroup-v2" or "signals": how pause/resume and accounting are done.</summary>
    string Isolation { get; }

    /// <summary>
    /// Whether a process of this domain holds the TCP listener on <paramref name="port"/>: false when another
    /// process does (it took the port between its choice and the service's start); null when it cannot be told.
    /// </summary>
    bool? OwnsListener(int port) => null;
}

public sealed class DomainStartException(string message, Exception? inner = null) : Exception(message, inner);
