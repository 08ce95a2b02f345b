using System.Globalization;

namespace Resh.Domains;

/// <summary>One line of /proc/&lt;pid&gt;/stat, the fields domains use.</summary>
internal readonly record struct ProcStat(
    int Pid,
    char State,
    int ParentPid,
    int ProcessGroup,
    int Session,
    long UserTicks,
    long SystemTicks,
    long ChildUserTicks,
    long ChildSystemTicks)
{
    /// <summary>Own CPU plus that of waited-for children, in clock ticks.</summary>
    public long TotalTicks => UserTicks + SystemTicks + ChildUserTicks + ChildSystemTicks;

    public bool IsDead => State is 'Z' or 'X' or 'x';

    public bool IsStopped => State is 'T' or 't';
}

/// <summary>Reads /proc. Every method tolerates processes vanishing while it reads.</summary>
internal static class ProcFs
{
    internal static bool TryReadStat(int pid, out ProcStat stat)
    {
        stat = default;
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return TryParseStat(text, out stat);
    }

    /// <summary>Parses the stat line; the command name in parentheses may itself contain spaces or ')'.</summary>
    internal static bool TryParseStat(string text, out ProcStat stat)
    {
        stat = default;
        var open = text.IndexOf('(', StringComparison.Ordinal);
        var close = text.LastIndexOf(')');
        if (open <= 0 || close < open || close + 2 >= text.Length)
        {
            return false;
        }

        if (!int.TryParse(text.AsSpan(0, open).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
        {
            return false;
        }

        // Fields after the name, numbered as in proc(5): [0] = field 3 (state).
        var rest = text.AsSpan(close + 2);
        Span<Range> parts = stackalloc Range[16];
        var count = rest.Split(parts, ' ', StringSplitOptions.RemoveEmptyEntries);
        if (count < 15)
        {
            return false;
        }

        var state = rest[parts[0]];
        if (state.Length != 1)
        {
            return false;
        }

        if (!TryInt(rest[parts[1]], out var ppid)
            || !TryInt(rest[parts[2]], out var pgrp)
            || !TryInt(rest[parts[3]], out var session)
            || !TryLong(rest[parts[11]], out var utime)
            || !TryLong(rest[parts[12]], out var stime)
            || !TryLong(rest[parts[13]], out var cutime)
            || !TryLong(rest[parts[14]], out var cstime))
        {
            return false;
        }

        stat = new ProcStat(pid, state[0], ppid, pgrp, session, utime, stime, cutime, cstime);
        return true;
    }

    /// <summary>Every process visible in /proc.</summary>
    internal static List<ProcStat> ReadAll()
    {
        var result = new List<ProcStat>();
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateDirectories("/proc");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return result;
        }

        foreach (var dir in entries)
        {
            var name = Path.GetFileName(dir.AsSpan());
            if (name.Length == 0 || !char.IsAsciiDigit(name[0]) || !int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            if (TryReadStat(pid, out var stat))
            {
                result.Add(stat);
            }
        }

        return result;
    }

    /// <summary>
    /// The live process tree of a domain: <paramref name="rootPid"/>, its descendants (by parent pid), and every
    /// process of session <paramref name="session"/> (which catches descendants re-parented to init). Dead
    /// (zombie) entries are excluded.
    /// </summary>
    internal static List<ProcStat> Tree(int rootPid, int? session)
    {
        var all = ReadAll();
        var byParent = new Dictionary<int, List<ProcStat>>();
        var selected = new Dictionary<int, ProcStat>();
        foreach (var p in all)
        {
            if (!byParent.TryGetValue(p.ParentPid, out var children))
            {
                children = [];
                byParent[p.ParentPid] = children;
            }

            children.Add(p);
            if (p.Pid == rootPid || (session is { } s && s > 0 && p.Session == s))
            {
                selected[p.Pid] = p;
            }
        }

        var queue = new Queue<int>(selected.Keys);
        while (queue.Count > 0)
        {
            var parent = queue.Dequeue();
            if (!byParent.TryGetValue(parent, out var children))
            {
                continue;
            }

            foreach (var child in children)
            {
                if (selected.TryAdd(child.Pid, child))
                {
                    queue.Enqueue(child.Pid);
                }
            }
        }

        return selected.Values.Where(p => !p.IsDead).ToList();
    }

    /// <summary>Socket inodes of the TCP listeners on <paramref name="port"/> (IPv4 and IPv6, any address) in this network namespace.</summary>
    internal static HashSet<long> ListenerInodes(int port)
    {
        var inodes = new HashSet<long>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(table);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...", ports in hex.
            foreach (var line in lines.Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length > 9 && fields[3] == "0A"
                    && fields[1].LastIndexOf(':') is var colon and > 0
                    && int.TryParse(fields[1].AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var local) && local == port
                    && long.TryParse(fields[9], NumberStyles.None, CultureInfo.InvariantCulture, out var inode) && inode != 0)
                {
                    inodes.Add(inode);
                }
            }
        }

        return inodes;
    }

    /// <summary>True when process <paramref name="pid"/> holds one of the sockets <paramref name="inodes"/> among its open files.</summary>
    internal static bool HoldsSocket(int pid, IReadOnlySet<long> inodes)
    {
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd"))
            {
                var target = new FileInfo(fd).LinkTarget;
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && target.EndsWith(']')
                    && long.TryParse(target.AsSpan(8, target.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var inode) && inodes.Contains(inode))
                {
                    return true;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The process ended meanwhile, or its descriptors are not ours to read.
        }

        return false;
    }

    /// <summary>True while the process exists and is not a zombie.</summary>
    internal static bool IsAlive(int pid) => TryReadStat(pid, out var stat) && !stat.IsDead;

    private static bool TryInt(ReadOnlySpan<char> s, out int value) =>
        int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    private static bool TryLong(ReadOnlySpan<char> s, out long value) =>
        long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
}
