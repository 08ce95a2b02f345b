using System.Security.Cryptography;
using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

/// <summary>A scratch directory for one test, removed on dispose (read-only restored directories included).</summary>
internal sealed class StoreScratch : IDisposable
{
    public StoreScratch()
    {
        Root = Path.Combine(Path.GetTempPath(), "resh-store-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string Store => Path.Combine(Root, "store");

    /// <summary>A path under the scratch root (not created).</summary>
    public string PathOf(string name) => Path.Combine(Root, name);

    public string NewDirectory(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose()
    {
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(Root, "*", SearchOption.AllDirectories))
            {
                TestTrees.MakeWritable(dir);
            }

            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}

internal static class StoreTestOptions
{
    /// <summary>Tiny chunks and packs so small trees exercise many chunks, packs and pack boundaries.</summary>
    public static StoreOptions Small(IStoreFaults? faults = null, TimeProvider? clock = null) => new()
    {
        MinChunkSize = 1024,
        AverageChunkSize = 4096,
        MaxChunkSize = 16 * 1024,
        PackTargetSize = 64 * 1024,
        Faults = faults,
        Clock = clock ?? TimeProvider.System,
    };

    public static StoreOptions Reader() => new() { ReadOnly = true, CreateIfMissing = false };
}

/// <summary>Builds random directory trees and compares them.</summary>
internal static class TestTrees
{
    private static readonly DateTime BaseTime = new(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc);

    /// <summary>
    /// Nested directories (some empty, one read-only), empty files, many small files, a few larger
    /// ones, redundant text, various modes and sub-second mtimes, and symbolic links.
    /// </summary>
    public static void Random(string root, int seed, int files = 60, int largestFile = 300_000)
    {
        var random = new Random(seed);
        Directory.CreateDirectory(root);
        var dirs = new List<string> { root };
        for (var i = 0; i < 8; i++)
        {
            var parent = dirs[random.Next(dirs.Count)];
            var dir = Path.Combine(parent, $"dir{i}");
            Directory.CreateDirectory(dir);
            dirs.Add(dir);
        }

        int[] modes = [Convert.ToInt32("644", 8), Convert.ToInt32("600", 8), Convert.ToInt32("755", 8), Convert.ToInt32("400", 8), Convert.ToInt32("4755", 8)];
        for (var i = 0; i < files; i++)
        {
            var dir = dirs[random.Next(dirs.Count - 1)]; // the last directory stays empty
            var path = Path.Combine(dir, $"file{i}.dat");
            var size = (i % 10) switch
            {
                0 => 0,
                1 => random.Next(1, 16),
                9 => random.Next(largestFile / 2, largestFile),
                _ => random.Next(16, 20_000),
            };
            File.WriteAllBytes(path, i % 4 == 0 ? RedundantText(random, size) : RandomBytes(random, size));
            SetMode(new FileInfo(path), modes[random.Next(modes.Length)]);
            File.SetLastWriteTimeUtc(path, BaseTime.AddTicks(random.NextInt64(TimeSpan.TicksPerDay * 300)));
        }

        File.CreateSymbolicLink(Path.Combine(root, "link-to-file"), "dir0/../file0.dat");
        File.CreateSymbolicLink(Path.Combine(dirs[1], "dangling"), "/nonexistent/target");

        // Directory mtimes last (children change them), deepest first; one read-only directory.
        for (var i = dirs.Count - 1; i >= 1; i--)
        {
            Directory.SetLastWriteTimeUtc(dirs[i], BaseTime.AddTicks(random.NextInt64(TimeSpan.TicksPerDay * 300)));
        }

        SetMode(new DirectoryInfo(dirs[^2]), Convert.ToInt32("555", 8));
    }

    public static void SetMode(FileSystemInfo info, int mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            info.UnixFileMode = (UnixFileMode)mode;
        }
    }

    /// <summary>Lets the owner write into a (restored, possibly read-only) directory so it can be deleted.</summary>
    public static void MakeWritable(string directory)
    {
        if (!OperatingSystem.IsWindows())
        {
            var info = new DirectoryInfo(directory);
            info.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        }
    }

    public static byte[] RandomBytes(Random random, int size)
    {
        var data = new byte[size];
        random.NextBytes(data);
        return data;
    }

    /// <summary>AOF-like lines: compressible and full of repeats, like a service's log.</summary>
    public static byte[] RedundantText(Random random, int size)
    {
        var data = new byte[size];
        var pos = 0;
        while (pos < size)
        {
            var line = System.Text.Encoding.ASCII.GetBytes($"*3\r\n$3\r\nSET\r\n$10\r\nkey:{random.Next(100000):D6}\r\n$8\r\nval{random.Next(100000):D5}\r\n");
            var n = Math.Min(line.Length, size - pos);
            line.AsSpan(0, n).CopyTo(data.AsSpan(pos));
            pos += n;
        }

        return data;
    }

    /// <summary>Writes a file of <paramref name="size"/> bytes, half random and half redundant text, in 1 MiB pieces.</summary>
    public static void LargeFile(string path, long size, int seed)
    {
        var random = new Random(seed);
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        long written = 0;
        var piece = 0;
        while (written < size)
        {
            var n = (int)Math.Min(1 << 20, size - written);
            stream.Write(piece++ % 2 == 0 ? RandomBytes(random, n) : RedundantText(random, n));
            written += n;
        }
    }

    /// <summary>Asserts both trees hold the same entries: bytes, modes, mtimes, symlink targets, empty directories.</summary>
    public static void AssertSame(string expected, string actual)
    {
        var left = Entries(expected);
        var right = Entries(actual);
        Assert.Equal(left.Keys.Order(StringComparer.Ordinal), right.Keys.Order(StringComparer.Ordinal));
        foreach (var (relative, info) in left)
        {
            var other = right[relative];
            if (info.LinkTarget is { } target)
            {
                Assert.Equal(target, other.LinkTarget);
                continue;
            }

            Assert.True(info.GetType() == other.GetType(), $"{relative}: {info.GetType().Name} vs {other.GetType().Name}");
            Assert.True(info.UnixFileMode == other.UnixFileMode, $"{relative}: mode {info.UnixFileMode} vs {other.UnixFileMode}");
            Assert.True(info.LastWriteTimeUtc == other.LastWriteTimeUtc, $"{relative}: mtime {info.LastWriteTimeUtc:o} vs {other.LastWriteTimeUtc:o}");
            if (info is FileInfo file)
            {
                var otherFile = (FileInfo)other;
                Assert.True(file.Length == otherFile.Length, $"{relative}: length {file.Length} vs {otherFile.Length}");
                Assert.True(Hash(file.FullName).SequenceEqual(Hash(otherFile.FullName)), $"{relative}: content differs");
            }
        }
    }

    private static Dictionary<string, FileSystemInfo> Entries(string root)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        return new DirectoryInfo(root).EnumerateFileSystemInfos("*", options)
            .ToDictionary(i => Path.GetRelativePath(root, i.FullName), StringComparer.Ordinal);
    }

    private static byte[] Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return SHA256.HashData(stream);
    }
}
