using Resh.Protocols.Resp;

namespace Resh.Tests.Docs;

/// <summary>The operator guide lists what the code does.</summary>
public sealed class OperatorGuideTests
{
    private static string Guide() => File.ReadAllText(Path.Combine(CompatibilityTests.Root(), "docs", "operator-guide.md"));

    [Fact]
    public void Every_refused_command_is_documented_with_its_reason()
    {
        var guide = Guide();
        foreach (var (command, reason) in RespProfile.Defaults)
        {
            Assert.Contains($"| `{command.Replace('|', ' ')}` | {reason} |", guide, StringComparison.Ordinal);
        }
    }
}
