using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Resh.SampleKv;

internal static class Program
{
    private const int ExitUsage = 2;
    private const int ExitFailure = 1;

    public static async Task<int> Main(string[] args)
    {
        if (!CliOptions.TryParse(args, out CliOptions options, out string error))
        {
            await Console.Error.WriteLineAsync($"resh-samplekv: {error}");
            await Console.Error.WriteLineAsync(CliOptions.Usage);
            return ExitUsage;
        }

        if (options.ShowHelp)
        {
            await Console.Out.WriteLineAsync(CliOptions.Usage);
            return 0;
        }

        if (options.Directory is not null)
        {
            try
            {
                Directory.CreateDirectory(options.Directory);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                await Console.Error.WriteLineAsync($"resh-samplekv: cannot use --dir '{options.Directory}': {ex.Message}");
                return ExitUsage;
            }
        }

        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }

        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        KvServer server;
        try
        {
            server = await KvServer.StartAsync(new IPEndPoint(options.Bind, options.Port), options.Variant);
        }
        catch (SocketException ex)
        {
            await Console.Error.WriteLineAsync($"resh-samplekv: cannot listen on {new IPEndPoint(options.Bind, options.Port)}: {ex.Message}");
            return ExitFailure;
        }

        await using (server)
        {
            await Console.Out.WriteLineAsync($"resh-samplekv {options.Variant.ToName()} listening on {server.EndPoint}");
            await Console.Out.FlushAsync();
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // SIGTERM or Ctrl+C: stop serving and exit cleanly.
            }
        }

        return 0;
    }
}
