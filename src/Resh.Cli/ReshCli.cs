// Over 600 lines: the command-line verbs (run, status, inject, checkpoint, backup, store, ...) and their usage text, each a few lines; one table of verbs reads better than one file each.
using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Domains;
using Resh.Hosting;
using Resh.Modes;

namespace Resh.Cli;

/// <summary>The `resh` command line.</summary>
public static class ReshCli
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitUsage = 2;

    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var output = stdout ?? Console.Out;
        var errors = stderr ?? Console.Error;
        var root = new RootCommand("resh: runs replicas of an unmodified network service behind a voting gateway and masks faulty ones.");

        var logLevel = new Option<LogLevel>("--log-level") { Description = "Minimum log level (Trace, Debug, Information, Warning, Error).", DefaultValueFactory = _ => LogLevel.Information, Recursive = true };
        root.Options.Add(logLevel);

        // run
        var configArg = new Argument<FileInfo>("CONFIG") { Description = "The YAML configuration file." };
        var replacesOption = new Option<int?>("--replaces") { Description = "D-RESH: once this new host serves, the member (by number) that leaves its part to it: it drains its clients and leaves the cluster, as resh migrate --to on its host would." };
        var run = new Command("run", "Start the replicas and the gateway described by CONFIG; stops on SIGTERM/SIGINT or `resh stop`.") { configArg, replacesOption };
        run.SetAction((parse, ct) => RunCommandAsync(parse.GetValue(configArg)!, parse.GetValue(replacesOption), parse.GetValue(logLevel), output, errors, ct));
        root.Subcommands.Add(run);

        // backup (mode remus)
        var listenOption = new Option<string>("--listen") { Description = "HOST:PORT the primary's backup link connects to (one of the config's remus.backup addresses).", Required = true };
        var backupConfig = new Option<FileInfo>("--config", "-c") { Description = "The primary's configuration file (mode remus).", Required = true };
        var backupAdmin = new Option<string?>("--admin") { Description = "This backup's own admin endpoint HOST:PORT (loopback); the configured one is opened after a takeover." };
        var stateDir = new Option<string?>("--state-dir") { Description = "The backup's state directory (default: the config's state-dir + /backup)." };
        var backup = new Command("backup", "Mode remus: hold a paused copy of the primary's replica, fed every epoch; take over when the primary is lost.") { listenOption, backupConfig, backupAdmin, stateDir };
        backup.SetAction((parse, ct) => BackupCommandAsync(parse.GetValue(listenOption)!, parse.GetValue(backupConfig)!, parse.GetValue(backupAdmin), parse.GetValue(stateDir), parse.GetValue(logLevel), output, errors, ct));
        root.Subcommands.Add(backup);

        // receive (the target of resh migrate)
        var receiveListen = new Option<string>("--listen") { Description = "HOST:PORT the migrating gateway connects to (the address given to resh migrate --to).", Required = true };
        var receiveConfig = new Option<FileInfo>("--config", "-c") { Description = "The migrating service's configuration file (mode resh, spare or remus); its service address is opened after the handover, its admin address at once when it is free on this host." };
        receiveConfig.Required = true;
        var receiveAdmin = new Option<string?>("--admin") { Description = "This target's own admin endpoint HOST:PORT (loopback) while it receives; the configured one is opened after the handover." };
        var receiveState = new Option<string?>("--state-dir") { Description = "The target's state directory (default: the config's state-dir + /receive)." };
        var receive = new Command("receive", "Modes resh, spare and remus: the target of resh migrate. Receive the running service (its checkpoint and log, in pre-copy rounds), keep every replica paused and fed, and serve it once it is handed over.") { receiveListen, receiveConfig, receiveAdmin, receiveState };
        receive.SetAction((parse, ct) => BackupCommandAsync(parse.GetValue(receiveListen)!, parse.GetValue(receiveConfig)!, parse.GetValue(receiveAdmin), parse.GetValue(receiveState), parse.GetValue(logLevel), output, errors, ct, receive: true));
        root.Subcommands.Add(receive);

        // demo
        var service = new Option<string>("--service") { Description = "samplekv (built in, default) or redis (needs redis-server).", DefaultValueFactory = _ => "samplekv" };
        service.AcceptOnlyFromAmong("samplekv", "redis");
        var demo = new Command("demo", "Run three replicas, inject a crash and a corruption during a short workload, and show what was masked and recovered.") { service };
        demo.SetAction((parse, ct) => Demo.RunAsync(parse.GetValue(service)!, parse.GetValue(logLevel), output, errors, ct));
        root.Subcommands.Add(demo);

        // admin clients
        var adminOption = new Option<string?>("--admin") { Description = "Admin endpoint HOST:PORT (default: from --config, else 127.0.0.1:6390)." };
        var configOption = new Option<FileInfo?>("--config", "-c") { Description = "Read the admin address and token from this configuration file." };
        var tokenOption = new Option<string?>("--token") { Description = "Bearer token for admin mutations (default: admin-token from --config, or RESH_ADMIN_TOKEN)." };
        var json = new Option<bool>("--json") { Description = "Print the raw JSON." };

        var status = new Command("status", "Show the mode, the log head and every replica's state.") { adminOption, configOption, json };
        status.SetAction((parse, ct) => StatusAsync(Admin(parse, adminOption, configOption, tokenOption), parse.GetValue(json), output, errors, ct));
        root.Subcommands.Add(status);

        var replicaArg = new Argument<string>("REPLICA") { Description = "Replica id, e.g. r2." };
        var faultArg = new Argument<string>("FAULT") { Description = "crash | hang | corrupt | slow" };
        faultArg.AcceptOnlyFromAmong("crash", "hang", "corrupt", "slow");
        var inject = new Command("inject", "Fault drill: crash (SIGKILL), hang (freeze), corrupt (write a wrong value straight into the replica), slow (delay its replies).") { replicaArg, faultArg, adminOption, configOption, tokenOption };
        inject.SetAction((parse, ct) => InjectAsync(Admin(parse, adminOption, configOption, tokenOption), parse.GetValue(replicaArg)!, parse.GetValue(faultArg)!, output, errors, ct));
        root.Subcommands.Add(inject);

        var checkpoint = new Command("checkpoint", "Take a service checkpoint now and wait until f+1 replicas verified it and it is stored.") { adminOption, configOption, tokenOption };
        checkpoint.SetAction((parse, ct) => CheckpointAsync(Admin(parse, adminOption, configOption, tokenOption), output, errors, ct));
        root.Subcommands.Add(checkpoint);

        var stop = new Command("stop", "Controlled shutdown: stop accepting clients, deliver pending replies, stop the replicas.") { adminOption, configOption, tokenOption };
        stop.SetAction((parse, ct) => StopAsync(Admin(parse, adminOption, configOption, tokenOption), output, errors, ct));
        root.Subcommands.Add(stop);

        var reload = new Command("reload", "Read the configuration file again and apply what can change while serving (client limits, admin-token, timeouts, the checkpoint schedule and retention); name the changed keys that need a restart. The same as SIGHUP or systemctl reload.") { adminOption, configOption, tokenOption };
        reload.SetAction((parse, ct) => ReloadAsync(Admin(parse, adminOption, configOption, tokenOption), output, errors, ct));
        root.Subcommands.Add(reload);

        var switchover = new Command("switchover", "Mode remus: hand the service to the up-to-date backup now (the primary drains, the backup takes over at once, nothing acknowledged is lost).") { adminOption, configOption, tokenOption };
        switchover.SetAction((parse, ct) => SwitchoverAsync(Admin(parse, adminOption, configOption, tokenOption), output, errors, ct));
        root.Subcommands.Add(switchover);

        var migrateTo = new Option<string>("--to") { Description = "HOST:PORT where resh receive waits on the target host (D-RESH: the service address of the member that takes this host's part).", Required = true };
        var migrate = new Command("migrate", "Modes resh, spare and remus: move the running service to the host where resh receive waits: pre-copy rounds while it serves, then a short stop-and-copy; the target takes over at the next log position. D-RESH: this host drains its clients and leaves its part to another serving member.") { migrateTo, adminOption, configOption, tokenOption };
        migrate.SetAction((parse, ct) => MigrateAsync(Admin(parse, adminOption, configOption, tokenOption), parse.GetValue(migrateTo)!, output, errors, ct));
        root.Subcommands.Add(migrate);

        // config validate
        var validateArg = new Argument<FileInfo>("CONFIG") { Description = "The YAML configuration file." };
        var validate = new Command("validate", "Check CONFIG; exit 0 when valid, 2 with one line per problem otherwise.") { validateArg };
        validate.SetAction(parse => Validate(parse.GetValue(validateArg)!, output, errors));
        var keys = new Command("keys", "List every configuration key with what it sets; [reload] marks those a reload applies while serving.");
        keys.SetAction(_ =>
        {
            foreach (var key in ReshOptions.Keys.Describe())
            {
                output.WriteLine($"{key.Path,-42} {key.Help}{(key.Required is { } example ? $" (required, e.g. '{example}')" : "")}{(ReshHost.IsReloadable(key.Path) ? " [reload]" : "")}");
            }

            return 0;
        });
        var config = new Command("config", "Configuration tools.") { validate, keys };
        root.Subcommands.Add(config);
        root.Subcommands.Add(StoreCommand.Build());
        root.Subcommands.Add(MemoryCommand.Build(logLevel));
        root.Subcommands.Add(LogCommand.Build());

        // link-certificate (links between hosts: the Remus pair, D-RESH checkpoint peers)
        var certArg = new Argument<FileInfo>("CERT") { Description = "Where to write the certificate (PEM)." };
        var keyArg = new Argument<FileInfo>("KEY") { Description = "Where to write its private key (PEM, mode 600)." };
        var days = new Option<int>("--days") { Description = "Validity in days (default 3650).", DefaultValueFactory = _ => 3650 };
        var linkCertificate = new Command("link-certificate", "Write a new certificate and key for hosts to share on a link: a Remus pair (remus.tls-certificate, remus.tls-key) or D-RESH checkpoint peers (ordering.peer-tls-certificate, ordering.peer-tls-key).") { certArg, keyArg, days };
        linkCertificate.SetAction(parse =>
        {
            var (cert, key) = (parse.GetValue(certArg)!, parse.GetValue(keyArg)!);
            if (cert.Exists || key.Exists || parse.GetValue(days) < 1)
            {
                errors.WriteLine($"error: {(parse.GetValue(days) < 1 ? "--days must be 1 or more" : $"{(cert.Exists ? cert : key).FullName} exists; not overwritten")}");
                return ExitUsage;
            }

            PinnedTls.WriteNewPair(cert.FullName, key.FullName, TimeSpan.FromDays(parse.GetValue(days)));
            output.WriteLine($"wrote {cert.FullName} and {key.FullName}; copy both to every host of the link and name them in remus.tls-certificate and remus.tls-key (a Remus pair) or ordering.peer-tls-certificate and ordering.peer-tls-key (D-RESH peers)");
            return ExitOk;
        });
        root.Subcommands.Add(linkCertificate);

        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = errors });
    }

    internal static ILoggerFactory CreateLoggerFactory(LogLevel level) => LoggerFactory.Create(b =>
    {
        b.SetMinimumLevel(level);
        b.AddFilter("Microsoft", level > LogLevel.Warning ? level : LogLevel.Warning);
        b.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
    });

    /// <summary>Reads the configuration; prints every problem and returns null when it is not valid.</summary>
    internal static async Task<ReshOptions?> LoadAsync(FileInfo file, TextWriter errors)
    {
        try
        {
            return ConfigLoader.LoadFile(file.FullName);
        }
        catch (ConfigException e)
        {
            await ReportAsync(e, errors);
            return null;
        }
    }

    private static async Task ReportAsync(ConfigException e, TextWriter errors)
    {
        foreach (var error in e.Errors)
        {
            await errors.WriteLineAsync($"error: {error}");
        }
    }

    private static async Task<int> RunCommandAsync(FileInfo file, int? replaces, LogLevel level, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        ReshOptions options;
        IReadOnlyDictionary<string, string> values;
        try
        {
            (options, values) = ConfigLoader.LoadFileWithValues(file.FullName);
        }
        catch (ConfigException e)
        {
            await ReportAsync(e, errors);
            return ExitUsage;
        }

        if (replaces is not null)
        {
            if (options.Ordering is not { } ordering)
            {
                await errors.WriteLineAsync($"resh: --replaces: only a D-RESH host (ordering: etcd) takes the place of a member; {file.Name} orders on this host");
                return ExitUsage;
            }

            ordering.Replaces = replaces;
            if (ordering.Validate() is [_, ..] problems)
            {
                await errors.WriteLineAsync("resh: " + string.Join("; ", problems));
                return ExitUsage;
            }
        }

        using var loggerFactory = CreateLoggerFactory(level);
        await using var host = new ReshHost(options, loggerFactory);
        var reloader = new ConfigReloader(file, host, values, output, errors);
        host.Reloader = reloader.ReloadAsync;
        using var signals = RouteSignals(host, reloader);
        if (options.Replication.Mode == ReplicationMode.Remus && options.Replication.Remus.StartBackup)
        {
            await output.WriteLineAsync($"resh: starting the backup on {options.Replication.Remus.Backups[0]} ({StartBackupProcess(file.FullName, options)})");
        }

        try
        {
            await host.StartAsync(ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return await StartFailedAsync(errors, e);
        }

        var serving = $"serving {options.Protocol} on {host.ListenEndPoint} with {options.Group.Replicas.Count} replicas (f={options.Group.Faults}); admin {host.AdminEndPoint?.ToString() ?? "off"}";
        await output.WriteLineAsync("resh: " + serving);
        Systemd.Ready(serving);
        using var served = CancellationTokenSource.CreateLinkedTokenSource(ct, host.ShutdownRequested);
        var replay = ReplayProgress.ShowAsync(() => host.Status(), served.Token);
        int exit;
        try
        {
            exit = await ServeUntilStoppedAsync(host, output, errors, ct);
        }
        finally
        {
            await served.CancelAsync();
            await replay;
        }

        return await AfterHandoverAsync(host, file, options, exit, level, output, errors, ct);
    }

    /// <summary>
    /// A start that failed: one line, no stack trace, exit 2. The expected failures (a replica that does not start, a
    /// port in use, a damaged log, a locked or damaged store) carry their own message; anything else is named by type.
    /// </summary>
    private static async Task<int> StartFailedAsync(TextWriter errors, Exception e)
    {
        var expected = e is DomainStartException or InvalidOperationException or CommandTemplateException or IOException or TimeoutException
            or CheckpointStoreException or InvalidDataException or UnauthorizedAccessException or ArgumentException;
        await errors.WriteLineAsync(expected ? $"error: {e.Message}" : $"error: could not start: {e.GetType().Name}: {e.Message}");
        return ExitUsage;
    }

    /// <summary>SIGTERM and SIGINT ask the host for a controlled shutdown; SIGHUP (with a reloader) reloads the configuration.</summary>
    private static IDisposable RouteSignals(ReshHost host, ConfigReloader? reloader = null)
    {
        var sighup = reloader is null ? null : PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            _ = Task.Run(() => reloader.ReloadAsync(CancellationToken.None));
        });
        var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            host.RequestShutdown();
        });
        var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            host.RequestShutdown();
        });
        return new Signals(sigterm, sigint, sighup);
    }

    private sealed class Signals(params PosixSignalRegistration?[] registrations) : IDisposable
    {
        public void Dispose()
        {
            foreach (var registration in registrations)
            {
                registration?.Dispose();
            }
        }
    }

    private static async Task<int> ServeUntilStoppedAsync(ReshHost host, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, CancellationTokenSource.CreateLinkedTokenSource(ct, host.ShutdownRequested).Token);
        }
        catch (OperationCanceledException)
        {
        }

        var fenced = host.IsFenced;
        Systemd.Stopping();
        await host.StopAsync();
        if (fenced)
        {
            await errors.WriteLineAsync("error: fenced: a newer primary took over; this one stopped without serving (see /events +fenced)");
            return ExitFailure;
        }

        await output.WriteLineAsync("resh: stopped");
        return ExitOk;
    }

    /// <summary>`resh backup`: waits for the primary, then either stops with it or takes over and serves.</summary>
    /// <param name="receive">`resh receive`: the target of a migration (mode resh, spare or remus) rather than a Remus backup.</param>
    private static async Task<int> BackupCommandAsync(string listen, FileInfo file, string? admin, string? stateDirectory, LogLevel level, TextWriter output, TextWriter errors, CancellationToken ct, bool receive = false)
    {
        if (await LoadAsync(file, errors) is not { } options)
        {
            return ExitUsage;
        }

        if (receive ? options.Replication.Mode is not (ReplicationMode.Resh or ReplicationMode.Spare or ReplicationMode.Remus) : options.Replication.Mode != ReplicationMode.Remus)
        {
            await errors.WriteLineAsync(receive
                ? $"error: {file}: resh receive takes mode resh, spare or remus (it is {options.Replication.Name})"
                : $"error: {file}: resh backup needs mode: remus (it is {options.Replication.Name})");
            return ExitUsage;
        }

        if (!IPEndPoint.TryParse(listen, out var listenAt) || listenAt.Port == 0)
        {
            await errors.WriteLineAsync($"error: --listen: '{listen}' is not HOST:PORT");
            return ExitUsage;
        }

        IPEndPoint? adminAt = null;
        if (admin is not null && (!IPEndPoint.TryParse(admin, out adminAt) || !IPAddress.IsLoopback(adminAt.Address)))
        {
            await errors.WriteLineAsync($"error: --admin: '{admin}' is not a loopback HOST:PORT");
            return ExitUsage;
        }

        options.Group.StateDirectory = stateDirectory is not null ? Path.GetFullPath(stateDirectory) : Path.Combine(options.Group.StateDirectory, receive ? "receive" : "backup");
        if (options.Group.Checkpoint is { StorePath: not null } checkpoint)
        {
            // The primary's store is its own; the backup keeps what it receives in its state directory.
            checkpoint.StorePath = null;
        }

        using var loggerFactory = CreateLoggerFactory(level);
        await using var host = new ReshHost(options, loggerFactory);
        using var signals = RouteSignals(host);
        bool serving;
        try
        {
            await output.WriteLineAsync(receive ? $"resh: waiting on {listenAt} for the service to migrate here" : $"resh: backup waiting for the primary on {listenAt}");
            serving = receive ? await host.RunReceiveAsync(listenAt, adminAt, ct) : await host.RunBackupAsync(listenAt, adminAt, ct);
        }
        catch (OperationCanceledException)
        {
            await host.StopAsync();
            await output.WriteLineAsync("resh: stopped");
            return ExitOk;
        }
        catch (Exception e)
        {
            return await StartFailedAsync(errors, e);
        }

        if (!serving)
        {
            await host.StopAsync();
            await output.WriteLineAsync(receive ? "resh: the source ended the migration; stopped" : "resh: the primary stopped; backup stopped");
            return ExitOk;
        }

        await output.WriteLineAsync($"resh: {(receive ? "migrated here" : "took over")}; serving {options.Protocol} on {host.ListenEndPoint}; admin {host.AdminEndPoint?.ToString() ?? "off"}");
        var exit = await ServeUntilStoppedAsync(host, output, errors, ct);
        return await AfterHandoverAsync(host, file, options, exit, level, output, errors, ct);
    }

    /// <summary>
    /// After a switchover this gateway handed its service to the backup: it becomes the new backup, at the
    /// remus.backup address that is this machine's (not the one it handed to), as `resh backup` would; otherwise
    /// <paramref name="exit"/> as it was.
    /// </summary>
    private static async Task<int> AfterHandoverAsync(ReshHost host, FileInfo file, ReshOptions options, int exit, LogLevel level, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        if (host.HandedOverTo is not { } to || exit != ExitOk || ct.IsCancellationRequested)
        {
            return exit;
        }

        if (options.Replication.Remus.Backups.Count == 0 || !host.StandsByAfterHandover)
        {
            // A migration (any mode, or a D-RESH host leaving): there is no backup role to take up here; a Remus primary's
            // backup follows the service to the target.
            await output.WriteLineAsync(options.Replication.Remus.Backups.Count == 0 ? $"resh: handed the service to {to}" : $"resh: handed the service to {to}; its backup follows it there, and this host retires");
            return exit;
        }

        var local = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(n => n.GetIPProperties().UnicastAddresses).Select(a => a.Address).ToHashSet();
        if (options.Replication.Remus.Backups.FirstOrDefault(b => b.ToString() != to && local.Contains(b.Address)) is not { } own)
        {
            await output.WriteLineAsync($"resh: handed the service to {to}; no other remus.backup address is on this machine, so this gateway does not stand by as its backup");
            return exit;
        }

        await host.DisposeAsync();
        await output.WriteLineAsync($"resh: handed the service to {to}; standing by as its backup on {own}");
        return await BackupCommandAsync(own.ToString(), file, null, null, level, output, errors, ct);
    }

    /// <summary>
    /// remus.start-backup: `resh backup` for the first backup address on this machine, in its own session so
    /// that it outlives this process (it must survive a crash of the primary to take over); it stops when the
    /// primary stops in a controlled way. Its output goes to STATE-DIR/logs/backup.log.
    /// </summary>
    private static string StartBackupProcess(string configFile, ReshOptions options)
    {
        var logs = Path.Combine(options.Group.StateDirectory, "logs");
        Directory.CreateDirectory(logs);
        var log = Path.Combine(logs, "backup.log");
        var self = Environment.ProcessPath ?? "dotnet";
        List<string> command = Path.GetFileNameWithoutExtension(self) == "dotnet" ? [self, typeof(ReshCli).Assembly.Location] : [self];
        command.AddRange(["backup", "--listen", options.Replication.Remus.Backups[0].ToString(), "--config", configFile]);
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in (string[])["-c", "exec setsid \"$@\" >>\"$RESH_BACKUP_LOG\" 2>&1 </dev/null", "sh", .. command])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["RESH_BACKUP_LOG"] = log;
        using var process = System.Diagnostics.Process.Start(start)!;
        return $"pid {process.Id}, log {log}";
    }

    private static int Validate(FileInfo file, TextWriter output, TextWriter errors)
    {
        try
        {
            var options = ConfigLoader.LoadFile(file.FullName);
            output.WriteLine($"{file}: valid (mode {options.Replication.Name}, f={options.Group.Faults}, {options.Group.Replicas.Count} replicas, {options.Protocol} on {options.Gateway.Listen})");
            foreach (var warning in options.Warnings())
            {
                errors.WriteLine($"warning: {warning}");
            }

            return ExitOk;
        }
        catch (ConfigException e)
        {
            foreach (var error in e.Errors)
            {
                errors.WriteLine($"error: {error}");
            }

            return ExitUsage;
        }
    }

    // ---- admin client ---------------------------------------------------------------------

    internal sealed record AdminTarget(Uri BaseAddress, string? Token, string? Error);

    private static AdminTarget Admin(ParseResult parse, Option<string?> admin, Option<FileInfo?> config, Option<string?> token)
    {
        var address = parse.GetValue(admin);
        var bearer = parse.GetValue(token) ?? Environment.GetEnvironmentVariable("RESH_ADMIN_TOKEN");
        if (address is null && parse.GetValue(config) is { } file)
        {
            try
            {
                var options = ConfigLoader.LoadFile(file.FullName);
                if (options.Admin is null)
                {
                    return new AdminTarget(new Uri("http://127.0.0.1:6390"), bearer, $"{file}: has no admin: address");
                }

                address = options.Admin.ToString();
                bearer ??= options.AdminToken;
            }
            catch (ConfigException e)
            {
                return new AdminTarget(new Uri("http://127.0.0.1:6390"), bearer, e.Message);
            }
        }

        address ??= "127.0.0.1:6390";
        if (!IPEndPoint.TryParse(address, out var ep) || ep.Port == 0)
        {
            return new AdminTarget(new Uri("http://127.0.0.1:6390"), bearer, $"--admin: '{address}' is not HOST:PORT");
        }

        return new AdminTarget(new Uri($"http://{ep}/"), bearer, null);
    }

    private static HttpClient Http(AdminTarget target)
    {
        var http = new HttpClient { BaseAddress = target.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Add(Resh.Admin.AdminGuard.Header, "1");
        if (!string.IsNullOrEmpty(target.Token))
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", target.Token);
        }

        return http;
    }

    private static async Task<int> StatusAsync(AdminTarget target, bool raw, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        if (target.Error is not null)
        {
            await errors.WriteLineAsync($"error: {target.Error}");
            return ExitUsage;
        }

        using var http = Http(target);
        try
        {
            var text = await http.GetStringAsync("status", ct);
            if (raw)
            {
                await output.WriteLineAsync(text);
                return ExitOk;
            }

            var status = JsonSerializer.Deserialize<Resh.Admin.ReshStatus>(text, Resh.Admin.AdminServer.Json)!;
            await output.WriteLineAsync(StatusTable.Render(status));
            return ExitOk;
        }
        catch (HttpRequestException e)
        {
            await errors.WriteLineAsync($"error: cannot reach the admin endpoint {target.BaseAddress}: {e.Message}; is `resh run` running with admin: set?");
            return ExitFailure;
        }
    }

    private static Task<int> InjectAsync(AdminTarget target, string replica, string fault, TextWriter output, TextWriter errors, CancellationToken ct) =>
        PostAsync(target, "inject", JsonContent.Create(new { replica, fault }), TimeSpan.FromSeconds(30), output, errors, root =>
            $"{replica}: {fault}: {root.GetProperty("detail").GetString()}", ct);

    private static Task<int> CheckpointAsync(AdminTarget target, TextWriter output, TextWriter errors, CancellationToken ct) =>
        PostAsync(target, "checkpoint", null, TimeSpan.FromMinutes(15), output, errors, root =>
            $"checkpoint #{root.GetProperty("sequence").GetInt64()} stored as {root.GetProperty("snapshotId").GetString()}", ct);

    private static Task<int> ReloadAsync(AdminTarget target, TextWriter output, TextWriter errors, CancellationToken ct) =>
        PostAsync(target, "reload", null, TimeSpan.FromSeconds(60), output, errors, root =>
            "resh: " + root.Deserialize<ReloadOutcome>(Resh.Admin.AdminServer.Json), ct);

    /// <summary>POSTs to the admin endpoint; prints <paramref name="describe"/> of a JSON answer, or its error.</summary>
    private static async Task<int> PostAsync(AdminTarget target, string path, HttpContent? content, TimeSpan timeout, TextWriter output, TextWriter errors, Func<JsonElement, string> describe, CancellationToken ct)
    {
        if (target.Error is not null)
        {
            await errors.WriteLineAsync($"error: {target.Error}");
            return ExitUsage;
        }

        using var http = Http(target);
        http.Timeout = timeout;
        try
        {
            using var response = await http.PostAsync(path, content, ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            using var doc = JsonDocument.Parse(body);
            if (!response.IsSuccessStatusCode)
            {
                var message = doc.RootElement.TryGetProperty("error", out var e) ? e.GetString() : body;
                await errors.WriteLineAsync($"error: {message}");
                return ExitFailure;
            }

            await output.WriteLineAsync(describe(doc.RootElement));
            return ExitOk;
        }
        catch (HttpRequestException e)
        {
            await errors.WriteLineAsync($"error: cannot reach the admin endpoint {target.BaseAddress}: {e.Message}");
            return ExitFailure;
        }
    }

    private static async Task<int> MigrateAsync(AdminTarget target, string to, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        if (!IPEndPoint.TryParse(to, out var at) || at.Port == 0)
        {
            await errors.WriteLineAsync($"error: --to: '{to}' is not HOST:PORT");
            return ExitUsage;
        }

        await output.WriteLineAsync($"resh: migrating to {at}");
        return await PostAsync(target, "migrate", JsonContent.Create(new { to = at.ToString() }), TimeSpan.FromHours(1), output, errors, root =>
        {
            if (root.GetProperty("phase").GetString() == "leaving")
            {
                return $"resh: {root.GetProperty("ended").GetString()}; this host drains its clients and leaves the cluster to {at}";
            }

            var lines = new System.Text.StringBuilder();
            foreach (var round in root.GetProperty("rounds").EnumerateArray())
            {
                lines.AppendLine(string.Create(CultureInfo.InvariantCulture, $"  round {round.GetProperty("number").GetInt32()}: {round.GetProperty("entries").GetInt64()} entries, {round.GetProperty("bytes").GetInt64()} bytes, {round.GetProperty("milliseconds").GetDouble():0} ms"));
            }

            return $"{lines}resh: pre-copy done ({root.GetProperty("ended").GetString()}; {root.GetProperty("bytesSent").GetInt64()} bytes sent); the gateway drains its clients, ships the rest and hands the service to {at}";
        }, ct);
    }

    private static Task<int> SwitchoverAsync(AdminTarget target, TextWriter output, TextWriter errors, CancellationToken ct) =>
        PostAsync(target, "switchover", "resh: switchover requested; the primary drains its clients and hands the service to the backup", "no switchover", output, errors, ct);

    private static Task<int> StopAsync(AdminTarget target, TextWriter output, TextWriter errors, CancellationToken ct) =>
        PostAsync(target, "shutdown", "resh: shutdown requested", "shutdown refused", output, errors, ct);

    /// <summary>A POST to the admin endpoint that starts something: <paramref name="done"/> when accepted, else the endpoint's reason.</summary>
    private static async Task<int> PostAsync(AdminTarget target, string path, string done, string refused, TextWriter output, TextWriter errors, CancellationToken ct)
    {
        if (target.Error is not null)
        {
            await errors.WriteLineAsync($"error: {target.Error}");
            return ExitUsage;
        }

        using var http = Http(target);
        try
        {
            using var response = await http.PostAsync(path, null, ct);
            if (!response.IsSuccessStatusCode)
            {
                var body = await response.Content.ReadAsStringAsync(ct);
                await errors.WriteLineAsync($"error: {refused}: {Reason(body) ?? $"{(int)response.StatusCode}: {body}"}");
                return ExitFailure;
            }

            await output.WriteLineAsync(done);
            return ExitOk;
        }
        catch (HttpRequestException e)
        {
            await errors.WriteLineAsync($"error: cannot reach the admin endpoint {target.BaseAddress}: {e.Message}");
            return ExitFailure;
        }
    }

    /// <summary>The "error" of an admin endpoint's JSON answer, or null.</summary>
    private static string? Reason(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var error) ? error.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
