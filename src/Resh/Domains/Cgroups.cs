// Over 400 lines: cgroup v1 and v2 for the same four controls (freeze, CPU time, memory, process placement), with the fallbacks each needs side by side.
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Resh.Native;

namespace Resh.Domains;

/// <summary>Small, failure-tolerant file operations on cgroup control files.</summary>
internal static class CgroupFile
{
    internal static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Writes to an existing control file (never creates one); throws on failure.</summary>
    internal static void Write(string path, string text)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        stream.Write(Encoding.ASCII.GetBytes(text));
    }

    internal static bool TryWrite(string path, string text)
    {
        try
        {
            Write(path, text);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The pids listed in a cgroup.procs file (empty when unreadable).</summary>
    internal static List<int> ReadPids(string procsFile)
    {
        var result = new List<int>();
        var text = TryRead(procsFile);
        if (text is null)
        {
            return result;
        }

        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (int.TryParse(line.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0)
            {
                result.Add(pid);
            }
        }

        return result;
    }

    /// <summary>The value of "key value" line <paramref name="key"/> in a flat-keyed file such as cpu.stat or cgroup.events.</summary>
    internal static long? ReadKeyed(string path, string key)
    {
        var text = TryRead(path);
        if (text is null)
        {
            return null;
        }

        foreach (var line in text.AsSpan().EnumerateLines())
        {
            var space = line.IndexOf(' ');
            if (space > 0 && line[..space].SequenceEqual(key)
                && long.TryParse(line[(space + 1)..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>rmdir of a cgroup directory (never recursive: a cgroup only goes away when empty).</summary>
    internal static bool TryRemoveDirectory(string path, out string? error)
    {
        error = null;
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: false);
            }

            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return false;
        }
    }
}

/// <summary>One domain's cgroup(s): what pause/resume, kill and accounting act on.</summary>
internal abstract class CgroupGroup
{
    /// <summary>The directories created for the domain (one per v1 controller, one for v2).</summary>
    public abstract IReadOnlyList<string> Directories { get; }

    /// <summary>The cgroup.procs files a new process writes its pid to.</summary>
    public IReadOnlyList<string> ProcsFiles => Directories.Select(d => Path.Combine(d, "cgroup.procs")).ToList();

    public abstract List<int> Pids();

    public bool Contains(int pid) => Directories.All(d => CgroupFile.ReadPids(Path.Combine(d, "cgroup.procs")).Contains(pid));

    /// <summary>Requests freezing; <see cref="IsFrozen"/> tells when it is complete. May be called again to retry.</summary>
    public abstract void RequestFreeze();

    public abstract bool IsFrozen();

    public abstract void Thaw();

    /// <summary>SIGKILL to every process in the group, then thaw (frozen v1 tasks die only once thawed).</summary>
    public abstract void KillAll();

    public abstract TimeSpan? ReadCpu();

    public abstract bool IsEmpty();

    /// <summary>Removes the directories; false (with the reason) while processes remain or on error.</summary>
    public bool TryRemove(out string? error)
    {
        error = null;
        var ok = true;
        foreach (var dir in Directories)
        {
            if (!CgroupFile.TryRemoveDirectory(dir, out var e))
            {
                ok = false;
                error = $"{dir}: {e}";
            }
        }

        return ok;
    }

    protected static void KillPids(IEnumerable<int> pids)
    {
        foreach (var pid in pids)
        {
            Libc.Signal(pid, Libc.SigKill);
        }
    }
}

internal sealed class CgroupV1Group(string freezerDir, string cpuacctDir) : CgroupGroup
{
    public override IReadOnlyList<string> Directories { get; } = [freezerDir, cpuacctDir];

    private string FreezerState => Path.Combine(freezerDir, "freezer.state");

    public override List<int> Pids() =>
        CgroupFile.ReadPids(Path.Combine(freezerDir, "cgroup.procs"))
            .Union(CgroupFile.ReadPids(Path.Combine(cpuacctDir, "cgroup.procs")))
            .ToList();

    public override void RequestFreeze() => CgroupFile.Write(FreezerState, "FROZEN");

    public override bool IsFrozen() => CgroupFile.TryRead(FreezerState)?.Trim() == "FROZEN";

    public override void Thaw() => CgroupFile.TryWrite(FreezerState, "THAWED");

    public override void KillAll()
    {
        // A frozen cgroup cannot fork, so after the first pass only tasks forked between the read and the
        // thaw can remain; a second pass after the thaw catches those.
        for (var pass = 0; pass < 3; pass++)
        {
            var pids = Pids();
            KillPids(pids);
            Thaw();
            if (pids.Count == 0)
            {
                break;
            }
        }
    }

    public override TimeSpan? ReadCpu()
    {
        var text = CgroupFile.TryRead(Path.Combine(cpuacctDir, "cpuacct.usage"));
        return text is not null && long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ns)
            ? TimeSpan.FromTicks(ns / 100)
            : null;
    }

    public override bool IsEmpty() => Pids().Count == 0;
}

internal sealed class CgroupV2Group(string dir) : CgroupGroup
{
    public override IReadOnlyList<string> Directories { get; } = [dir];

    private string Events => Path.Combine(dir, "cgroup.events");

    public override List<int> Pids() => CgroupFile.ReadPids(Path.Combine(dir, "cgroup.procs"));

    public override void RequestFreeze() => CgroupFile.Write(Path.Combine(dir, "cgroup.freeze"), "1");

    public override bool IsFrozen() => CgroupFile.ReadKeyed(Events, "frozen") == 1;

    public override void Thaw() => CgroupFile.TryWrite(Path.Combine(dir, "cgroup.freeze"), "0");

    public override void KillAll()
    {
        var killFile = Path.Combine(dir, "cgroup.kill");
        if (File.Exists(killFile))
        {
            CgroupFile.TryWrite(killFile, "1");
        }

        for (var pass = 0; pass < 3; pass++)
        {
            var pids = Pids();
            KillPids(pids);
            Thaw();
            if (pids.Count == 0)
            {
                break;
            }
        }
    }

    public override TimeSpan? ReadCpu() =>
        CgroupFile.ReadKeyed(Path.Combine(dir, "cpu.stat"), "usage_usec") is { } usec ? TimeSpan.FromMicroseconds(usec) : null;

    public override bool IsEmpty() => CgroupFile.ReadKeyed(Events, "populated") is { } populated ? populated == 0 : Pids().Count == 0;
}

/// <summary>The per-run cgroup parent(s): resh/&lt;runId&gt; in each hierarchy used.</summary>
internal abstract class CgroupRun
{
    /// <summary>Run ids currently owned by factories of this process (protects them from the stale sweep).</summary>
    private static readonly ConcurrentDictionary<string, byte> LiveRunIds = new(StringComparer.Ordinal);

    private readonly object _namesGate = new();
    private readonly HashSet<string> _usedNames = new(StringComparer.Ordinal);

    protected CgroupRun(string runId, IReadOnlyList<string> reshDirectories)
    {
        RunId = runId;
        ReshDirectories = reshDirectories;
        RunDirectories = reshDirectories.Select(d => Path.Combine(d, runId)).ToList();
        LiveRunIds[runId] = 0;
    }

    public abstract string Isolation { get; }

    public string RunId { get; }

    /// <summary>The resh/ directories (one per hierarchy used) under which run directories live.</summary>
    public IReadOnlyList<string> ReshDirectories { get; }

    public IReadOnlyList<string> RunDirectories { get; }

    /// <summary>Creates the cgroup(s) of one domain, named after its id (made unique within the run).</summary>
    public CgroupGroup CreateGroup(string domainId)
    {
        var baseName = SanitizeName(domainId);
        lock (_namesGate)
        {
            for (var n = 1; ; n++)
            {
                var name = n == 1 ? baseName : $"{baseName}-{n.ToString(CultureInfo.InvariantCulture)}";
                if (_usedNames.Contains(name) || RunDirectories.Any(d => Directory.Exists(Path.Combine(d, name))))
                {
                    continue;
                }

                var dirs = RunDirectories.Select(d => Path.Combine(d, name)).ToList();
                foreach (var dir in dirs)
                {
                    Directory.CreateDirectory(dir);
                }

                _usedNames.Add(name);
                return CreateGroup(dirs);
            }
        }
    }

    protected abstract CgroupGroup CreateGroup(IReadOnlyList<string> directories);

    /// <summary>Removes the run directories (domain directories must be gone already).</summary>
    public void Remove(ILogger logger)
    {
        LiveRunIds.TryRemove(RunId, out _);
        foreach (var dir in RunDirectories)
        {
            if (!CgroupFile.TryRemoveDirectory(dir, out var error))
            {
                DomainLog.CgroupRemoveFailed(logger, dir, error ?? "unknown");
            }
        }
    }

    /// <summary>Run id in the format the stale sweep recognises: &lt;pid-namespace inode&gt;-&lt;pid&gt;-&lt;random&gt;.</summary>
    public static string NewRunId() =>
        $"{PidNamespace()}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4))}";

    /// <summary>
    /// Kills the processes left in, and removes, the cgroups of runs whose owner process is gone. Only run ids in
    /// the <see cref="NewRunId"/> format from our pid namespace are touched; an owner pid that is alive (or
    /// reused) keeps its run.
    /// </summary>
    public static void SweepStale(string reshDirectory, ILogger logger)
    {
        IEnumerable<string> runs;
        try
        {
            runs = Directory.Exists(reshDirectory) ? Directory.EnumerateDirectories(reshDirectory).ToList() : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        var ourNamespace = PidNamespace();
        foreach (var run in runs)
        {
            var name = Path.GetFileName(run);
            if (!TryParseRunId(name, out var ns, out var pid) || ns != ourNamespace || LiveRunIds.ContainsKey(name))
            {
                continue;
            }

            if (pid != Environment.ProcessId && ProcFs.IsAlive(pid))
            {
                continue;
            }

            var killed = 0;
            List<string> groups;
            try
            {
                groups = Directory.EnumerateDirectories(run).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            foreach (var group in groups)
            {
                killed += KillAndRemoveUnknownGroup(group);
            }

            DomainLog.StaleRunSwept(logger, run, killed);
            if (!CgroupFile.TryRemoveDirectory(run, out var error))
            {
                DomainLog.CgroupRemoveFailed(logger, run, error ?? "unknown");
            }
        }
    }

    internal static bool TryParseRunId(string name, out string pidNamespace, out int pid)
    {
        pidNamespace = "";
        pid = 0;
        var parts = name.Split('-');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[0].All(char.IsAsciiDigit)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out pid)
            || parts[2].Length == 0 || !parts[2].All(char.IsAsciiHexDigitLower))
        {
            return false;
        }

        pidNamespace = parts[0];
        return true;
    }

    private static int KillAndRemoveUnknownGroup(string group)
    {
        var procs = Path.Combine(group, "cgroup.procs");
        var killFile = Path.Combine(group, "cgroup.kill");
        if (File.Exists(killFile))
        {
            CgroupFile.TryWrite(killFile, "1");
        }

        var killed = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(3);
        while (true)
        {
            var pids = CgroupFile.ReadPids(procs);
            foreach (var pid in pids)
            {
                if (Libc.Signal(pid, Libc.SigKill))
                {
                    killed++;
                }
            }

            if (File.Exists(Path.Combine(group, "freezer.state")))
            {
                CgroupFile.TryWrite(Path.Combine(group, "freezer.state"), "THAWED");
            }

            if (File.Exists(Path.Combine(group, "cgroup.freeze")))
            {
                CgroupFile.TryWrite(Path.Combine(group, "cgroup.freeze"), "0");
            }

            if ((pids.Count == 0 && CgroupFile.TryRemoveDirectory(group, out _)) || DateTime.UtcNow > deadline)
            {
                return killed;
            }

            Thread.Sleep(10);
        }
    }

    private static string PidNamespace()
    {
        try
        {
            // "pid:[4026531836]"
            var target = new FileInfo("/proc/self/ns/pid").LinkTarget ?? "";
            var digits = new string(target.Where(char.IsAsciiDigit).ToArray());
            return digits.Length > 0 ? digits : "0";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "0";
        }
    }

    private static string SanitizeName(string id)
    {
        var chars = id.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_').ToArray();
        var name = new string(chars);

        // Avoid names of control files ("tasks", "cgroup.procs", ...) and empty names.
        return name.Length == 0 || !char.IsAsciiLetterOrDigit(name[0]) || name is "tasks" or "notify_on_release" ? "d" + name : name;
    }
}

internal sealed class CgroupV1Run : CgroupRun
{
    private static readonly string[] Controllers = ["freezer", "cpuacct"];

    private CgroupV1Run(string runId, IReadOnlyList<string> reshDirectories)
        : base(runId, reshDirectories)
    {
    }

    public override string Isolation => "cgroup-v1";

    protected override CgroupGroup CreateGroup(IReadOnlyList<string> directories) => new CgroupV1Group(directories[0], directories[1]);

    /// <summary>The resh/ directories of the v1 freezer and cpuacct hierarchies under <paramref name="root"/>.</summary>
    public static IReadOnlyList<string> ReshDirectoriesUnder(string root) => Controllers.Select(c => Path.Combine(root, c, "resh")).ToList();

    public static CgroupV1Run? TryCreate(string root, string runId, out string reason)
    {
        var reshDirs = ReshDirectoriesUnder(root);
        var created = new List<string>();
        try
        {
            for (var i = 0; i < Controllers.Length; i++)
            {
                var hierarchy = Path.Combine(root, Controllers[i]);
                if (!File.Exists(Path.Combine(hierarchy, "cgroup.procs")))
                {
                    reason = $"{hierarchy} is not a mounted cgroup v1 hierarchy";
                    Undo(created);
                    return null;
                }

                var runDir = Path.Combine(reshDirs[i], runId);
                Directory.CreateDirectory(runDir);
                created.Add(runDir);
                var probe = Controllers[i] == "freezer" ? "freezer.state" : "cpuacct.usage";
                if (!File.Exists(Path.Combine(runDir, probe)))
                {
                    reason = $"{runDir} has no {probe}";
                    Undo(created);
                    return null;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = e.Message;
            Undo(created);
            return null;
        }

        reason = "";
        return new CgroupV1Run(runId, reshDirs);
    }

    private static void Undo(List<string> created)
    {
        foreach (var dir in created)
        {
            CgroupFile.TryRemoveDirectory(dir, out _);
        }
    }
}

internal sealed class CgroupV2Run : CgroupRun
{
    private static readonly string[] WantedControllers = ["cpu", "memory", "pids"];

    private CgroupV2Run(string runId, string reshDirectory)
        : base(runId, [reshDirectory])
    {
    }

    public override string Isolation => "cgroup-v2";

    protected override CgroupGroup CreateGroup(IReadOnlyList<string> directories) => new CgroupV2Group(directories[0]);

    public static bool IsV2Root(string path) => File.Exists(Path.Combine(path, "cgroup.controllers"));

    public static CgroupV2Run? TryCreate(string v2Root, string runId, out string reason)
    {
        if (!IsV2Root(v2Root))
        {
            reason = $"{v2Root} is not a cgroup v2 mount";
            return null;
        }

        var reshDir = Path.Combine(v2Root, "resh");
        var runDir = Path.Combine(reshDir, runId);
        try
        {
            Directory.CreateDirectory(runDir);
            if (!File.Exists(Path.Combine(runDir, "cgroup.freeze")))
            {
                reason = $"{runDir} has no cgroup.freeze (kernel older than 5.2?)";
                CgroupFile.TryRemoveDirectory(runDir, out _);
                return null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = e.Message;
            return null;
        }

        // Not needed for freeze/kill/cpu.stat (core files), but lets limits be set on domain cgroups later.
        // Best effort, never on the root (whose settings are the system's). Neither resh/ nor the run
        // directory holds processes, so enabling controllers there is allowed.
        EnableControllers(reshDir);
        EnableControllers(runDir);
        reason = "";
        return new CgroupV2Run(runId, reshDir);
    }

    private static void EnableControllers(string dir)
    {
        var available = (CgroupFile.TryRead(Path.Combine(dir, "cgroup.controllers")) ?? "")
            .Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var controller in WantedControllers.Intersect(available))
        {
            CgroupFile.TryWrite(Path.Combine(dir, "cgroup.subtree_control"), "+" + controller);
        }
    }
}
