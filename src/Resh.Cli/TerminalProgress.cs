using Resh.Checkpoints;
using Spectre.Console;

namespace Resh.Cli;

/// <summary>
/// A progress bar on the terminal for a long store operation (restore, verify), drawn on stderr and only when stderr is
/// a terminal: piped or captured output (scripts, tests, systemd) gets the plain result lines alone.
/// </summary>
internal static class TerminalProgress
{
    public static async Task<T> RunAsync<T>(string label, Func<IProgress<StoreProgress>?, Task<T>> work)
    {
        if (Console.IsErrorRedirected)
        {
            return await work(null);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        return await console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(label, maxValue: 1);
                var gate = new Lock();
                return await work(new Reporter(p =>
                {
                    lock (gate)
                    {
                        task.MaxValue = Math.Max(1, p.Total);
                        task.Value = p.Done;
                    }
                }));
            });
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to a context the command does not have).</summary>
    private sealed class Reporter(Action<StoreProgress> report) : IProgress<StoreProgress>
    {
        public void Report(StoreProgress value) => report(value);
    }
}
