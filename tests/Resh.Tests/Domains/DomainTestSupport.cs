using System.Diagnostics;
using Resh.Domains;

namespace Resh.Tests.Domains;

internal static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> after the timeout.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
            {
                Assert.Fail($"Timed out after {limit} waiting for: {what}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Awaits a task with a bound.</summary>
    public static async Task<T> WithinAsync<T>(Task<T> task, string what, TimeSpan? timeout = null)
    {
        try
        {
            return await task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Timed out waiting for: {what}");
            throw;
        }
    }

    /// <summary>Waits (by polling the clock, not a fixed sleep) until at least <paramref name="span"/> of wall time has passed.</summary>
    public static async Task WallClockAdvancedAsync(TimeSpan span)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < span)
        {
            await Task.Delay(20);
        }
    }
}

internal static class Procs
{
    public static bool IsAlive(int pid) => ProcFs.IsAlive(pid);

    public static string? Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static char? State(int pid) => ProcFs.TryReadStat(pid, out var stat) ? stat.State : null;

    public static List<int> ChildrenOf(int pid) => ProcFs.ReadAll().Where(p => p.ParentPid == pid && !p.IsDead).Select(p => p.Pid).ToList();

    /// <summary>Test cleanup: SIGKILL, ignoring errors.</summary>
    public static void KillQuietly(int pid)
    {
        if (pid > 1)
        {
            Resh.Native.Libc.Signal(pid, Resh.Native.Libc.SigKill);
        }
    }
}

/// <summary>A scratch directory under /tmp, removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "resh-domain-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
