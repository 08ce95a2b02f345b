using Resh.Checkpoints;
using Spectre.Console;

namespace Resh.Cli;

/// <summary>
/// A progress bar on the terminal for a long operation (a store's restore or verify, the replay of the log at start),
/// drawn on stderr and only when stderr is a terminal: piped or captured output (scripts, tests, systemd) gets the plain
/// result lines alone.
/// </summary>
internal static class TerminalProgress
{
    public static async Task<T> RunAsync<T>(string label, Func<IProgress<StoreProgress>?, Task<T>> work)
    {
        if (Bar(new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn()) is not { } bar)
        {
            return await work(null);
        }

        return await bar.StartAsync(async context =>
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

    /// <summary>A bar for work the command does not drive itself: <paramref name="poll"/> every quarter second until done or stopped.</summary>
    public static async Task WatchAsync(string label, Func<(long Done, long Total)> poll, CancellationToken ct)
    {
        if (Bar(new RemainingTimeColumn()) is not { } bar)
        {
            return;
        }

        await bar.StartAsync(async context =>
            {
                var task = context.AddTask(label, maxValue: 1);
                while (!ct.IsCancellationRequested)
                {
                    var (done, total) = poll();
                    task.MaxValue = Math.Max(1, total);
                    task.Value = done;
                    if (done >= total)
                    {
                        return;
                    }

                    try
                    {
                        await Task.Delay(250, ct);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            });
    }

    /// <summary>A self-clearing bar on stderr (label, bar, percentage, then <paramref name="more"/>), or null when stderr is not a terminal.</summary>
    private static Progress? Bar(params ProgressColumn[] more) =>
        Console.IsErrorRedirected
            ? null
            : AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }).Progress()
                .AutoClear(true)
                .Columns([new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), .. more]);

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to a context the command does not have).</summary>
    private sealed class Reporter(Action<StoreProgress> report) : IProgress<StoreProgress>
    {
        public void Report(StoreProgress value) => report(value);
    }
}
