using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

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

        var fd = NativeMethods.OpenOrCreate(lockPath);
        if (NativeMethods.Flock(fd, NativeMethods.LockExclusive | NativeMethods.LockNonBlocking) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var holder = ReadHolder(fd);
            _ = NativeMethods.Close(fd);
            if (errno == NativeMethods.ErrorWouldBlock)
            {
                throw new StoreLockedException(storePath, holder);
            }

            throw new IOException($"flock({lockPath}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        var pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        _ = NativeMethods.Ftruncate(fd, 0);
        NativeMethods.WriteAt(fd, pid, 0);
        return new StoreLock(fd);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = NativeMethods.Ftruncate(fd, 0);
            _ = NativeMethods.Flock(fd, NativeMethods.LockUnlock);
            _ = NativeMethods.Close(fd);
        }
    }

    private static int? ReadHolder(int fd)
    {
        Span<byte> buffer = stackalloc byte[32];
        var n = NativeMethods.ReadAt(fd, buffer, 0);
        var text = Encoding.ASCII.GetString(buffer[..n]).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
    }
}
