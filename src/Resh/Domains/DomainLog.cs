using Microsoft.Extensions.Logging;

namespace Resh.Domains;

/// <summary>Log messages of the domains area: event ids 2000-2099.</summary>
internal static partial class DomainLog
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "Domain isolation for run {RunId}: {Isolation}")]
    public static partial void IsolationSelected(ILogger logger, string runId, string isolation);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "cgroup isolation {Mode} is not usable, falling back: {Reason}")]
    public static partial void CgroupUnavailable(ILogger logger, string mode, string reason);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "setpriv --pdeathsig is not usable ({Reason}); domains will outlive this process if it is SIGKILLed")]
    public static partial void ParentDeathSignalUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "setsid was not found; domains share this process's process group and signals address their pids only")]
    public static partial void SetsidUnavailable(ILogger logger);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Domain {DomainId} started: pid {Pid}, isolation {Isolation}, command {Program}")]
    public static partial void Started(ILogger logger, string domainId, int pid, string isolation, string program);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "Domain {DomainId} (pid {Pid}) exited with code {ExitCode}")]
    public static partial void Exited(ILogger logger, string domainId, int pid, int exitCode);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Debug, Message = "Domain {DomainId} paused")]
    public static partial void Paused(ILogger logger, string domainId);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Debug, Message = "Domain {DomainId} resumed")]
    public static partial void Resumed(ILogger logger, string domainId);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Information, Message = "Domain {DomainId} killed")]
    public static partial void Killed(ILogger logger, string domainId);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Warning, Message = "Could not remove cgroup directory {Path}: {Reason}")]
    public static partial void CgroupRemoveFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Warning, Message = "Removed stale cgroup {Path} of a dead run, killing {Count} leftover processes")]
    public static partial void StaleRunSwept(ILogger logger, string path, int count);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Warning, Message = "Domain {DomainId} did not stop within {Timeout}")]
    public static partial void StopTimedOut(ILogger logger, string domainId, TimeSpan timeout);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Warning, Message = "Domain {DomainId}: {Operation} failed: {Reason}")]
    public static partial void OperationFailed(ILogger logger, string domainId, string operation, string reason);

    [LoggerMessage(EventId = 2013, Level = LogLevel.Warning, Message = "The orphan watchdog is not available ({Reason}); if this process is SIGKILLed, processes forked by services may outlive it")]
    public static partial void WatchdogUnavailable(ILogger logger, string reason);
}
