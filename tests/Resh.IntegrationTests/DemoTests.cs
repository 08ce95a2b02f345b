using Resh.Cli;

namespace Resh.IntegrationTests;

/// <summary>The README's main command: `resh demo` masks a crash and a corruption and says so.</summary>
public sealed class DemoTests
{
    [Fact]
    public async Task The_demo_with_the_built_in_service_masks_both_faults_and_passes()
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await ReshCli.RunAsync(["demo"], output, errors).WaitAsync(TimeSpan.FromMinutes(3));
        var text = output.ToString();
        Assert.True(code == 0, text + errors);
        Assert.Contains("injected crash into r1", text, StringComparison.Ordinal);
        Assert.Contains("injected corrupt into r2", text, StringComparison.Ordinal);
        Assert.Contains("0 wrong, 0 client errors", text, StringComparison.Ordinal);
        Assert.Contains("+replica-recovered     r1", text, StringComparison.Ordinal);
        Assert.Contains("+replica-recovered     r2", text, StringComparison.Ordinal);
        Assert.Contains("result: PASS", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_demo_with_redis_server_passes_too()
    {
        Tools.Require("redis-server", "apt-get install redis-server");
        var output = new StringWriter();
        var errors = new StringWriter();
        var code = await ReshCli.RunAsync(["demo", "--service", "redis"], output, errors).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(code == 0, output.ToString() + errors);
        Assert.Contains("result: PASS", output.ToString(), StringComparison.Ordinal);
    }
}
