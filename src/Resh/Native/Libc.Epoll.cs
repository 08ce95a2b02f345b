using System.Runtime.InteropServices;

namespace Resh.Native;

/// <summary>
/// The read loop's calls (<see cref="Ordering.SocketReadLoop"/>): epoll(7), eventfd(2) and recv(2) on a socket's
/// descriptor. .NET's sockets run their own epoll loop, which reads each socket until it would block (a second recv per
/// request) and cannot end a batch of ready sockets with one flush; these let the gateway read its sockets the way
/// redis-server reads its clients.
/// </summary>
internal static partial class Libc
{
    internal const int EpollIn = 0x001;
    internal const int EpollRdHup = 0x2000;
    private const int EpollCtlAdd = 1;
    private const int EpollCtlDel = 2;
    private const int EpollCloExec = 0x80000;
    private const int EfdCloExec = 0x80000;
    private const int EfdNonBlock = 0x800;
    private const int MsgDontWait = 0x40;
    internal const int ErrorInterrupted = 4;

    /// <summary>
    /// struct epoll_event: a 32-bit event mask and 64 bits of data, packed on x86-64 (12 bytes), naturally aligned
    /// elsewhere (16 bytes).
    /// </summary>
    internal static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    private static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreateNative(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static unsafe partial int EpollCtlNative(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWaitNative(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdNative(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint RecvNative(nint fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteNative(int fd, byte* buffer, nuint length);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint ReadNative(int fd, byte* buffer, nuint length);

    /// <summary>A new epoll instance (close-on-exec); throws <see cref="IOException"/> when the kernel refuses one.</summary>
    internal static int EpollCreate()
    {
        var fd = EpollCreateNative(EpollCloExec);
        return fd >= 0 ? fd : throw new IOException($"epoll_create1 failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Adds <paramref name="fd"/> to the epoll set with <paramref name="events"/> (level-triggered) and <paramref name="data"/>; 0 or an errno.</summary>
    internal static unsafe int EpollAdd(int epfd, nint fd, int events, ulong data)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = (uint)events;
        *(ulong*)(ev + EpollDataOffset) = data;
        return EpollCtlNative(epfd, EpollCtlAdd, (int)fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Removes <paramref name="fd"/> from the epoll set; 0 or an errno.</summary>
    internal static unsafe int EpollDelete(int epfd, nint fd)
    {
        var ev = stackalloc byte[16];
        return EpollCtlNative(epfd, EpollCtlDel, (int)fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Waits for ready descriptors; the count, or -errno (-EINTR when a signal interrupted the wait).</summary>
    internal static unsafe int EpollWait(int epfd, Span<byte> events, int timeoutMilliseconds)
    {
        fixed (byte* p = events)
        {
            var n = EpollWaitNative(epfd, p, events.Length / EpollEventSize, timeoutMilliseconds);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>The event mask and data of the <paramref name="index"/>th event that <see cref="EpollWait"/> filled in.</summary>
    internal static (int Events, ulong Data) EpollEvent(ReadOnlySpan<byte> events, int index)
    {
        var at = events[(index * EpollEventSize)..];
        return ((int)MemoryMarshal.Read<uint>(at), MemoryMarshal.Read<ulong>(at[EpollDataOffset..]));
    }

    /// <summary>A non-blocking eventfd (close-on-exec), to wake an epoll wait from another thread.</summary>
    internal static int EventFd()
    {
        var fd = EventFdNative(0, EfdCloExec | EfdNonBlock);
        return fd >= 0 ? fd : throw new IOException($"eventfd failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>Adds one to an eventfd's counter (wakes its epoll waiter).</summary>
    internal static unsafe void EventFdSignal(int fd)
    {
        ulong one = 1;
        _ = WriteNative(fd, (byte*)&one, 8);
    }

    /// <summary>Reads and clears an eventfd's counter.</summary>
    internal static unsafe void EventFdClear(int fd)
    {
        ulong value;
        _ = ReadNative(fd, (byte*)&value, 8);
    }

    /// <summary>recv(2) without blocking: bytes read, 0 at the peer's end of stream, or -errno (-EAGAIN, <see cref="ErrorWouldBlock"/>: nothing there now).</summary>
    internal static unsafe int ReceiveNow(nint fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            var n = RecvNative(fd, p, (nuint)buffer.Length, MsgDontWait);
            return n >= 0 ? (int)n : -Marshal.GetLastPInvokeError();
        }
    }
}
