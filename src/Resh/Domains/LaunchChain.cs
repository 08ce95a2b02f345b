namespace Resh.Domains;

/// <summary>Where the helper programs of the launch chain are; null when missing.</summary>
internal sealed record LaunchTools(string Shell, string? Setpriv, string? Setsid);

/// <summary>
/// Builds the argument vector that starts a domain's service. Every step execs the next, so the pid returned by
/// the spawn is the service's pid in the end:
/// <code>
/// setpriv --pdeathsig KILL --                 # PR_SET_PDEATHSIG: die with the spawner thread / this process
///   /bin/sh -c SCRIPT resh-domain OUT ERR N CGROUP_PROCS_1..N
///                                             # stdin &lt; /dev/null, stdout &gt;&gt; OUT, stderr &gt;&gt; ERR,
///                                             # echo $$ into each cgroup.procs (joins before the service runs)
///     setsid --                               # new session + process group, id = pid (execs: caller is no group leader)
///       PROGRAM ARGS...                       # the service, with the same pid
/// </code>
/// The only processes that ever run outside the cgroup are setpriv and the shell, for the moment before the
/// shell writes its pid; neither forks. The pdeathsig is lost only if the parent dies between the fork and
/// setpriv's prctl (microseconds, and only during a spawn).
/// </summary>
internal static class LaunchChain
{
    /// <summary>$1 = stdout file, $2 = stderr file, $3 = number of cgroup.procs files that follow, then the command.</summary>
    internal const string Script =
        "exec </dev/null >>\"$1\" 2>>\"$2\" || exit 125; n=$3; shift 3; " +
        "while [ \"$n\" -gt 0 ]; do echo $$ >\"$1\" || exit 125; n=$((n-1)); shift; done; " +
        "exec \"$@\"";

    /// <summary>Exit code of the chain when redirecting output or joining a cgroup failed.</summary>
    internal const int SetupFailedExitCode = 125;

    internal static List<string> Build(
        LaunchTools tools,
        IReadOnlyList<string> cgroupProcsFiles,
        string stdoutFile,
        string stderrFile,
        string program,
        IEnumerable<string> arguments)
    {
        var argv = new List<string>();
        if (tools.Setpriv is { } setpriv)
        {
            argv.AddRange([setpriv, "--pdeathsig", "KILL", "--"]);
        }

        argv.AddRange([tools.Shell, "-c", Script, "resh-domain", stdoutFile, stderrFile, cgroupProcsFiles.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        argv.AddRange(cgroupProcsFiles);
        if (tools.Setsid is { } setsid)
        {
            argv.AddRange([setsid, "--"]);
        }

        argv.Add(program);
        argv.AddRange(arguments);
        return argv;
    }
}

/// <summary>PATH lookup done before spawning, so a missing program is reported clearly.</summary>
internal static class ExecutableResolver
{
    private static readonly string[] SystemDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>
    /// The full path of <paramref name="program"/>: a name containing '/' is taken as a path (relative to the
    /// current directory), otherwise it is looked up in <paramref name="searchPath"/> (colon-separated).
    /// </summary>
    internal static string? Find(string program, string? searchPath)
    {
        if (program.Length == 0)
        {
            return null;
        }

        if (program.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.GetFullPath(program);
            return IsExecutable(full) ? full : null;
        }

        foreach (var dir in (searchPath ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Path.IsPathRooted(dir))
            {
                continue;
            }

            var candidate = Path.Combine(dir, program);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Like <see cref="Find"/> on this process's PATH, then the usual system directories.</summary>
    internal static string? FindTool(string name) =>
        Find(name, Environment.GetEnvironmentVariable("PATH")) ?? Find(name, string.Join(':', SystemDirectories));

    private static bool IsExecutable(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return false;
            }

            if (OperatingSystem.IsWindows())
            {
                return true;
            }

            const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            return (File.GetUnixFileMode(path) & anyExecute) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
