using Resh.Domains;

namespace Resh.Tests.Domains;

/// <summary>
/// The behaviour every isolation mechanism must show. Subclasses pick the mechanism; each test kills what it
/// started (domain disposal, plus factory disposal as a backstop even when an assertion fails).
/// </summary>
public abstract class DomainContractTests : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private int _next;

    protected DomainFactory Factory { get; private set; } = null!;

    /// <summary>Creates the factory under test.</summary>
    protected abstract DomainFactory CreateFactory();

    /// <summary>The isolation the factory is expected to report (null: whatever was detected).</summary>
    protected abstract string? ExpectedIsolation { get; }

    public Task InitializeAsync()
    {
        Factory = CreateFactory();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Factory.DisposeAsync();
        _temp.Dispose();
    }

    private ProcessDomain NewDomain(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var id = $"d{Interlocked.Increment(ref _next)}";
        return Factory.Create(new DomainSpec(
            id,
            arguments,
            Path.Combine(_temp.Path, "data", id),
            Path.Combine(_temp.Path, "logs"),
            environment));
    }

    [Fact]
    public void Factory_ReportsTheExpectedIsolation()
    {
        Assert.Contains(Factory.Isolation, new[] { "cgroup-v1", "cgroup-v2", "signals" });
        if (ExpectedIsolation is { } expected)
        {
            Assert.Equal(expected, Factory.Isolation);
        }
    }

    [Fact]
    public async Task Start_RunsTheServiceInItsOwnProcessGroup_WithLogFiles()
    {
        await using var domain = NewDomain(["sleep", "1000"]);
        Assert.Equal(DomainState.Created, domain.State);
        Assert.Null(domain.Pid);

        domain.Start();

        Assert.Equal(DomainState.Running, domain.State);
        var pid = Assert.IsType<int>(domain.Pid);
        Assert.True(Procs.IsAlive(pid));
        Assert.True(ProcFs.TryReadStat(pid, out var stat));
        Assert.Equal(pid, stat.ProcessGroup);
        Assert.Equal(pid, stat.Session);
        Assert.True(File.Exists(domain.StandardOutputPath));
        Assert.True(File.Exists(domain.StandardErrorPath));
        Assert.Equal(Path.Combine(_temp.Path, "logs", domain.Id + ".out"), domain.StandardOutputPath);
        Assert.True(Directory.Exists(domain.Spec.DataDirectory));
        Assert.Equal(Factory.Isolation, domain.Isolation);

        // Everything in the chain execs: the pid we hold becomes the service itself.
        await Eventually.TrueAsync(() => Procs.Comm(pid) == "sleep", "the domain pid to be the sleep process");

        if (domain.Isolation.StartsWith("cgroup", StringComparison.Ordinal))
        {
            Assert.NotEmpty(domain.CgroupDirectories);
            foreach (var dir in domain.CgroupDirectories)
            {
                Assert.Contains(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllLines(Path.Combine(dir, "cgroup.procs")));
            }
        }
        else
        {
            Assert.Empty(domain.CgroupDirectories);
        }

        domain.Start(); // idempotent while running
        Assert.Equal(pid, domain.Pid);
    }

    [Fact]
    public async Task OwnsListener_TellsTheDomainsOwnListenerFromAnotherProcesss()
    {
        // The service listens from a child of a shell, as a wrapper script would start it.
        var port = PortAllocator.GetFreeTcpPort();
        await using var domain = NewDomain(["sh", "-c", $"python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", {port})); s.listen(); time.sleep(1000)'; true"]);
        domain.Start();
        await Eventually.TrueAsync(() => domain.OwnsListener(port) is not null, "the service to listen");
        Assert.True(domain.OwnsListener(port));

        // A port this test process holds is not the domain's; a port nobody listens on cannot be told.
        using var other = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        other.Start();
        Assert.False(domain.OwnsListener(((System.Net.IPEndPoint)other.LocalEndpoint).Port));
        Assert.Null(domain.OwnsListener(PortAllocator.GetFreeTcpPort()));
    }

    [Fact]
    public async Task Kill_ExitsWith137_AndKillsTheWholeTree()
    {
        await using var domain = NewDomain(["sh", "-c", "sleep 1000 & wait"]);
        domain.Start();
        var pid = domain.Pid!.Value;
        var grandchild = 0;
        await Eventually.TrueAsync(
            () =>
            {
                var children = Procs.ChildrenOf(pid);
                grandchild = children.FirstOrDefault(c => Procs.Comm(c) == "sleep");
                return grandchild != 0;
            },
            "the background sleep to start");

        try
        {
            domain.Kill();
            domain.Kill(); // idempotent

            Assert.Equal(137, await Eventually.WithinAsync(domain.Exited, "the domain to exit after Kill"));
            Assert.Equal(DomainState.Exited, domain.State);
            await Eventually.TrueAsync(() => !Procs.IsAlive(pid), "the main process to be gone");
            await Eventually.TrueAsync(() => !Procs.IsAlive(grandchild), "the grandchild to be gone");
            domain.Kill(); // safe after exit
        }
        finally
        {
            if (Procs.IsAlive(grandchild))
            {
                Procs.KillQuietly(grandchild);
            }
        }
    }

    [Fact]
    public async Task PauseAndResume_StopAndContinueTheTree()
    {
        await using var domain = NewDomain(["sh", "-c", "sleep 1000 & wait"]);
        domain.Start();
        var pid = domain.Pid!.Value;
        await Eventually.TrueAsync(() => Procs.ChildrenOf(pid).Count > 0, "the background sleep to start");
        var child = Procs.ChildrenOf(pid)[0];

        domain.Pause();
        Assert.Equal(DomainState.Paused, domain.State);
        AssertPaused(domain, pid);
        AssertPaused(domain, child);
        domain.Pause(); // idempotent
        Assert.Equal(DomainState.Paused, domain.State);

        domain.Resume();
        Assert.Equal(DomainState.Running, domain.State);
        await Eventually.TrueAsync(() => IsRunning(domain, pid) && IsRunning(domain, child), "the tree to run again");
        domain.Resume(); // idempotent
        Assert.Equal(DomainState.Running, domain.State);
        Assert.False(domain.Exited.IsCompleted);
    }

    [Fact]
    public async Task Kill_WhilePaused_StillKills()
    {
        await using var domain = NewDomain(["sleep", "1000"]);
        domain.Start();
        var pid = domain.Pid!.Value;
        domain.Pause();

        domain.Kill();

        Assert.Equal(137, await Eventually.WithinAsync(domain.Exited, "a paused domain to exit after Kill"));
        await Eventually.TrueAsync(() => !Procs.IsAlive(pid), "the paused process to be gone");
        domain.Resume(); // safe after exit
        domain.Pause();
        Assert.Equal(DomainState.Exited, domain.State);
    }

    [Fact]
    public async Task CpuTime_GrowsWhileRunning_AndStandsStillWhilePaused()
    {
        await using var domain = NewDomain(["sh", "-c", "while :; do :; done"]);
        domain.Start();

        var start = domain.CpuTime;
        await Eventually.TrueAsync(() => domain.CpuTime > start, "CPU time of a busy loop to grow");

        domain.Pause();
        var first = domain.CpuTime;
        await Eventually.WallClockAdvancedAsync(TimeSpan.FromMilliseconds(200));
        var second = domain.CpuTime;
        Assert.Equal(first, second);

        domain.Resume();
        await Eventually.TrueAsync(() => domain.CpuTime > second, "CPU time to grow again after Resume");

        domain.Kill();
        await Eventually.WithinAsync(domain.Exited, "the busy loop to exit");
        var last = domain.CpuTime;
        Assert.True(last > second, $"after exit CpuTime keeps the last value ({last} > {second})");
        Assert.True(domain.CpuTime >= last);
    }

    [Fact]
    public async Task Exited_CarriesTheExitCode_AndControlIsSafeAfterExit()
    {
        await using var domain = NewDomain(["sh", "-c", "exit 3"]);
        domain.Start();

        Assert.Equal(3, await Eventually.WithinAsync(domain.Exited, "sh to exit"));
        Assert.Equal(DomainState.Exited, domain.State);
        domain.Pause();
        domain.Resume();
        domain.Kill();
        Assert.Equal(DomainState.Exited, domain.State);
        Assert.Throws<InvalidOperationException>(domain.Start);
    }

    [Fact]
    public async Task Output_Environment_AndWorkingDirectory_ReachTheService()
    {
        var environment = new Dictionary<string, string> { ["RESH_TEST_VALUE"] = "hello domain" };
        await using var domain = NewDomain(
            ["sh", "-c", "echo \"value=$RESH_TEST_VALUE\"; echo \"cwd=$(pwd)\"; echo oops >&2; exec sleep 1000"],
            environment);
        domain.Start();

        await Eventually.TrueAsync(
            () => File.ReadAllText(domain.StandardOutputPath).Contains("value=hello domain", StringComparison.Ordinal)
                && File.ReadAllText(domain.StandardErrorPath).Contains("oops", StringComparison.Ordinal),
            "output in the log files");
        Assert.Contains($"cwd={domain.Spec.DataDirectory}", File.ReadAllText(domain.StandardOutputPath), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingProgram_ThrowsDomainStartException_NamingProgramAndPath()
    {
        await using var domain = NewDomain(["resh-no-such-program-xyz", "--flag"]);

        var e = Assert.Throws<DomainStartException>(domain.Start);

        Assert.Contains("resh-no-such-program-xyz", e.Message, StringComparison.Ordinal);
        Assert.Contains("PATH", e.Message, StringComparison.Ordinal);
        Assert.Contains("/usr/bin", e.Message, StringComparison.Ordinal);
        Assert.Equal(DomainState.Created, domain.State);
        Assert.Null(domain.Pid);
    }

    [Fact]
    public async Task ControlBeforeStart_IsRejectedOrHarmless()
    {
        await using var domain = NewDomain(["sleep", "1000"]);

        Assert.Throws<InvalidOperationException>(domain.Pause);
        Assert.Throws<InvalidOperationException>(domain.Resume);
        Assert.Equal(TimeSpan.Zero, domain.CpuTime);
        domain.Kill();
        Assert.Equal(DomainState.Created, domain.State);
        Assert.Throws<InvalidOperationException>(domain.Start);
    }

    [Fact]
    public async Task DisposeAsync_KillsTheTree_AndRemovesTheCgroup()
    {
        var domain = NewDomain(["sh", "-c", "sleep 1000 & wait"]);
        domain.Start();
        var pid = domain.Pid!.Value;
        await Eventually.TrueAsync(() => Procs.ChildrenOf(pid).Count > 0, "the background sleep to start");
        var child = Procs.ChildrenOf(pid)[0];
        var cgroups = domain.CgroupDirectories;
        domain.Pause();

        await domain.DisposeAsync();
        await domain.DisposeAsync(); // idempotent

        Assert.True(domain.Exited.IsCompleted);
        await Eventually.TrueAsync(() => !Procs.IsAlive(pid) && !Procs.IsAlive(child), "the tree to be gone");
        foreach (var dir in cgroups)
        {
            Assert.False(Directory.Exists(dir), $"{dir} should be removed");
        }

        Assert.Throws<ObjectDisposedException>(domain.Start);
    }

    private static void AssertPaused(ProcessDomain domain, int pid)
    {
        switch (domain.Isolation)
        {
            case "cgroup-v1":
                Assert.Equal("FROZEN", File.ReadAllText(FreezerState(domain)).Trim());
                Assert.Contains(Procs.State(pid) ?? '?', "DST");
                break;
            case "cgroup-v2":
                Assert.Contains("frozen 1", File.ReadAllLines(Path.Combine(domain.CgroupDirectories[0], "cgroup.events")));
                break;
            default:
                Assert.Equal('T', Procs.State(pid));
                break;
        }
    }

    private static bool IsRunning(ProcessDomain domain, int pid) => domain.Isolation switch
    {
        "cgroup-v1" => File.ReadAllText(FreezerState(domain)).Trim() == "THAWED" && Procs.IsAlive(pid),
        "cgroup-v2" => File.ReadAllLines(Path.Combine(domain.CgroupDirectories[0], "cgroup.events")).Contains("frozen 0") && Procs.IsAlive(pid),
        _ => Procs.State(pid) is { } state && state != 'T' && state != 'Z',
    };

    private static string FreezerState(ProcessDomain domain) =>
        domain.CgroupDirectories.Select(d => Path.Combine(d, "freezer.state")).Single(File.Exists);
}

/// <summary>cgroup v1 freezer + cpuacct where usable (here: yes); elsewhere whatever Auto detects.</summary>
[Collection(CgroupSweeps.Name)]
public sealed class CgroupV1DomainTests : DomainContractTests
{
    protected override string? ExpectedIsolation => CgroupAvailability.V1 ? "cgroup-v1" : null;

    protected override DomainFactory CreateFactory() =>
        new(new DomainFactoryOptions { Isolation = CgroupAvailability.V1 ? IsolationMode.CgroupV1 : IsolationMode.Auto });
}

/// <summary>cgroup v2 where usable (the main tree, or the hybrid "unified" mount); elsewhere whatever Auto detects.</summary>
[Collection(CgroupSweeps.Name)]
public sealed class CgroupV2DomainTests : DomainContractTests
{
    protected override string? ExpectedIsolation => CgroupAvailability.V2 ? "cgroup-v2" : null;

    protected override DomainFactory CreateFactory() =>
        new(new DomainFactoryOptions { Isolation = CgroupAvailability.V2 ? IsolationMode.CgroupV2 : IsolationMode.Auto });
}

/// <summary>The forced fallback: process-group signals and /proc accounting.</summary>
public sealed class SignalsDomainTests : DomainContractTests
{
    protected override string? ExpectedIsolation => "signals";

    protected override DomainFactory CreateFactory() => new(new DomainFactoryOptions { Isolation = IsolationMode.Signals });
}

/// <summary>Which cgroup mechanisms can be forced on this machine (probed once by creating a factory).</summary>
internal static class CgroupAvailability
{
    private static readonly Lazy<bool> LazyV1 = new(() => Probe(IsolationMode.CgroupV1));
    private static readonly Lazy<bool> LazyV2 = new(() => Probe(IsolationMode.CgroupV2));

    public static bool V1 => LazyV1.Value;

    public static bool V2 => LazyV2.Value;

    private static bool Probe(IsolationMode mode)
    {
        try
        {
            var factory = new DomainFactory(new DomainFactoryOptions { Isolation = mode, SweepStaleRuns = false });
            factory.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>
/// Test classes whose domain factories use cgroups run one after another: every such factory sweeps the cgroups of dead
/// runs when it starts, so one started by a class running alongside would sweep the stale run a test set up on purpose.
/// </summary>
[CollectionDefinition(Name)]
public sealed class CgroupSweeps
{
    public const string Name = "cgroup sweeps";
}
