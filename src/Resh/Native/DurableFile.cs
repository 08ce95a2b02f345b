namespace Resh.Native;

/// <summary>
/// The file system calls that make a small file durable, in the order that matters: the new content written and
/// fsynced under a temporary name, renamed over the old file, and the directory fsynced so the rename survives a
/// power loss. A test substitutes a recording or failing implementation to check the calls and their order.
/// </summary>
public interface IDurableFileCalls
{
    /// <summary>Creates (or truncates) <paramref name="path"/>, writes <paramref name="content"/> and fsyncs it.</summary>
    void WriteAndSync(string path, ReadOnlySpan<byte> content);

    /// <summary>Atomically replaces <paramref name="to"/> with <paramref name="from"/>.</summary>
    void Rename(string from, string to);

    /// <summary>Makes the directory's entries durable.</summary>
    void SyncDirectory(string directory);
}

/// <summary>Small files whose loss breaks a guarantee (a Remus term): replaced atomically and durably.</summary>
public static class DurableFile
{
    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/>: after a crash it holds the old content or the new, never a mix or nothing.</summary>
    public static void Replace(string path, ReadOnlySpan<byte> content, IDurableFileCalls? calls = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        calls ??= SystemCalls.Instance;
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temp = full + ".tmp";
        calls.WriteAndSync(temp, content);
        calls.Rename(temp, full);
        calls.SyncDirectory(directory);
    }

    /// <summary>The real calls.</summary>
    public sealed class SystemCalls : IDurableFileCalls
    {
        public static SystemCalls Instance { get; } = new();

        public void WriteAndSync(string path, ReadOnlySpan<byte> content)
        {
            using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
            file.Write(content);
            file.Flush(flushToDisk: true);
        }

        public void Rename(string from, string to) => File.Move(from, to, overwrite: true);

        public void SyncDirectory(string directory) => Libc.FsyncDirectory(directory);
    }
}
