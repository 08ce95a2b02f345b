using System.Runtime.InteropServices;

namespace Resh.Native;

/// <summary>
/// Every libc call of Resh, in one place. Linux only. Processes (domains): kill(2), sysconf(3), gettid(2). Files (the
/// checkpoint store, the ordered log on disk, checkpoint capture): directory fsync, flock(2), statx(2), pread/pwrite
/// on raw descriptors, link(2); .NET exposes none of these.
/// </summary>
internal static partial class Libc
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

    public const int LockExclusive = 2;
    public const int LockNonBlocking = 4;
    public const int LockUnlock = 8;
    public const int ErrorWouldBlock = 11;

    private const int OpenReadOnly = 0;
    private const int OpenReadWrite = 2;
    private const int OpenCreate = 0x40;
    private const int OpenCloseOnExec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28;
    private const int StatxBufferSize = 256;

    // O_DIRECTORY differs between architectures; these are the Linux values.
    private static int OpenDirectory => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    /// <summary>link(2): a hard link; 0 on success.</summary>
    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Link(string existing, string created);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static unsafe partial nint Pwrite(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static unsafe partial nint Pread(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Makes the entries of <paramref name="directory"/> (creations, renames, deletions) durable.</summary>
    public static void FsyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(directory, OpenReadOnly | OpenDirectory | OpenCloseOnExec, 0);
        if (fd < 0)
        {
            throw Failure("open", directory);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw Failure("fsync", directory);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Opens (creating it) a file for reading and writing; the descriptor is not inherited by children.</summary>
    public static int OpenOrCreate(string path)
    {
        var fd = Open(path, OpenReadWrite | OpenCreate | OpenCloseOnExec, Convert.ToInt32("644", 8));
        return fd >= 0 ? fd : throw Failure("open", path);
    }

    public static unsafe void WriteAt(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            _ = Pwrite(fd, p, (nuint)data.Length, offset);
        }
    }

    public static unsafe int ReadAt(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            var n = Pread(fd, p, (nuint)buffer.Length, offset);
            return n < 0 ? 0 : (int)n;
        }
    }

    /// <summary>The kind of entry at <paramref name="path"/>, without following a symbolic link; null when it cannot be told.</summary>
    public static unsafe UnixFileKind? GetKind(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var buffer = stackalloc byte[StatxBufferSize];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return null;
        }

        var mode = *(ushort*)(buffer + StatxModeOffset);
        return (mode & 0xF000) switch
        {
            0x8000 => UnixFileKind.Regular,
            0x4000 => UnixFileKind.Directory,
            0xA000 => UnixFileKind.SymbolicLink,
            _ => UnixFileKind.Other,
        };
    }

    public static IOException Failure(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call}({path}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }
}

internal enum UnixFileKind
{
    Regular,
    Directory,
    SymbolicLink,
    Other,
}
