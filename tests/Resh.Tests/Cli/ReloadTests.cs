using Resh.Cli;
using Resh.Hosting;

namespace Resh.Tests.Cli;

/// <summary>A reload: which keys changed between two readings of a file, and what the host takes of them.</summary>
public sealed class ReloadTests : IDisposable
{
    private const string Before = """
        service:
          protocol: resp
          listen: 127.0.0.1:6380
          max-clients: 100
          idle-timeout: 0
          max-pending: 4096
          max-pending-bytes: 256MiB
          write-timeout: 60s
          limits: { memory: 0 }
        admin: 127.0.0.1:6390
        admin-token: old
        mode: resh
        faults: 1
        reply-timeout: 5s
        max-lag: 100000
        slow-delay: 200ms
        drain-timeout: 10s
        replicas:
          - command: redis-server --port {port} --dir {dir}
          - command: redis-server --port {port} --dir {dir}
          - command: redis-server --port {port} --dir {dir}
        checkpoint:
          flush: SAVE
          files: [dump.rdb]
          interval: 5s
          min-interval: 1s
          max-log-bytes: 64MiB
          flush-timeout: 10m
          retention: { keep-last: 3 }
        """;

    private const string After = """
        service:
          protocol: resp
          listen: 127.0.0.1:6381
          max-clients: 7
          idle-timeout: 30s
          max-pending: 16
          max-pending-bytes: 1MiB
          write-timeout: 5s
          limits: { memory: 1GiB }
        admin: 127.0.0.1:6390
        admin-token: new
        mode: resh
        faults: 1
        reply-timeout: 2s
        max-lag: 500
        slow-delay: 50ms
        drain-timeout: 3s
        replicas:
          - command: redis-server --port {port} --dir {dir}
          - command: redis-server --port {port} --dir {dir}
          - command: redis-server --port {port} --dir {dir} --hz 20
        checkpoint:
          flush: SAVE
          files: [dump.rdb]
          interval: 20000
          min-interval: 2s
          max-log-bytes: 32MiB
          flush-timeout: 1m
          retention: { keep-last: 9 }
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("resh-reload-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (ReshOptions Options, IReadOnlyDictionary<string, string> Values) Read(string yaml)
    {
        var path = Path.Combine(_dir, "resh.yaml");
        File.WriteAllText(path, yaml);
        return ConfigLoader.LoadFileWithValues(path);
    }

    [Fact]
    public void Every_reloadable_key_is_applied_and_the_others_are_named_for_a_restart()
    {
        var (running, before) = Read(Before);
        var (next, after) = Read(After);
        var host = new ReshHost(running);

        var outcome = host.Reload(next, ConfigLoader.Changed(before, after));

        // The pair of files changes every key a reload applies, so a new one must be added here (and to Apply).
        Assert.All(ReshHost.ReloadableKeys, key => Assert.Contains(outcome.Applied, k => k == key || k.StartsWith(key + ".", StringComparison.Ordinal)));
        Assert.Equal(["replicas", "service.listen"], outcome.NeedRestart);
        Assert.Empty(outcome.Errors);

        var o = host.Options;
        Assert.Equal((7, TimeSpan.FromSeconds(30), 16, 1L << 20, TimeSpan.FromSeconds(5), 1L << 30), (o.Gateway.MaxClients, o.Gateway.IdleTimeout, o.Gateway.MaxPendingPerSession, o.Gateway.MaxPendingBytes, o.Gateway.WriteTimeout, o.Gateway.MemoryLimit));
        Assert.Equal(("new", TimeSpan.FromSeconds(3)), (o.AdminToken, o.DrainTimeout));
        Assert.Equal((TimeSpan.FromSeconds(2), 500L, TimeSpan.FromMilliseconds(50)), (o.Group.ReplyTimeout, o.Group.MaxLag, o.Group.SlowDelay));
        var checkpoint = o.Group.Checkpoint!;
        Assert.Equal((20000L, (TimeSpan?)null, TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(1), 9), (checkpoint.EveryEntries, checkpoint.Every, checkpoint.MinInterval, checkpoint.FlushTimeout, checkpoint.Retention.KeepLast));
        Assert.Equal(32L << 20, checkpoint.MaxLogBytes);

        // What needs a restart is left as it runs.
        Assert.Equal(6380, o.Gateway.Listen.Port);
        Assert.DoesNotContain("--hz", o.Group.Replicas[2].Command, StringComparison.Ordinal);
        Assert.Contains(host.Events.Since(), e => e.Name == "+reload" && e.Detail.Contains("service.listen", StringComparison.Ordinal));
    }

    [Fact]
    public void The_same_file_changes_nothing_and_checkpoints_turned_on_wait_for_a_restart()
    {
        var (running, before) = Read(Before);
        var host = new ReshHost(running);
        Assert.Equal("reloaded: no setting changed", host.Reload(Read(Before).Options, ConfigLoader.Changed(before, Read(Before).Values)).ToString());

        var off = Before[..Before.IndexOf("checkpoint:", StringComparison.Ordinal)] + "checkpoint: off\n";
        var (withoutCheckpoints, offValues) = Read(off);
        var plain = new ReshHost(withoutCheckpoints);
        var outcome = plain.Reload(Read(Before).Options, ConfigLoader.Changed(offValues, before));
        Assert.Empty(outcome.Applied);
        Assert.Contains("checkpoint.interval", outcome.NeedRestart);
        Assert.Null(plain.Options.Group.Checkpoint);
    }

    [Fact]
    public void Changed_keys_are_leaves_by_full_path_and_a_list_is_one_value()
    {
        IReadOnlyDictionary<string, string> a = Read(Before).Values;
        Assert.Equal("100", a["service.max-clients"]);
        Assert.Equal("0", a["service.limits.memory"]);
        Assert.StartsWith("[{command: redis-server", a["replicas"], StringComparison.Ordinal);
        var b = new Dictionary<string, string>(a) { ["service.max-clients"] = "5", ["extra"] = "1" };
        b.Remove("max-lag");
        Assert.Equal(["extra", "max-lag", "service.max-clients"], ConfigLoader.Changed(a, b));
    }
}
