using System.Diagnostics;
using Resh.Domains;

namespace Resh.Tests.Domains;

[Collection(CgroupSweeps.Name)]
public sealed class DomainFactoryTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private DomainSpec Spec(string id, params string[] arguments) =>
        new(id, arguments, Path.Combine(_temp.Path, "data", id), Path.Combine(_temp.Path, "logs"));

    [Fact]
    public async Task Auto_UsesTheMainCgroupHierarchy_WhenWritable()
    {
        await using var factory = new DomainFactory();

        Assert.True(factory.UsesParentDeathSignal, "setpriv --pdeathsig should be usable on the test machines");
        if (CgroupV2Run.IsV2Root("/sys/fs/cgroup") && CgroupAvailability.V2)
        {
            Assert.Equal("cgroup-v2", factory.Isolation);
        }
        else if (!CgroupV2Run.IsV2Root("/sys/fs/cgroup") && CgroupAvailability.V1)
        {
            Assert.Equal("cgroup-v1", factory.Isolation);
        }

        if (factory.Isolation != "signals")
        {
            Assert.NotEmpty(factory.CgroupRunDirectories);
            Assert.All(factory.CgroupRunDirectories, d => Assert.True(Directory.Exists(d)));
            Assert.All(factory.CgroupRunDirectories, d => Assert.EndsWith(Path.Combine("resh", factory.RunId), d, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task DisposeAsync_KillsAllDomains_AndRemovesTheRunCgroups()
    {
        var factory = new DomainFactory();
        var pids = new List<int>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var domain = factory.Create(Spec($"r{i}", "sleep", "1000"));
                domain.Start();
                pids.Add(domain.Pid!.Value);
            }

            var runDirs = factory.CgroupRunDirectories;

            await factory.DisposeAsync();

            await Eventually.TrueAsync(() => pids.All(p => !Procs.IsAlive(p)), "every domain to be killed");
            Assert.All(runDirs, d => Assert.False(Directory.Exists(d), $"{d} should be removed"));
            Assert.Throws<ObjectDisposedException>(() => factory.Create(Spec("late", "sleep", "1")));
        }
        finally
        {
            await factory.DisposeAsync();
            pids.ForEach(Procs.KillQuietly);
        }
    }

    [Fact]
    public async Task SameDomainId_TwiceInARun_GetsSeparateCgroups()
    {
        await using var factory = new DomainFactory();
        await using var first = factory.Create(Spec("same", "sleep", "1000"));
        await using var second = factory.Create(Spec("same", "sleep", "1000"));
        first.Start();
        second.Start();

        Assert.NotEqual(first.Pid, second.Pid);
        Assert.Empty(first.CgroupDirectories.Intersect(second.CgroupDirectories));
        second.Pause();
        Assert.NotEqual(DomainState.Paused, first.State);
    }

    [Fact]
    public async Task Domains_SurviveTheExitOfTheThreadThatStartedThem()
    {
        await using var factory = new DomainFactory();
        await using var domain = factory.Create(Spec("thread", "sleep", "1000"));
        var starterTid = 0;
        Exception? failure = null;
        var starter = new Thread(() =>
        {
            starterTid = Resh.Native.Libc.GetThreadId();
            try
            {
                domain.Start();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        starter.Start();
        starter.Join();
        Assert.Null(failure);
        Assert.NotEqual(starterTid, factory.Spawner.ThreadId);

        // Wait until the OS thread is really gone: a pdeathsig bound to it would have fired by then.
        await Eventually.TrueAsync(() => !Directory.Exists($"/proc/self/task/{starterTid}"), "the starter thread to exit");
        domain.Pause();
        domain.Resume();

        Assert.True(Procs.IsAlive(domain.Pid!.Value));
        Assert.False(domain.Exited.IsCompleted);
    }

    /// <summary>
    /// The mechanism domains rely on to leave no orphans when the parent is SIGKILLed: the exact launch chain,
    /// started by a throwaway bash parent that is then killed with SIGKILL.
    /// </summary>
    [Fact]
    public async Task LaunchChain_DiesWithItsParent_WhenTheParentIsSigkilled()
    {
        var tools = new LaunchTools(
            ExecutableResolver.FindTool("sh")!,
            ExecutableResolver.FindTool("setpriv") ?? throw new InvalidOperationException("setpriv is required"),
            ExecutableResolver.FindTool("setsid"));
        var argv = LaunchChain.Build(
            tools,
            [],
            Path.Combine(_temp.Path, "orphan.out"),
            Path.Combine(_temp.Path, "orphan.err"),
            ExecutableResolver.FindTool("sleep")!,
            ["1000"]);
        var startInfo = new ProcessStartInfo("bash") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", "\"$@\" & echo $!; wait", "bash" }.Concat(argv))
        {
            startInfo.ArgumentList.Add(arg);
        }

        using var parent = Process.Start(startInfo)!;
        var child = 0;
        try
        {
            child = int.Parse((await parent.StandardOutput.ReadLineAsync())!, System.Globalization.CultureInfo.InvariantCulture);
            await Eventually.TrueAsync(
                () => Procs.Comm(child) == "sleep" && ProcFs.TryReadStat(child, out var s) && s.ParentPid == parent.Id && s.Session == child,
                "the chain to exec into sleep under the bash parent");

            parent.Kill(); // SIGKILL
            await parent.WaitForExitAsync();

            await Eventually.TrueAsync(() => !Procs.IsAlive(child), "the service to die with its parent");
        }
        finally
        {
            if (!parent.HasExited)
            {
                parent.Kill();
            }

            if (child != 0 && Procs.IsAlive(child))
            {
                Procs.KillQuietly(child);
            }
        }
    }

    [Fact]
    public async Task StaleRunOfADeadOwner_IsKilledAndRemoved_ByTheNextFactory()
    {
        await using var first = new DomainFactory();
        if (first.Isolation == "signals")
        {
            return; // nothing to sweep without cgroups
        }

        var ns = first.RunId.Split('-')[0];
        var staleRun = $"{ns}-999999999-0badf00d"; // pid above any pid_max: its owner is certainly dead
        var groups = first.CgroupRunDirectories
            .Select(d => Path.Combine(Path.GetDirectoryName(d)!, staleRun, "leftover"))
            .ToList();
        groups.ForEach(g => Directory.CreateDirectory(g));
        var join = string.Join("; ", groups.Select(g => $"echo $$ > '{Path.Combine(g, "cgroup.procs")}'"));
        using var leftover = Process.Start(new ProcessStartInfo("sh", ["-c", $"{join}; exec sleep 1000"]) { UseShellExecute = false })!;
        try
        {
            await Eventually.TrueAsync(
                () => groups.All(g => File.ReadAllText(Path.Combine(g, "cgroup.procs")).Contains(leftover.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)),
                "the leftover process to be in the stale cgroups");

            await using var second = new DomainFactory();

            await Eventually.WithinAsync(leftover.WaitForExitAsync().ContinueWith(_ => 0, TaskScheduler.Default), "the leftover to be killed");
            Assert.All(groups, g => Assert.False(Directory.Exists(Path.GetDirectoryName(g)), $"{Path.GetDirectoryName(g)} should be removed"));
            Assert.All(first.CgroupRunDirectories, d => Assert.True(Directory.Exists(d), "a live run must not be swept"));
        }
        finally
        {
            if (!leftover.HasExited)
            {
                leftover.Kill();
            }

            foreach (var g in groups)
            {
                CgroupFile.TryRemoveDirectory(g, out _);
                CgroupFile.TryRemoveDirectory(Path.GetDirectoryName(g)!, out _);
            }
        }
    }

    [Theory]
    [InlineData("4026531836-1234-0badf00d", true)]
    [InlineData("4026531836-1234", false)]
    [InlineData("my-run", false)]
    [InlineData("4026531836-x-0badf00d", false)]
    [InlineData("4026531836-1234-0BADF00D", false)]
    public void RunIds_AreRecognisedOnlyInTheDefaultFormat(string name, bool recognised)
    {
        Assert.Equal(recognised, CgroupRun.TryParseRunId(name, out _, out _));
        Assert.True(CgroupRun.TryParseRunId(CgroupRun.NewRunId(), out _, out var pid));
        Assert.Equal(Environment.ProcessId, pid);
    }
}

public sealed class WatchdogTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(IsolationMode.Auto)]
    [InlineData(IsolationMode.Signals)]
    public async Task WhenTheOwnerGoesAway_TheWatchdogKillsWholeTrees_AndRemovesTheCgroups(IsolationMode mode)
    {
        await using var factory = new DomainFactory(new DomainFactoryOptions { Isolation = mode });
        Assert.True(factory.UsesWatchdog);
        var domain = factory.Create(new DomainSpec("w", ["sh", "-c", "sleep 1000 & wait"], Path.Combine(_temp.Path, "data"), Path.Combine(_temp.Path, "logs")));
        domain.Start();
        var pid = domain.Pid!.Value;
        await Eventually.TrueAsync(() => Procs.ChildrenOf(pid).Count > 0, "the background sleep to start");
        var grandchild = Procs.ChildrenOf(pid)[0];
        domain.Pause();
        var cgroups = domain.CgroupDirectories.Concat(factory.CgroupRunDirectories).ToList();
        try
        {
            // Closing the pipe is what the owner's death (even by SIGKILL) does to the watchdog.
            factory.Watchdog!.Dispose();

            Assert.Equal(137, await Eventually.WithinAsync(domain.Exited, "the main process to be killed by the watchdog"));
            await Eventually.TrueAsync(() => !Procs.IsAlive(grandchild), "the grandchild to be killed by the watchdog");
            Assert.All(cgroups, d => Assert.False(Directory.Exists(d), $"{d} should be removed by the watchdog"));
        }
        finally
        {
            Procs.KillQuietly(grandchild);
        }
    }
}

public sealed class DomainFactoryLoggingTests
{
    [Fact]
    public async Task Constructors_AcceptALoggerFactoryOrOneLogger()
    {
        await using (new DomainFactory(new DomainFactoryOptions { Isolation = IsolationMode.Signals }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance))
        {
        }

        await using IDomainFactory factory = new DomainFactory(new DomainFactoryOptions { Isolation = IsolationMode.Signals }, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal("signals", factory.Isolation);
        Assert.IsType<ProcessDomain>(factory.Create(new DomainSpec("x", ["true"], "/tmp", "/tmp")));
    }
}
