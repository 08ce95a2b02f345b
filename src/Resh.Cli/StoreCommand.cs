using System.CommandLine;
using System.Globalization;
using Resh.Checkpoints;

namespace Resh.Cli;

/// <summary><c>resh store ...</c>: list, stats, verify, prune, restore and snapshot a checkpoint store.</summary>
internal static class StoreCommand
{
    private const int ExitOk = 0;
    private const int ExitFailure = 1;
    private const int ExitUsage = 2;

    public static Command Build()
    {
        var store = new Command("store", "Checkpoint store tools: list, stats, verify, prune, restore, snapshot.");
        store.Subcommands.Add(BuildList());
        store.Subcommands.Add(BuildStats());
        store.Subcommands.Add(BuildVerify());
        store.Subcommands.Add(BuildPrune());
        store.Subcommands.Add(BuildRestore());
        store.Subcommands.Add(BuildSnapshot());
        return store;
    }

    private static Argument<string> StoreArgument() => new("STORE") { Description = "Directory of the checkpoint store." };

    private static Command BuildList()
    {
        var storeArg = StoreArgument();
        var command = new Command("list", "List the committed snapshots, oldest first.") { storeArg };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, _) =>
        {
            await using var store = await OpenReaderAsync(parse.GetValue(storeArg)!, ct);
            var snapshots = await store.ListAsync(ct);
            output.WriteLine($"{"ID",-16}  {"TIME (UTC)",-19}  {"FILES",7}  {"SIZE",10}  {"ADDED",10}  LABELS");
            foreach (var s in snapshots)
            {
                var labels = string.Join(" ", s.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
                output.WriteLine($"{s.Id,-16}  {s.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),-19}  {s.Files,7}  {FormatBytes(s.LogicalBytes),10}  {FormatBytes(s.AddedBytes),10}  {labels}");
            }

            output.WriteLine($"{snapshots.Count} snapshots");
            return ExitOk;
        }));
        return command;
    }

    private static Command BuildStats()
    {
        var storeArg = StoreArgument();
        var packs = new Option<bool>("--packs") { Description = "Also list every pack with its live and dead bytes." };
        var command = new Command("stats", "Show sizes, the deduplication ratio and reclaimable space.") { storeArg, packs };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, _) =>
        {
            await using var store = await OpenReaderAsync(parse.GetValue(storeArg)!, ct);
            var stats = await store.StatsAsync(ct);
            output.WriteLine($"snapshots    {stats.Snapshots}");
            output.WriteLine($"packs        {stats.Packs} ({FormatBytes(stats.PackBytes)})");
            output.WriteLine($"chunks       {stats.Chunks} indexed, {stats.LiveChunks} live");
            output.WriteLine($"logical      {FormatBytes(stats.LogicalBytes)} (sum of the snapshots' file sizes)");
            output.WriteLine($"unique       {FormatBytes(stats.UniqueBytes)} (live chunks, uncompressed)");
            output.WriteLine($"stored       {FormatBytes(stats.TotalBytes)} (every file of the store)");
            output.WriteLine($"dead         {FormatBytes(stats.DeadBytes)} (reclaimable by compaction)");
            output.WriteLine($"dedup ratio  {stats.DedupRatio.ToString("0.00", CultureInfo.InvariantCulture)}x (logical / stored)");
            if (parse.GetValue(packs))
            {
                output.WriteLine();
                output.WriteLine($"{"PACK",-32}  {"CREATED (UTC)",-19}  {"SIZE",10}  {"LIVE",10}  {"DEAD",10}  DEAD%");
                foreach (var p in stats.PackDetails)
                {
                    output.WriteLine($"{p.Id,-32}  {p.Created.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),-19}  {FormatBytes(p.Size),10}  {FormatBytes(p.LiveBytes),10}  {FormatBytes(p.DeadBytes),10}  {(p.DeadFraction * 100).ToString("0.0", CultureInfo.InvariantCulture)}");
                }
            }

            return ExitOk;
        }));
        return command;
    }

    private static Command BuildVerify()
    {
        var storeArg = StoreArgument();
        var command = new Command("verify", "Read and check everything; exit 1 and name what is damaged if anything is.") { storeArg };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, errors) =>
        {
            await using var store = await OpenReaderAsync(parse.GetValue(storeArg)!, ct);
            var report = await TerminalProgress.RunAsync("verifying packs", progress => store.VerifyAsync(ct, progress));
            output.WriteLine($"checked {report.SnapshotsChecked} snapshots, {report.PacksChecked} packs, {report.ChunksChecked} chunks, {FormatBytes(report.BytesRead)} read");
            foreach (var file in report.DamagedIndexFiles)
            {
                errors.WriteLine($"damaged index file {file.Id}: {file.Reason}");
            }

            foreach (var pack in report.DamagedPacks)
            {
                errors.WriteLine($"damaged pack {pack.Id}: {pack.Reason}");
            }

            foreach (var chunk in report.DamagedChunks)
            {
                errors.WriteLine(chunk.Pack.Length == 0
                    ? $"damaged chunk {chunk.Chunk}: {chunk.Reason}"
                    : $"damaged chunk {chunk.Chunk} in pack {chunk.Pack}: {chunk.Reason}");
            }

            foreach (var snapshot in report.DamagedSnapshots)
            {
                var files = snapshot.DamagedFiles.Count == 0
                    ? ""
                    : "; files: " + string.Join(", ", snapshot.DamagedFiles.Take(20)) + (snapshot.DamagedFiles.Count > 20 ? $", ... ({snapshot.DamagedFiles.Count} in all)" : "");
                errors.WriteLine($"damaged snapshot {snapshot.Id}: {snapshot.Reason}{files}");
            }

            if (report.UnreferencedPacks.Count > 0)
            {
                output.WriteLine($"{report.UnreferencedPacks.Count} unreferenced packs (left by an interrupted write; the next writer removes them)");
            }

            if (report.IsHealthy)
            {
                output.WriteLine("no damage found");
                return ExitOk;
            }

            errors.WriteLine($"store {store.StorePath} is DAMAGED");
            return ExitFailure;
        }));
        return command;
    }

    private static Command BuildPrune()
    {
        var storeArg = StoreArgument();
        var keepWithin = new Option<string?>("--keep-within") { Description = "Keep every snapshot younger than this (e.g. 1h, 2d, 1d12h)." };
        var keepLast = new Option<int>("--keep-last") { Description = "Keep the N newest snapshots." };
        var keepHourly = new Option<int>("--keep-hourly") { Description = "Keep the newest snapshot of each of the last N hours that have one." };
        var keepDaily = new Option<int>("--keep-daily") { Description = "Keep the newest snapshot of each of the last N days that have one." };
        var density = new Option<string?>("--density") { Description = "Beyond --keep-within, keep at most one snapshot per 2^k BASE intervals in age bucket k (e.g. 1h)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be removed; change nothing." };
        var noCompact = new Option<bool>("--no-compact") { Description = "Only remove snapshots; leave garbage collection of their chunks for later." };
        var command = new Command("prune", "Remove the snapshots the retention rules do not keep, then compact the packs (newest snapshot always kept).")
        {
            storeArg, keepWithin, keepLast, keepHourly, keepDaily, density, dryRun, noCompact,
        };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, errors) =>
        {
            var policy = new RetentionPolicy
            {
                KeepLast = parse.GetValue(keepLast),
                KeepHourly = parse.GetValue(keepHourly),
                KeepDaily = parse.GetValue(keepDaily),
            };
            if (parse.GetValue(keepWithin) is { } within)
            {
                if (!RetentionPolicy.TryParseDuration(within, out var span))
                {
                    errors.WriteLine($"error: --keep-within: '{within}' is not a duration (examples: 90s, 15m, 1h, 7d, 2w, 1d12h)");
                    return ExitUsage;
                }

                policy.KeepWithin = span;
            }

            if (parse.GetValue(density) is { } densityText)
            {
                if (!RetentionPolicy.TryParseDuration(densityText, out var span))
                {
                    errors.WriteLine($"error: --density: '{densityText}' is not a duration (examples: 1m, 1h, 1d)");
                    return ExitUsage;
                }

                policy.DensityBase = span;
            }

            var problems = policy.Validate();
            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                {
                    errors.WriteLine($"error: {problem}");
                }

                return ExitUsage;
            }

            var isDryRun = parse.GetValue(dryRun);
            await using var store = isDryRun
                ? await OpenReaderAsync(parse.GetValue(storeArg)!, ct)
                : await CheckpointStore.OpenAsync(parse.GetValue(storeArg)!, new StoreOptions { CreateIfMissing = false }, ct);
            var result = await store.PruneAsync(policy, isDryRun, ct);
            foreach (var s in result.Removed.OrderBy(s => s.Time))
            {
                output.WriteLine($"{(isDryRun ? "would remove" : "removed")} {s.Id}  {FormatTime(s.Time)}");
            }

            foreach (var s in result.Kept.OrderBy(s => s.Time))
            {
                output.WriteLine($"keep {s.Id}  {FormatTime(s.Time)}  ({string.Join(", ", result.Reasons[s.Id])})");
            }

            output.WriteLine($"{result.Removed.Count} snapshots {(isDryRun ? "would be removed" : "removed")}, {result.Kept.Count} kept");
            if (isDryRun)
            {
                output.WriteLine("dry run: nothing was changed");
            }
            else if (!parse.GetValue(noCompact))
            {
                var compaction = await store.CompactAsync(new CompactionOptions(), ct);
                output.WriteLine($"compaction: deleted {compaction.PacksDeleted} dead packs, rewrote {compaction.PacksRewritten} packs ({FormatBytes(compaction.BytesCopied)} copied), freed {FormatBytes(compaction.BytesFreed)}");
                foreach (var pack in compaction.SkippedDamagedPacks)
                {
                    errors.WriteLine($"warning: pack {pack} was left alone because a live chunk in it is damaged; run `resh store verify`");
                }
            }

            return ExitOk;
        }));
        return command;
    }

    private static Command BuildRestore()
    {
        var storeArg = StoreArgument();
        var snapshotArg = new Argument<string>("SNAPSHOT") { Description = "Snapshot id, a unique prefix of one (4+ hex digits), or 'latest'." };
        var dirArg = new Argument<string>("DIR") { Description = "Target directory; must be missing or empty." };
        var command = new Command("restore", "Restore a snapshot bit for bit into DIR, checking every chunk.") { storeArg, snapshotArg, dirArg };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, _) =>
        {
            await using var store = await OpenReaderAsync(parse.GetValue(storeArg)!, ct);
            var info = await TerminalProgress.RunAsync("restoring", progress => store.RestoreAsync(parse.GetValue(snapshotArg)!, parse.GetValue(dirArg)!, ct, progress));
            output.WriteLine($"restored snapshot {info.Id} ({info.Files} files, {FormatBytes(info.LogicalBytes)}) to {Path.GetFullPath(parse.GetValue(dirArg)!)}");
            return ExitOk;
        }));
        return command;
    }

    private static Command BuildSnapshot()
    {
        var storeArg = StoreArgument();
        var dirArg = new Argument<string>("DIR") { Description = "Directory to snapshot." };
        var labels = new Option<string[]>("--label") { Description = "Label KEY=VALUE stored with the snapshot; repeatable." };
        var compression = new Option<ChunkCompression>("--compression") { Description = "Compress new chunks: Zstd (default), Brotli or None.", DefaultValueFactory = _ => ChunkCompression.Zstd };
        var level = new Option<int>("--compression-level") { Description = "Zstandard level, 1 (default, fastest) to 19.", DefaultValueFactory = _ => StoreOptions.DefaultCompressionLevel };
        var command = new Command("snapshot", "Take a snapshot of DIR (creates the store if needed).") { storeArg, dirArg, labels, compression, level };
        command.SetAction((parse, ct) => RunAsync(parse, async (output, errors) =>
        {
            var labelMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in parse.GetValue(labels) ?? [])
            {
                var eq = label.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    errors.WriteLine($"error: --label '{label}' must be KEY=VALUE");
                    return ExitUsage;
                }

                labelMap[label[..eq]] = label[(eq + 1)..];
            }

            await using var store = await CheckpointStore.OpenAsync(parse.GetValue(storeArg)!, new StoreOptions { Compression = parse.GetValue(compression), CompressionLevel = parse.GetValue(level) }, ct);
            var info = await store.SnapshotAsync(parse.GetValue(dirArg)!, labelMap, ct);
            output.WriteLine($"snapshot {info.Id}: {info.Files} files, {FormatBytes(info.LogicalBytes)}; {info.NewChunks} new chunks ({FormatBytes(info.AddedBytes)} added), {info.ReusedChunks} reused");
            return ExitOk;
        }));
        return command;
    }

    private static Task<CheckpointStore> OpenReaderAsync(string path, CancellationToken ct) =>
        CheckpointStore.OpenAsync(path, new StoreOptions { ReadOnly = true, CreateIfMissing = false }, ct);

    private static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, TextWriter, Task<int>> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var errors = parse.InvocationConfiguration.Error;
        try
        {
            return await body(output, errors);
        }
        catch (Exception e) when (e is CheckpointStoreException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            errors.WriteLine($"error: {e.Message}");
            return ExitFailure;
        }
        catch (ArgumentException e)
        {
            errors.WriteLine($"error: {e.Message}");
            return ExitUsage;
        }
        catch (OperationCanceledException)
        {
            errors.WriteLine("cancelled");
            return ExitFailure;
        }
    }

    private static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    internal static string FormatBytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : $"{value.ToString("0.0", CultureInfo.InvariantCulture)} {units[unit]}";
    }
}
