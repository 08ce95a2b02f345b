using System.Diagnostics;

namespace Resh.IntegrationTests;

/// <summary>The README's install: `dotnet pack` makes resh a .NET tool, `dotnet tool install` takes it, and `resh demo` runs.</summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("resh-tool-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_packed_tool_installs_and_its_demo_passes()
    {
        // --no-build: the solution is built already (by the test command), and a rebuild would rewrite the binaries other tests run.
        var packages = Path.Combine(_work, "packages");
        var (code, output) = await RunAsync("dotnet", ["pack", Path.Combine(Tools.RepoRoot, "src", "Resh.Cli"), "-c", "Release", "--no-build", "-o", packages, "--nologo"], TimeSpan.FromMinutes(3));
        Assert.True(code == 0, output);
        var package = Assert.Single(Directory.GetFiles(packages, "resh.*.nupkg"));

        var tools = Path.Combine(_work, "tools");
        (code, output) = await RunAsync("dotnet", ["tool", "install", "resh", "--tool-path", tools, "--add-source", packages, "--version", Path.GetFileNameWithoutExtension(package)["resh.".Length..]], TimeSpan.FromMinutes(3));
        Assert.True(code == 0, output);
        Assert.Contains("resh", output, StringComparison.Ordinal);

        (code, output) = await RunAsync(Path.Combine(tools, "resh"), ["demo"], TimeSpan.FromMinutes(3));
        Assert.True(code == 0, output);
        Assert.Contains("result: PASS", output, StringComparison.Ordinal);
    }

    private async Task<(int Code, string Output)> RunAsync(string program, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _work,
        };

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }
}
