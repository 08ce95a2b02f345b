using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Resh.Domains;

/// <summary>
/// Cleans up after the factory's process if it dies without disposing (e.g. SIGKILL): a small shell in its own
/// session reads this process through a pipe; at end of file it kills every registered domain process group
/// and every process in the run's cgroups, then removes those cgroup directories.
/// </summary>
/// <remarks>
/// PR_SET_PDEATHSIG only reaches each domain's main process; this reaches what the services forked (and what
/// re-parented away to init). The pipe's write end is close-on-exec in this process, so no domain holds it open.
/// </remarks>
internal sealed class Watchdog : IDisposable
{
    /// <summary>$@ = run cgroup directories. Lines on stdin: "+PGID" registers a process group, "-PGID" forgets it.</summary>
    internal const string Script =
        """
        trap '' HUP INT TERM PIPE
        exec >/dev/null 2>&1
        groups=""
        while IFS= read -r line; do
          case "$line" in
            +*) groups="$groups ${line#+}" ;;
            -*) g="${line#-}"; kept=""; for x in $groups; do [ "$x" = "$g" ] || kept="$kept $x"; done; groups="$kept" ;;
          esac
        done
        for g in $groups; do kill -9 "-$g"; done
        i=0
        while [ "$i" -lt 100 ]; do
          left=0
          for run in "$@"; do
            for dir in "$run"/*/; do
              [ -d "$dir" ] || continue
              for p in $(cat "$dir/cgroup.procs"); do kill -9 "$p"; left=1; done
              [ -f "$dir/cgroup.kill" ] && echo 1 >"$dir/cgroup.kill"
              [ -f "$dir/freezer.state" ] && echo THAWED >"$dir/freezer.state"
              [ -f "$dir/cgroup.freeze" ] && echo 0 >"$dir/cgroup.freeze"
              rmdir "$dir" || left=1
            done
          done
          [ "$left" = 0 ] && break
          i=$((i+1))
          sleep 0.05
        done
        for run in "$@"; do rmdir "$run"; done
        exit 0
        """;

    private readonly Process _process;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private bool _broken;
    private bool _disposed;

    private Watchdog(Process process, ILogger logger)
    {
        _process = process;
        _logger = logger;
    }

    public int Pid => _process.Id;

    public static Watchdog? TryStart(Spawner spawner, LaunchTools tools, IReadOnlyList<string> runDirectories, ILogger logger)
    {
        var argv = new List<string>();
        if (tools.Setsid is { } setsid)
        {
            argv.AddRange([setsid, "--"]);
        }

        argv.AddRange([tools.Shell, "-c", Script, "resh-watchdog"]);
        argv.AddRange(runDirectories);
        var startInfo = new ProcessStartInfo(argv[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            WorkingDirectory = "/",
        };
        foreach (var arg in argv.Skip(1))
        {
            startInfo.ArgumentList.Add(arg);
        }

        try
        {
            var process = spawner.StartAsync(startInfo).GetAwaiter().GetResult();
            process.StandardInput.AutoFlush = true;
            return new Watchdog(process, logger);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            DomainLog.WatchdogUnavailable(logger, e.Message);
            return null;
        }
    }

    public void Register(int processGroup) => Send("+" + processGroup.ToString(CultureInfo.InvariantCulture));

    public void Unregister(int processGroup) => Send("-" + processGroup.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// Closes the pipe, exactly what the death of this process does: the watchdog kills what is still
    /// registered or in the run's cgroups, removes the directories and exits.
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            try
            {
                _process.StandardInput.Close();
            }
            catch (IOException)
            {
            }

            _broken = true;
        }

        _process.WaitForExit(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    private void Send(string line)
    {
        lock (_gate)
        {
            if (_broken)
            {
                return;
            }

            try
            {
                _process.StandardInput.WriteLine(line);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                _broken = true;
                DomainLog.WatchdogUnavailable(_logger, e.Message);
            }
        }
    }
}
