using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Resh.Composition;

/// <summary>Runs an operator's hook command (takeover-command, release-command): `/bin/sh -c`, within 10 s, never throwing.</summary>
public static partial class CommandRunner
{
    /// <summary>Runs <paramref name="command"/> if given; a failure or a timeout is logged (naming <paramref name="setting"/>), never thrown.</summary>
    public static async Task RunAsync(string? command, string setting, ILogger logger, CancellationToken cancellationToken = default)
    {
        if (command is null)
        {
            return;
        }

        try
        {
            using var process = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var errors = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            if (process.ExitCode != 0)
            {
                CommandFailed(logger, setting, $"'{command}' exited with {process.ExitCode}: {(await errors).Trim()}");
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or OperationCanceledException or InvalidOperationException)
        {
            CommandFailed(logger, setting, $"'{command}': {e.Message}");
        }
    }

    [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "{Setting} failed: {Reason}")]
    private static partial void CommandFailed(ILogger logger, string setting, string reason);
}
