using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Resh.Native;

namespace Resh.Checkpoints;

/// <summary>
/// The single-writer lock of a store: flock(2) LOCK_EX on the store's <c>lock</c> file. The kernel
/// drops the lock when the holding process dies, however it dies (SIGKILL included), so a crashed
/// writer never leaves a stale lock behind. The holder writes its pid into the file, for messages only.
/// </summary>
internal sealed class StoreLock : IDisposable
{
    private int _fd;

    private StoreLock(int fd) => _fd = fd;

    public static StoreLock Acquire(string storePath, string lockPath)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The checkpoint store's writer lock needs Linux flock(2).");
        }

        var fd = Libc.OpenOrCreate(lockPath);
        if (Libc.Flock(fd, Libc.LockExclusive | Libc.LockNonBlocking) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var holder = ReadHolder(fd);
            _ = Libc.Close(fd);
            if (errno == Libc.ErrorWouldBlock)
            {
                throw new StoreLockedException(storePath, holder);
            }

            throw new IOException($"flock({lockPath}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        var pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        _ = Libc.Ftruncate(fd, 0);
        Libc.WriteAt(fd, pid, 0);
        return new StoreLock(fd);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Ftruncate(fd, 0);
            _ = Libc.Flock(fd, Libc.LockUnlock);
            _ = Libc.Close(fd);
        }
    }

    private static int? ReadHolder(int fd)
    {
        Span<byte> buffer = stackalloc byte[32];
        var n = Libc.ReadAt(fd, buffer, 0);
        var text = Encoding.ASCII.GetString(buffer[..n]).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
    }
}
