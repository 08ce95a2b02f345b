using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Dresh;
using Resh.Memory;
using Resh.Options;

namespace Resh.Cli;

/// <summary>
/// <c>resh memory ...</c>: the operator's side of the transactional memory (docs/memory.md): run its pageserver, list
/// its snapshots, fall the whole cluster back to one.
/// </summary>
internal static class MemoryCommand
{
    private const int ExitOk = 0;
    private const int ExitFailure = 1;
    private const int ExitUsage = 2;

    public static Command Build(Option<LogLevel> logLevel)
    {
        var memory = new Command("memory", "The transactional memory (Resh.Memory): run its pageserver, list its snapshots, fall the cluster back to one.");
        memory.Subcommands.Add(BuildPageServer(logLevel));
        memory.Subcommands.Add(BuildSnapshots());
        memory.Subcommands.Add(BuildFallback());
        return memory;
    }

    private static Option<string> Etcd() => new("--etcd") { Description = "etcd endpoints of the memory's log, comma-separated (http://HOST:2379 or https://...).", Required = true };

    private static Option<string> Cluster() => new("--cluster") { Description = "The memory cluster's name (MemoryNodeOptions.Cluster of its nodes).", Required = true };

    private static Option<string> Store() => new("--store") { Description = "The pageserver's checkpoint store directory.", Required = true };

    private static Command BuildPageServer(Option<LogLevel> logLevel)
    {
        var etcd = Etcd();
        var cluster = Cluster();
        var store = Store();
        var interval = new Option<string>("--interval") { Description = "Time between snapshots (e.g. 10s, 1m).", DefaultValueFactory = _ => "10s" };
        var retention = new Option<string>("--log-retention") { Description = "How long the log after a snapshot is kept before it is truncated.", DefaultValueFactory = _ => "30s" };
        var noGc = new Option<bool>("--no-gc") { Description = "Do not hand unreachable objects to the nodes to free." };
        var ca = new Option<string?>("--etcd-ca") { Description = "CA certificate (PEM) that etcd's certificate must chain to." };
        var cert = new Option<string?>("--etcd-cert") { Description = "Client certificate (PEM) for etcd." };
        var key = new Option<string?>("--etcd-key") { Description = "The client certificate's key (PEM)." };
        var user = new Option<string?>("--etcd-user") { Description = "etcd user (with --etcd-password-file)." };
        var password = new Option<string?>("--etcd-password-file") { Description = "File whose first line is the etcd user's password." };
        var command = new Command("pageserver", "Run the memory's pageserver: a snapshot of the whole memory every --interval into --store while the nodes go on, the log truncated behind, garbage handed to the nodes; on SIGTERM/SIGINT a final snapshot.")
        {
            etcd, cluster, store, interval, retention, noGc, ca, cert, key, user, password,
        };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, errors) =>
        {
            var options = new PageServerOptions
            {
                Cluster = parse.GetValue(cluster)!,
                StorePath = parse.GetValue(store)!,
                Interval = Duration(parse.GetValue(interval)!, "--interval"),
                LogRetention = Duration(parse.GetValue(retention)!, "--log-retention", allowZero: true),
                CollectGarbage = !parse.GetValue(noGc),
            };
            var etcdOptions = EtcdOptions(parse.GetValue(etcd)!, options.Cluster);
            etcdOptions.CaCertificate = parse.GetValue(ca);
            etcdOptions.ClientCertificate = parse.GetValue(cert);
            etcdOptions.ClientKey = parse.GetValue(key);
            etcdOptions.User = parse.GetValue(user);
            etcdOptions.PasswordFile = parse.GetValue(password);
            if (etcdOptions.Validate().Concat(options.Validate()).ToList() is { Count: > 0 } problems)
            {
                throw new ArgumentException(string.Join("; ", problems));
            }

            using var logging = LoggerFactory.Create(b => b.SetMinimumLevel(parse.GetValue(logLevel)).AddSimpleConsole(o => o.SingleLine = true));
            await using var log = new EtcdCommitLog(etcdOptions);
            await using var pageserver = await PageServer.StartAsync(log, options, logging.CreateLogger("Resh.Memory"), ct);
            await output.WriteLineAsync($"resh: pageserver of memory cluster {options.Cluster} at position {pageserver.Position} ({pageserver.ObjectCount} objects); a snapshot every {options.Interval.TotalSeconds:0.###} s into {options.StorePath}");
            try
            {
                await pageserver.RunAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }

            using var final = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var last = await pageserver.SnapshotAsync(final.Token);
            await output.WriteLineAsync($"resh: final snapshot {last.Id} at position {last.Position}: {last.Objects} objects; pageserver stopped");
            return ExitOk;
        }));
        return command;
    }

    private static Command BuildSnapshots()
    {
        var store = Store();
        var cluster = new Option<string?>("--cluster") { Description = "Only this cluster's snapshots." };
        var command = new Command("snapshots", "List the memory snapshots in a store, oldest first, with their cluster and log position.") { store, cluster };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, _) =>
        {
            await using var opened = await CheckpointStore.OpenAsync(parse.GetValue(store)!, new StoreOptions { ReadOnly = true, CreateIfMissing = false }, ct);
            var only = parse.GetValue(cluster);
            var snapshots = (await opened.ListAsync(ct))
                .Where(s => s.Labels.TryGetValue(PageServer.ClusterLabel, out var c) && (only is null || c == only))
                .ToList();
            await output.WriteLineAsync($"{"ID",-16}  {"TIME (UTC)",-19}  {"CLUSTER",-12}  {"POSITION",12}  {"SIZE",12}");
            foreach (var s in snapshots)
            {
                await output.WriteLineAsync($"{s.Id,-16}  {s.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),-19}  {s.Labels[PageServer.ClusterLabel],-12}  {s.Labels.GetValueOrDefault(PageServer.PositionLabel),12}  {s.LogicalBytes,12}");
            }

            await output.WriteLineAsync($"{snapshots.Count} memory snapshots");
            return ExitOk;
        }));
        return command;
    }

    private static Command BuildFallback()
    {
        var etcd = Etcd();
        var cluster = Cluster();
        var store = Store();
        var snapshot = new Option<string>("--snapshot") { Description = "The snapshot's id (or a unique prefix), from resh memory snapshots.", Required = true };
        var command = new Command("fallback", "Fall the whole memory cluster back to a stored snapshot: every node and the pageserver replace their state with it at one log position, and devices void later effects.") { etcd, cluster, store, snapshot };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, _) =>
        {
            var name = parse.GetValue(cluster)!;
            await using var log = new EtcdCommitLog(EtcdOptions(parse.GetValue(etcd)!, name));
            var at = await PageServer.FallBackAsync(log, parse.GetValue(store)!, name, parse.GetValue(snapshot)!, ct);
            await output.WriteLineAsync($"resh: memory cluster {name} falls back to snapshot {parse.GetValue(snapshot)} at log position {at}");
            return ExitOk;
        }));
        return command;
    }

    private static EtcdOrderingOptions EtcdOptions(string endpoints, string cluster)
    {
        var uris = new List<Uri>();
        foreach (var text in endpoints.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"--etcd: '{text}' is not an http(s) URL");
            }

            uris.Add(uri);
        }

        return uris.Count == 0 ? throw new ArgumentException("--etcd: no endpoint given") : new EtcdOrderingOptions { Endpoints = uris, Cluster = cluster };
    }

    private static TimeSpan Duration(string text, string option, bool allowZero = false) =>
        OptionValues.TryParseDuration(text, out var value) && (value > TimeSpan.Zero || (allowZero && value == TimeSpan.Zero))
            ? value
            : throw new ArgumentException($"{option}: '{text}' is not a duration (e.g. 500ms, 10s, 1m)");

    private static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, TextWriter, Task<int>> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var errors = parse.InvocationConfiguration.Error;
        try
        {
            return await body(output, errors);
        }
        catch (ArgumentException e)
        {
            await errors.WriteLineAsync($"error: {e.Message}");
            return ExitUsage;
        }
        catch (Exception e) when (e is CheckpointStoreException or IOException or UnauthorizedAccessException or InvalidOperationException or EtcdAuthException)
        {
            await errors.WriteLineAsync($"error: {e.Message}");
            return ExitFailure;
        }
    }
}
