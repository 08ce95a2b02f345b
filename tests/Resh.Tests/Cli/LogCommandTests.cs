using System.Text;
using Resh.Cli;
using Resh.Ordering;

namespace Resh.Tests.Cli;

/// <summary><c>resh run</c> on a damaged durable log, and <c>resh log verify|repair</c>; no replica is started.</summary>
public sealed class LogCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "resh-logcli-" + Guid.NewGuid().ToString("N"));

    public LogCommandTests()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllText(Config, $$"""
            service: { protocol: resp, listen: 127.0.0.1:{{FreePort()}} }
            admin: 127.0.0.1:{{FreePort()}}
            state-dir: {{_dir}}/state
            log: { fsync: always }
            checkpoint: off
            replicas:
              count: 3
              command: redis-server --port {port} --bind 127.0.0.1 --dir {dir} --save "" --appendonly no
            """);
    }

    private string Config => Path.Combine(_dir, "resh.yaml");

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private string LogDir => Path.Combine(_dir, "state", "log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_damaged_log_stops_the_start_with_one_line_and_verify_and_repair_say_what_is_lost()
    {
        var segment = await WriteDamagedLogAsync(entries: 100, damagedAt: 40);

        var (code, output, errors) = await RunAsync("run", Config);
        Assert.Equal(2, code);
        var line = Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ordered log", line, StringComparison.Ordinal);
        Assert.Contains(Path.GetFileName(segment), line, StringComparison.Ordinal);
        Assert.Contains("entries from #40 on cannot be read", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", errors, StringComparison.Ordinal);
        Assert.DoesNotContain("serving", output, StringComparison.Ordinal);

        (code, output, _) = await RunAsync("log", "verify", Config);
        Assert.Equal(1, code);
        Assert.Contains("#0..#39", output, StringComparison.Ordinal);
        Assert.Contains("DAMAGED", output, StringComparison.Ordinal);

        var before = await File.ReadAllBytesAsync(segment);
        (code, output, _) = await RunAsync("log", "repair", Config);
        Assert.Equal(0, code);
        Assert.Contains("would: cut", output, StringComparison.Ordinal);
        Assert.Contains("lost: entries from #40 on (59 intact records followed the damage", output, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(segment));

        (code, output, _) = await RunAsync("log", "repair", Config, "--yes");
        Assert.Equal(0, code);
        Assert.Contains("done: cut", output, StringComparison.Ordinal);

        (code, output, _) = await RunAsync("log", "verify", Config);
        Assert.Equal(0, code);
        Assert.Contains("intact", output, StringComparison.Ordinal);
        (code, output, _) = await RunAsync("log", "repair", Config);
        Assert.Equal((0, "the log needs no repair"), (code, output.Trim()));
    }

    [Fact]
    public async Task A_store_locked_by_another_writer_stops_the_start_with_one_line()
    {
        var store = Path.Combine(_dir, "store");
        File.WriteAllText(Config, File.ReadAllText(Config).Replace("checkpoint: off", $"checkpoint: {{ flush: SAVE, files: [dump.rdb], interval: 5s, store: {store} }}", StringComparison.Ordinal));
        await using var holder = await Resh.Checkpoints.CheckpointStore.OpenAsync(store);

        var (code, output, errors) = await RunAsync("run", Config);
        Assert.Equal(2, code);
        var line = Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("is locked by another writer", line, StringComparison.Ordinal);
        Assert.DoesNotContain("serving", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Log_commands_refuse_a_configuration_without_a_durable_log()
    {
        File.WriteAllText(Config, File.ReadAllText(Config).Replace("log: { fsync: always }\n", "", StringComparison.Ordinal));
        var (code, _, errors) = await RunAsync("log", "verify", Config);
        Assert.Equal(2, code);
        Assert.Contains("keeps no durable log", errors, StringComparison.Ordinal);
    }

    private async Task<string> WriteDamagedLogAsync(int entries, int damagedAt)
    {
        var log = new OrderedLog();
        var written = Enumerable.Range(0, entries).Select(i => new LogEntry(LogEventKind.Request, 1, 0, Encoding.ASCII.GetBytes($"*1\r\n$4\r\nPING\r\n{i}"), 1)).ToList();
        await using (var durable = DurableLog.Open(new DurableLogOptions { Directory = LogDir }))
        {
            log.AttachDurable(durable);
            foreach (var e in written)
            {
                log.Append(e);
            }

            await Tools.WaitUntilAsync(() => durable.DurableCount == entries, TimeSpan.FromSeconds(10));
        }

        var segment = Directory.GetFiles(LogDir).Single();
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[written.Take(damagedAt).Sum(e => 12 + LogEntryCodec.EncodedLength(e)) + 25] ^= 0x08;
        await File.WriteAllBytesAsync(segment, bytes);
        return segment;
    }

    private static async Task<(int Code, string Output, string Errors)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await ReshCli.RunAsync([.. args, "--log-level", "None"], output, errors).WaitAsync(TimeSpan.FromMinutes(1));
        return (code, output.ToString(), errors.ToString());
    }
}
