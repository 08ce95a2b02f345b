using Resh.Cli;
using Resh.Modes;
using Resh.Protocols.Resp;

namespace Resh.Tests.Cli;

public sealed class ConfigLoaderTests
{
    private const string Issue = """
        service:
          protocol: resp
          listen: 127.0.0.1:6380
        admin: 127.0.0.1:6390
        mode: resh
        faults: 1                 # f; 2f+1 = 3 replicas
        replicas:
          - command: redis-server --port {port} --dir {dir} --save "" --appendonly no
          - command: redis-server --port {port} --dir {dir} --save "" --appendonly no
          - command: redis-server --port {port} --dir {dir} --save "" --appendonly no
        """;

    private static ConfigException Fails(string yaml) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Load(yaml, "test.yaml", "/tmp"));

    [Fact]
    public void Loads_the_example_of_the_issue()
    {
        var options = ConfigLoader.Load(Issue, "test.yaml", "/tmp");
        Assert.Equal("resp", options.Protocol);
        Assert.Equal("127.0.0.1:6380", options.Gateway.Listen.ToString());
        Assert.Equal("127.0.0.1:6390", options.Admin!.ToString());
        Assert.Equal(1, options.Group.Faults);
        Assert.Equal(["r1", "r2", "r3"], options.Group.Replicas.Select(r => r.Id));
        Assert.Contains("{port}", options.Group.Replicas[0].Command, StringComparison.Ordinal);
    }

    [Fact]
    public void Passwords_and_users_come_from_the_service_block_and_an_empty_one_is_refused()
    {
        var options = ConfigLoader.Load(Issue.Replace("  listen: 127.0.0.1:6380", "  listen: 127.0.0.1:6380\n  requirepass: s3cret\n  users: { app: pw }", StringComparison.Ordinal), "test.yaml", "/tmp");
        Assert.Equal("s3cret", options.Resp.Users["default"]);
        Assert.Equal("pw", options.Resp.Users["app"]);
        Assert.Equal(ExpiryRewrite.Owned, options.Resp.ExpiryRewrite);

        var e = Fails(Issue.Replace("  listen: 127.0.0.1:6380", "  listen: 127.0.0.1:6380\n  users: { app: '' }", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Message.Contains("service.users.app", StringComparison.Ordinal));
    }

    [Fact]
    public void The_short_form_expands_to_count_replicas()
    {
        var options = ConfigLoader.Load("""
            service: { listen: 127.0.0.1:7000 }
            faults: 2
            replicas: { count: 5, command: "redis-server --port {port}" }
            normalize: { errors: code-only }
            reply-timeout: 750ms
            """, "t.yaml", "/tmp");
        Assert.Equal(5, options.Group.Replicas.Count);
        Assert.Equal("r5", options.Group.Replicas[4].Id);
        Assert.Equal(ErrorComparison.CodeOnly, options.Resp.ErrorComparison);
        Assert.Equal(TimeSpan.FromMilliseconds(750), options.Group.ReplyTimeout);
    }

    [Fact]
    public void A_wrong_replica_count_names_the_key_and_the_fix()
    {
        var e = Fails(Issue.Replace("faults: 1 ", "faults: 2 ", StringComparison.Ordinal));
        var error = Assert.Single(e.Errors);
        Assert.Contains("replicas", error.Message, StringComparison.Ordinal);
        Assert.Contains("2f+1 = 5", error.Message, StringComparison.Ordinal);
        Assert.True(error.Line > 0);
    }

    [Fact]
    public void A_typo_in_a_key_is_reported_with_its_line_and_a_suggestion()
    {
        var e = Fails(Issue.Replace("faults:", "faluts:", StringComparison.Ordinal));
        var error = Assert.Single(e.Errors);
        Assert.Equal(6, error.Line);
        Assert.Contains("did you mean 'faults'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("listen: 127.0.0.1:6380", "listen: nowhere", "service.listen")]
    [InlineData("admin: 127.0.0.1:6390", "admin: 10.1.2.3:6390", "loopback")]
    [InlineData("mode: resh", "mode: paxos", "mode")]
    [InlineData("protocol: resp", "protocol: http", "service.protocol")]
    [InlineData("faults: 1 ", "faults: -1 ", "faults")]
    public void Bad_values_name_the_key(string from, string to, string expected)
    {
        var e = Fails(Issue.Replace(from, to, StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_command_without_the_port_placeholder_is_refused()
    {
        var e = Fails(Issue.Replace("--port {port} --dir {dir} --save \"\" --appendonly no\n  - command", "--dir {dir}\n  - command", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Message.StartsWith("replicas[0].command", StringComparison.Ordinal));
    }

    [Fact]
    public void Broken_yaml_is_reported_not_thrown_raw()
    {
        var e = Fails("service: [unclosed\nfaults: 1");
        Assert.Contains("not valid YAML", Assert.Single(e.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_sections_are_named()
    {
        var e = Fails("faults: 1");
        Assert.Contains(e.Errors, x => x.Message.StartsWith("service: missing", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.Message.StartsWith("replicas: missing", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("5s", 5000)]
    [InlineData("250ms", 250)]
    [InlineData("2m", 120000)]
    [InlineData("1.5", 1500)]
    public void Durations_parse(string text, double ms)
    {
        Assert.True(Resh.Options.OptionValues.TryParseDuration(text, out var value));
        Assert.Equal(ms, value.TotalMilliseconds);
    }

    [Theory]
    [InlineData("64KiB", 65536)]
    [InlineData("512MiB", 536870912)]
    [InlineData("1000", 1000)]
    public void Sizes_parse(string text, long bytes)
    {
        Assert.True(Resh.Options.OptionValues.TryParseSize(text, out var value));
        Assert.Equal(bytes, value);
    }

    [Fact]
    public void The_durable_example_loads_with_its_checkpoints()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Resh.slnx")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var options = ConfigLoader.LoadFile(Path.Combine(root, "examples", "redis-durable.yaml"));
        var checkpoint = Assert.IsType<Resh.Group.CheckpointOptions>(options.Group.Checkpoint);
        Assert.Equal("BGSAVE", checkpoint.Flush);
        Assert.True(checkpoint.Background);
        Assert.Equal("INFO persistence", checkpoint.FlushDone);
        Assert.Equal("rdb_bgsave_in_progress:0", checkpoint.FlushDoneWhen);
        Assert.Equal(["dump.rdb"], checkpoint.Files);
        Assert.Equal("rdb", checkpoint.Digest);
        Assert.True(checkpoint.VotesOnFiles);
        Assert.Equal(TimeSpan.FromSeconds(3), checkpoint.Every);
        Assert.Null(checkpoint.EveryEntries);
        Assert.Equal(3, checkpoint.Retention.KeepLast);
        Assert.Equal(Resh.Ordering.LogFsync.Always, options.DurableLog);
        Assert.All(options.Group.Replicas, r => Assert.DoesNotContain("--enable-debug-command", r.Command, StringComparison.Ordinal));
    }

    [Fact]
    public void An_open_listener_without_a_password_and_replicas_without_bind_are_warned_about()
    {
        var open = ConfigLoader.Load(Issue.Replace("listen: 127.0.0.1:6380", "listen: 0.0.0.0:6380", StringComparison.Ordinal), "test.yaml", "/tmp");
        Assert.Contains(open.Warnings(), w => w.StartsWith("service.listen: 0.0.0.0:6380 is reachable from other hosts and clients need no password", StringComparison.Ordinal));
        Assert.Equal(3, open.Warnings().Count(w => w.Contains("redis-server without --bind", StringComparison.Ordinal)));

        var closed = ConfigLoader.Load(Issue.Replace("listen: 127.0.0.1:6380", "listen: 0.0.0.0:6380\n  requirepass: s3cret", StringComparison.Ordinal).Replace("--port {port}", "--port {port} --bind 127.0.0.1", StringComparison.Ordinal), "test.yaml", "/tmp");
        Assert.Empty(closed.Warnings());
    }

    [Fact]
    public void Redis_server_replicas_get_default_checkpoints_and_other_services_a_warning()
    {
        var options = ConfigLoader.Load(Issue, "test.yaml", "/tmp");
        var checkpoint = Assert.IsType<Resh.Group.CheckpointOptions>(options.Group.Checkpoint);
        Assert.Equal("BGSAVE", checkpoint.Flush);
        Assert.Equal("rdb", checkpoint.Digest);
        Assert.Equal(100_000, checkpoint.EveryEntries);
        Assert.Equal(TimeSpan.FromSeconds(10), checkpoint.MinInterval);
        Assert.Equal(128L << 20, checkpoint.MaxLogBytes);
        Assert.Empty(checkpoint.Validate());
        Assert.DoesNotContain(options.Warnings(), w => w.StartsWith("checkpoint", StringComparison.Ordinal));

        // Turned off, or a replica that is not redis-server, or one without {dir}: none, and a warning.
        var off = ConfigLoader.Load(Issue + "\ncheckpoint: off\n", "test.yaml", "/tmp");
        Assert.Null(off.Group.Checkpoint);
        Assert.Contains(off.Warnings(), w => w.StartsWith("checkpoint: none", StringComparison.Ordinal));
        var garnet = ConfigLoader.Load(Issue.Replace("  - command: redis-server --port {port} --dir {dir} --save \"\" --appendonly no\n", "  - command: garnet-server --port {port}\n", StringComparison.Ordinal), "test.yaml", "/tmp");
        Assert.Null(garnet.Group.Checkpoint);
        Assert.NotEmpty(garnet.Warnings());
        var noDir = ConfigLoader.Load(Issue.Replace("--dir {dir} ", "", StringComparison.Ordinal), "test.yaml", "/tmp");
        Assert.Null(noDir.Group.Checkpoint);

        // An explicit section is taken as written.
        var explicitly = ConfigLoader.Load(Issue + "\ncheckpoint: { flush: SAVE, files: [dump.rdb], interval: 5s }\n", "test.yaml", "/tmp");
        Assert.Equal("SAVE", explicitly.Group.Checkpoint!.Flush);
        Assert.Null(explicitly.Group.Checkpoint.Digest);
    }

    [Fact]
    public void Checkpoints_voted_on_files_are_flushed_by_f_plus_one_unless_all_are_asked_for()
    {
        var byDefault = ConfigLoader.Load(Issue, "test.yaml", "/tmp");
        Assert.Null(byDefault.Group.Checkpoint!.FlushBy);
        Assert.Equal(Resh.Group.CheckpointFlushers.Quorum, byDefault.Group.Checkpoint.Flushers);

        const string Background = "\ncheckpoint: { flush: BGSAVE, flush-done: INFO persistence, flush-done-when: 'rdb_bgsave_in_progress:0', files: [dump.rdb], digest: rdb, interval: 5s, flush-by: all }\n";
        Assert.Equal(Resh.Group.CheckpointFlushers.All, ConfigLoader.Load(Issue + Background, "test.yaml", "/tmp").Group.Checkpoint!.Flushers);

        // A digest command is voted in the flush entry's reply, by every replica.
        var digestCommand = ConfigLoader.Load(Issue + "\ncheckpoint: { flush: SAVE, files: [dump.rdb], digest: DEBUG DIGEST, interval: 5s }\n", "test.yaml", "/tmp");
        Assert.Equal(Resh.Group.CheckpointFlushers.All, digestCommand.Group.Checkpoint!.Flushers);
        var e = Fails(Issue + "\ncheckpoint: { flush: SAVE, files: [dump.rdb], digest: DEBUG DIGEST, interval: 5s, flush-by: quorum }\n");
        Assert.Contains(e.Errors, x => x.Message.StartsWith("checkpoint.flush-by: quorum needs a vote on files", StringComparison.Ordinal));
        e = Fails(Issue + "\ncheckpoint: { flush: SAVE, files: [dump.rdb], interval: 5s, flush-by: some }\n");
        Assert.Contains(e.Errors, x => x.Message.StartsWith("checkpoint.flush-by: 'some'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_checkpoint_interval_is_a_count_of_entries_or_a_duration()
    {
        var byCount = ConfigLoader.Load(Issue + "\ncheckpoint: { flush: SAVE, files: dump.rdb, interval: 10000, store: ./st }\n", "t.yaml", "/tmp");
        Assert.Equal(10000, byCount.Group.Checkpoint!.EveryEntries);
        Assert.Equal(["dump.rdb"], byCount.Group.Checkpoint.Files);
        Assert.Equal("/tmp/st", byCount.Group.Checkpoint.StorePath);
        Assert.Null(byCount.Group.Checkpoint.Digest);

        var bounded = ConfigLoader.Load(Issue + "\ncheckpoint: { flush: SAVE, files: dump.rdb, interval: 5s, min-interval: 1m, max-log-bytes: 64MiB }\n", "t.yaml", "/tmp");
        Assert.Equal(64L << 20, bounded.Group.Checkpoint!.MaxLogBytes);

        var e = Fails(Issue + "\ncheckpoint: { flush: SAVE, files: [dump.rdb], interval: often }\n");
        Assert.Contains(e.Errors, x => x.Message.StartsWith("checkpoint.interval: 'often' is neither", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("checkpoint: { files: [dump.rdb], interval: 5s }", "checkpoint.flush: missing")]
    [InlineData("checkpoint: { flush: SAVE, interval: 5s }", "checkpoint.files: missing")]
    [InlineData("checkpoint: { flush: SAVE, files: [../x], interval: 5s }", "checkpoint.files: '../x' must be a plain path")]
    [InlineData("checkpoint: { flush: SAVE, files: [dump.rdb], interval: 5s, retention: { keep-lats: 2 } }", "did you mean 'checkpoint.retention.keep-last'")]
    [InlineData("checkpoint: { flush: SAVE, files: [dump.rdb], interval: 10ms }", "checkpoint.interval: must be at least 100ms")]
    [InlineData("checkpoint: { flush: SAVE, files: [dump.rdb], interval: 5s, max-log-bytes: 64KiB }", "checkpoint.max-log-bytes: must be at least 1MiB")]
    [InlineData("checkpoint: { flush: SAVE, files: [dump.rdb], interval: 5s, retention: { keep-last: 0 } }", "checkpoint.retention needs at least one rule")]
    public void Checkpoint_mistakes_are_named(string yaml, string expected)
    {
        var e = Fails(Issue + "\n" + yaml + "\n");
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void The_spare_example_loads_with_two_active_and_two_passive_replicas()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Resh.slnx")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var options = ConfigLoader.LoadFile(Path.Combine(root, "examples", "spare.yaml"));
        Assert.Equal(Resh.Modes.ReplicationMode.Spare, options.Replication.Mode);
        Assert.Equal(1, options.Group.Faults);
        Assert.Equal(4, options.Group.Replicas.Count);
        Assert.Equal("127.0.0.1:6380", options.Gateway.Listen.ToString());
        Assert.Equal("127.0.0.1:6390", options.Admin!.ToString());
        Assert.Equal(TimeSpan.FromSeconds(1), options.Replication.Spare.UpdateEvery);
        Assert.Null(options.Replication.Spare.UpdateEveryEntries);
        Assert.Equal(TimeSpan.FromMinutes(10), options.Replication.Spare.RejuvenateEvery);
        Assert.Equal("DEBUG DIGEST", options.Replication.Spare.Digest);
    }

    private const string Spare = """
        service: { listen: 127.0.0.1:6380 }
        mode: spare
        faults: 1
        replicas: { count: 4, command: "redis-server --port {port}" }
        """;

    [Fact]
    public void A_spare_update_interval_is_a_count_of_entries_or_a_duration_and_rejuvenation_can_be_off()
    {
        var byCount = ConfigLoader.Load(Spare + "\nspare: { update-interval: 5000, rejuvenate-every: off }\n", "t.yaml", "/tmp");
        Assert.Equal(5000, byCount.Replication.Spare.UpdateEveryEntries);
        Assert.Null(byCount.Replication.Spare.UpdateEvery);
        Assert.Null(byCount.Replication.Spare.RejuvenateEvery);

        var defaults = ConfigLoader.Load(Spare, "t.yaml", "/tmp");
        Assert.Equal(TimeSpan.FromSeconds(1), defaults.Replication.Spare.UpdateEvery);
        Assert.Null(defaults.Replication.Spare.RejuvenateEvery);
        Assert.Equal(2 * 1 + 2, ModePolicies.For(defaults.Replication).ReplicasFor(defaults.Group.Faults));
    }

    [Theory]
    [InlineData("mode: spare\nfaults: 1\nreplicas: { count: 3, command: \"redis-server --port {port}\" }", "needs exactly 2f+2 (f+1 active, f+1 passive) = 4 replicas (got 3)")]
    [InlineData("mode: spares\nfaults: 1\nreplicas: { count: 4, command: \"redis-server --port {port}\" }", "mode: 'spares' is not known; use resh")]
    [InlineData("mode: resh\nfaults: 1\nspare: { update-interval: 1s }\nreplicas: { count: 3, command: \"redis-server --port {port}\" }", "spare: only mode spare reads this section")]
    [InlineData("mode: spare\nfaults: 1\nspare: { update-interval: 1ms }\nreplicas: { count: 4, command: \"redis-server --port {port}\" }", "spare.update-interval: must be at least 10ms")]
    [InlineData("mode: spare\nfaults: 1\nspare: { update-interval: sometimes }\nreplicas: { count: 4, command: \"redis-server --port {port}\" }", "spare.update-interval: 'sometimes' is neither")]
    [InlineData("mode: spare\nfaults: 1\nspare: { rejuvenate-every: 10ms }\nreplicas: { count: 4, command: \"redis-server --port {port}\" }", "spare.rejuvenate-every: must be at least 1s")]
    [InlineData("mode: spare\nfaults: 1\nspare: { update-intervall: 1s }\nreplicas: { count: 4, command: \"redis-server --port {port}\" }", "did you mean 'spare.update-interval'")]
    public void Spare_mistakes_are_named(string yaml, string expected)
    {
        var e = Fails("service: { listen: 127.0.0.1:6380 }\n" + yaml + "\n");
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void The_remus_example_loads_with_its_backup_and_epoch()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Resh.slnx")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        var options = ConfigLoader.LoadFile(Path.Combine(root, "examples", "remus.yaml"));
        Assert.Equal(Resh.Modes.ReplicationMode.Remus, options.Replication.Mode);
        Assert.Single(options.Group.Replicas);
        Assert.Equal("127.0.0.1:6391", Assert.Single(options.Replication.Remus.Backups).ToString());
        Assert.Equal(TimeSpan.FromMilliseconds(25), options.Replication.Remus.Epoch);
        Assert.Equal(TimeSpan.FromSeconds(1), options.Replication.Remus.FailoverTimeout);
        Assert.True(options.Replication.Remus.StartBackup);
        Assert.Equal("127.0.0.1:6380", options.Gateway.Listen.ToString());
        Assert.Equal("127.0.0.1:6390", options.Admin!.ToString());
    }

    [Fact]
    public void Remus_takes_a_list_of_backups_and_epoch_zero()
    {
        var options = ConfigLoader.Load("""
            service: { listen: 10.0.0.100:6380 }
            mode: remus
            remus: { backup: [10.0.0.2:6391, 10.0.0.1:6391], epoch: 0, failover-timeout: 300ms, takeover-command: ip addr add 10.0.0.100/32 dev eth0, tls-certificate: pair.pem, tls-key: pair.key }
            replicas: [ { command: "redis-server --port {port}" } ]
            """, "t.yaml", "/tmp");
        Assert.Equal(("/tmp/pair.pem", "/tmp/pair.key"), (options.Replication.Remus.TlsCertificate, options.Replication.Remus.TlsKey));
        Assert.Equal(["10.0.0.2:6391", "10.0.0.1:6391"], options.Replication.Remus.Backups.Select(b => b.ToString()));
        Assert.Equal(TimeSpan.Zero, options.Replication.Remus.Epoch);
        Assert.Equal(TimeSpan.FromMilliseconds(300), options.Replication.Remus.FailoverTimeout);
        Assert.Equal("ip addr add 10.0.0.100/32 dev eth0", options.Replication.Remus.TakeoverCommand);
        Assert.Equal(0, ModePolicies.For(options.Replication).VotingFaults(options.Group.Faults));

        // Across hosts the link must be authenticated; half a TLS setting is refused too.
        var open = Fails("service: { listen: 127.0.0.1:6380 }\nmode: remus\nremus: { backup: 10.0.0.2:6391 }\nreplicas: [ { command: \"redis-server --port {port}\" } ]");
        Assert.Contains(open.Errors, e => e.Message.Contains("10.0.0.2:6391 is not a loopback address", StringComparison.Ordinal) && e.Message.Contains("remus.tls-certificate", StringComparison.Ordinal));
        var half = Fails("service: { listen: 127.0.0.1:6380 }\nmode: remus\nremus: { backup: 127.0.0.1:6391, tls-certificate: pair.pem }\nreplicas: [ { command: \"redis-server --port {port}\" } ]");
        Assert.Contains(half.Errors, e => e.Message.Contains("give both", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("mode: remus\nreplicas: [ { command: \"redis-server --port {port}\" } ]", "remus: missing; mode remus needs")]
    [InlineData("mode: remus\nremus: { epoch: 25ms }\nreplicas: [ { command: \"redis-server --port {port}\" } ]", "remus.backup: missing")]
    [InlineData("mode: remus\nremus: { backup: 127.0.0.1:6391 }\nreplicas: { count: 2, command: \"redis-server --port {port}\" }", "mode remus runs exactly one replica here")]
    [InlineData("mode: remus\nremus: { backup: 127.0.0.1:6391, epoch: 2s, failover-timeout: 1s }\nreplicas: [ { command: \"redis-server --port {port}\" } ]", "remus.failover-timeout: must be longer than remus.epoch")]
    [InlineData("mode: remus\nremus: { backup: nowhere }\nreplicas: [ { command: \"redis-server --port {port}\" } ]", "remus.backup: 'nowhere' is not an address")]
    [InlineData("mode: remus\nremus: { backup: 127.0.0.1:6391, start-backup: maybe }\nreplicas: [ { command: \"redis-server --port {port}\" } ]", "remus.start-backup: 'maybe' is not true or false")]
    [InlineData("mode: resh\nremus: { backup: 127.0.0.1:6391 }\nreplicas: { count: 3, command: \"redis-server --port {port}\" }", "remus: only mode remus reads this section")]
    public void Remus_mistakes_are_named(string yaml, string expected)
    {
        var e = Fails("service: { listen: 127.0.0.1:6380 }\n" + yaml + "\n");
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Ordering_through_etcd_names_the_cluster_and_the_member()
    {
        var options = ConfigLoader.Load(Issue + "\nordering: { etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379], cluster: redis, member: 2, max-in-flight: 4, max-batch-bytes: 2MiB, lease: 30s, trim: false }\ncheckpoint: { flush: SAVE, files: [dump.rdb], interval: 5s }\n", "t.yaml", "/tmp");
        var ordering = Assert.IsType<Resh.Dresh.EtcdOrderingOptions>(options.Ordering);
        Assert.Equal(["http://10.0.0.1:2379/", "http://10.0.0.2:2379/"], ordering.Endpoints.Select(e => e.ToString()));
        Assert.Equal("redis", ordering.Cluster);
        Assert.Equal(2, ordering.Member);
        Assert.Equal(4, ordering.MaxInFlight);
        Assert.Equal(2L << 40, ordering.FirstSessionId);
        Assert.Equal(TimeSpan.FromSeconds(30), ordering.Lease);
        Assert.False(ordering.Trim);
        Assert.Equal(2 * 1024 * 1024, ordering.MaxBatchBytes);
        Assert.NotNull(options.Group.Checkpoint);
        Assert.Contains(options.Warnings(), w => w.StartsWith("ordering.etcd: http://10.0.0.1:2379/ carries the ordered log across the network in the clear", StringComparison.Ordinal));

        var secured = ConfigLoader.Load(Issue + "\nordering: { etcd: [https://10.0.0.1:2379], cluster: redis, ca-certificate: ca.pem, client-certificate: c.pem, client-key: c.key, user: resh, password-file: pw }\n", "t.yaml", "/tmp");
        Assert.Equal(("/tmp/ca.pem", "/tmp/c.pem", "/tmp/c.key", "resh", "/tmp/pw"), (secured.Ordering!.CaCertificate, secured.Ordering.ClientCertificate, secured.Ordering.ClientKey, secured.Ordering.User, secured.Ordering.PasswordFile));
        Assert.DoesNotContain(secured.Warnings(), w => w.StartsWith("ordering.etcd", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("ordering: { cluster: redis }", "ordering.etcd: missing")]
    [InlineData("ordering: { etcd: [tcp://x:1], cluster: redis }", "ordering.etcd: 'tcp://x:1' is not an etcd client URL")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: 'a b' }", "ordering.cluster: 'a b' must be a name")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, member: 0 }", "ordering.member: '0' is not a whole number from 1 to 1023")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis }\nlog: { fsync: always }", "log: etcd keeps the ordered log")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, lease: 1s }", "ordering.lease: must be 2s to 1h")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, trim: sometimes }", "ordering.trim: 'sometimes' is not true or false")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, max-batch-bytes: 10 }", "ordering.max-batch-bytes: must be 1KiB to 512MiB")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, peer-listen: 10.0.0.1:6391 }", "ordering.peer-listen: 10.0.0.1:6391 is not a loopback address and would serve the whole data set to anyone who asks; set admin-token")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, user: resh }", "ordering.user and ordering.password-file: give both")]
    [InlineData("ordering: { etcd: [http://127.0.0.1:2379], cluster: redis, ca-certificate: ca.pem }", "need https:// etcd URLs")]
    [InlineData("ordering: { etcd: [https://127.0.0.1:2379, http://127.0.0.2:2379], cluster: redis }", "all http:// or all https://")]
    [InlineData("ordering: { etcd: [https://127.0.0.1:2379], cluster: redis, client-certificate: c.pem }", "ordering.client-certificate and ordering.client-key: give both")]
    public void Ordering_mistakes_are_named(string yaml, string expected)
    {
        var e = Fails(Issue + "\n" + yaml + "\n");
        Assert.Contains(e.Errors, x => x.Message.Contains(expected, StringComparison.Ordinal));
    }
}
