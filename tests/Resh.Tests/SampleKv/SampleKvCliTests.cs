using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed partial class SampleKvCliTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void Options_DefaultsAndForms()
    {
        Assert.True(CliOptions.TryParse(["--port", "6400"], out CliOptions options, out _));
        Assert.Equal(new CliOptions(6400, IPAddress.Loopback, null, Variant.A, false), options);

        Assert.True(CliOptions.TryParse(["--variant=B", "--port=0", "--bind", "0.0.0.0", "--dir", "/tmp/x", "--port", "7"], out options, out _));
        Assert.Equal(new CliOptions(7, IPAddress.Any, "/tmp/x", Variant.B, false), options);

        Assert.True(CliOptions.TryParse(["--help"], out options, out _));
        Assert.True(options.ShowHelp);
    }

    [Theory]
    [InlineData(new string[0], "--port is required")]
    [InlineData(new[] { "--port" }, "--port needs a value")]
    [InlineData(new[] { "--port", "x" }, "--port must be")]
    [InlineData(new[] { "--port", "65536" }, "--port must be")]
    [InlineData(new[] { "--port", "-1" }, "--port must be")]
    [InlineData(new[] { "--port", "1", "--variant", "c" }, "--variant must be")]
    [InlineData(new[] { "--port", "1", "--bind", "nowhere" }, "--bind must be")]
    [InlineData(new[] { "--port", "1", "--save", "" }, "unknown argument '--save'")]
    [InlineData(new[] { "6379" }, "unknown argument '6379'")]
    public void Options_RejectBadArguments(string[] args, string message)
    {
        Assert.False(CliOptions.TryParse(args, out _, out string error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--port", "abc")]
    [InlineData("--port", "1", "--variant", "z")]
    [InlineData("--what")]
    public async Task Executable_BadArguments_ExitWith2(params string[] args)
    {
        using Process process = Start(args);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(ProcessTimeout);
        await process.WaitForExitAsync(timeout.Token);

        Assert.Equal(2, process.ExitCode);
        Assert.StartsWith("resh-samplekv: ", await stderr, StringComparison.Ordinal);
        Assert.Equal("", await stdout);
    }

    [Fact]
    public async Task Executable_AnnouncesItself_Serves_AndStopsOnSigterm()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        string directory = Path.Combine(Path.GetTempPath(), "resh-samplekv-cli-" + Guid.NewGuid().ToString("N"), "replica");
        using Process process = Start("--port", "0", "--variant", "b", "--dir", directory);
        try
        {
            using var timeout = new CancellationTokenSource(ProcessTimeout);
            string? line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            Match ready = ReadyLine().Match(line ?? "");
            Assert.True(ready.Success, $"unexpected first line: '{line}'");
            Assert.True(Directory.Exists(directory));

            var endPoint = new IPEndPoint(IPAddress.Loopback, int.Parse(ready.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            await using (RespTestClient client = await RespTestClient.ConnectAsync(endPoint))
            {
                Assert.Equal("+PONG\r\n", await client.CommandAsync("PING"));
                Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "k", "v"));
                Assert.Equal("$1\r\nv\r\n", await client.CommandAsync("GET", "k"));
            }

            using (Process kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(timeout.Token);
            }

            await process.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            Directory.Delete(Path.GetDirectoryName(directory)!, recursive: true);
        }
    }

    [GeneratedRegex(@"^resh-samplekv b listening on 127\.0\.0\.1:(\d+)$")]
    private static partial Regex ReadyLine();

    // The executable is copied next to the tests by the project reference.
    private static Process Start(params string[] args)
    {
        string appHost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "resh-samplekv.exe" : "resh-samplekv");
        ProcessStartInfo start;
        if (File.Exists(appHost))
        {
            start = new ProcessStartInfo(appHost);
        }
        else
        {
            start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet");
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "resh-samplekv.dll"));
        }

        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        return Process.Start(start) ?? throw new InvalidOperationException("resh-samplekv did not start");
    }
}
