using System.CommandLine;
using Resh.Checkpoints;
using Resh.Hosting;
using Resh.Ordering;

namespace Resh.Cli;

/// <summary><c>resh log verify|repair CONFIG</c>: the durable log of a stopped resh, read and, when the operator says so, repaired.</summary>
internal static class LogCommand
{
    private const int ExitOk = 0;
    private const int ExitFailure = 1;
    private const int ExitUsage = 2;

    public static Command Build()
    {
        var log = new Command("log", "Durable log tools (with resh stopped): verify, repair.");
        log.Subcommands.Add(BuildVerify());
        log.Subcommands.Add(BuildRepair());
        return log;
    }

    private static Argument<FileInfo> ConfigArgument() => new("CONFIG") { Description = "The YAML configuration file (its state-dir holds the log)." };

    private static Command BuildVerify()
    {
        var configArg = ConfigArgument();
        var command = new Command("verify", "Read every segment of the log; exit 1 when damage would stop the start.") { configArg };
        command.SetAction((parse, ct) => RunAsync(parse, configArg, async (options, output, errors) =>
        {
            var (directory, covered, segments) = await LogMaintenance.InspectAsync(options, ct);
            output.WriteLine($"log {directory}: {segments.Count} segments; newest checkpoint covers {(covered < 0 ? "nothing" : $"through #{covered}")}");
            var blocking = 0;
            for (var i = 0; i < segments.Count; i++)
            {
                var s = segments[i];
                long? nextFirst = i < segments.Count - 1 ? segments[i + 1].First : null;
                var range = s.Entries > 0 ? $"#{s.First}..#{s.FirstUnreadable - 1}" : "no entries";
                var state = s.Damage switch
                {
                    SegmentDamage.None => "intact",
                    SegmentDamage.TornTail when nextFirst is null => $"torn final record after byte {s.ValidLength} (never acknowledged; cut on start)",
                    _ when s.CoveredBy(nextFirst, covered) => $"DAMAGED at byte {s.ValidLength}, covered by the checkpoint (nothing lost)",
                    _ => "DAMAGED",
                };
                output.WriteLine($"  {Path.GetFileName(s.Path)}  {range,-24} {s.Length,12} bytes  {state}");
                if (state == "DAMAGED")
                {
                    blocking++;
                    errors.WriteLine($"error: {DurableLog.DamageMessage(directory, s, nextFirst)}");
                }
            }

            return blocking == 0 ? ExitOk : ExitFailure;
        }));
        return command;
    }

    private static Command BuildRepair()
    {
        var configArg = ConfigArgument();
        var yes = new Option<bool>("--yes") { Description = "Apply the repair; without it, only print what it would do." };
        var command = new Command("repair", "Cut a damaged log after its intact prefix (keeping what the newest checkpoint covers) and say what is lost.") { configArg, yes };
        command.SetAction((parse, ct) => RunAsync(parse, configArg, async (options, output, _) =>
        {
            var apply = parse.GetValue(yes);
            var repair = await LogMaintenance.RepairAsync(options, apply, ct);
            if (repair.Actions.Count == 0)
            {
                output.WriteLine("the log needs no repair");
                return ExitOk;
            }

            foreach (var action in repair.Actions)
            {
                output.WriteLine($"{(repair.Changed ? "done" : "would")}: {action}");
            }

            output.WriteLine($"lost: {repair.Lost}");
            if (!repair.Changed)
            {
                output.WriteLine("nothing changed; run again with --yes to apply");
            }

            return ExitOk;
        }));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, Argument<FileInfo> configArg, Func<ReshOptions, TextWriter, TextWriter, Task<int>> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var errors = parse.InvocationConfiguration.Error;
        if (await ReshCli.LoadAsync(parse.GetValue(configArg)!, errors) is not { } options)
        {
            return ExitUsage;
        }

        if (options.DurableLog is null)
        {
            errors.WriteLine("error: this configuration keeps no durable log (no log: section)");
            return ExitUsage;
        }

        try
        {
            return await body(options, output, errors);
        }
        catch (Exception e) when (e is CheckpointStoreException or IOException or UnauthorizedAccessException)
        {
            errors.WriteLine($"error: {e.Message}");
            return ExitFailure;
        }
    }
}
