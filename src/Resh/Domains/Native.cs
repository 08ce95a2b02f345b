using System.Runtime.InteropServices;

namespace Resh.Domains;

/// <summary>The few libc calls domains need. Linux only.</summary>
internal static partial class Native
{
    internal const int SigKill = 9;
    internal const int SigCont = 18;
    internal const int SigStop = 19;

    private const int ScClkTck = 2;
    private const int Esrch = 3;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int sig);

    [LibraryImport("libc", EntryPoint = "sysconf", SetLastError = true)]
    private static partial nint SysConfNative(int name);

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTidNative();

    /// <summary>Sends <paramref name="sig"/>; returns false when the target does not exist (ESRCH) or on any other error.</summary>
    internal static bool Signal(int pid, int sig)
    {
        if (pid == 0 || pid == -1 || pid == Environment.ProcessId || pid == -Environment.ProcessId)
        {
            // 0 / -1 / our own id would hit ourselves or everything: never.
            return false;
        }

        return KillNative(pid, sig) == 0;
    }

    /// <summary>True when a process (or group, for negative ids) with that id exists, per kill(pid, 0).</summary>
    internal static bool Exists(int pid)
    {
        if (KillNative(pid, 0) == 0)
        {
            return true;
        }

        return Marshal.GetLastPInvokeError() != Esrch;
    }

    internal static int GetThreadId() => GetTidNative();

    /// <summary>Clock ticks per second for /proc/*/stat times (sysconf(_SC_CLK_TCK)); 100 when unknown.</summary>
    internal static long ClockTicksPerSecond { get; } = ReadClockTicks();

    private static long ReadClockTicks()
    {
        try
        {
            var ticks = (long)SysConfNative(ScClkTck);
            return ticks > 0 ? ticks : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }
}
