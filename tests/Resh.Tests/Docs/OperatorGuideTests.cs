using Resh.Protocols.Resp;

namespace Resh.Tests.Docs;

/// <summary>The operator guide lists what the code does.</summary>
public sealed class OperatorGuideTests
{
    private static string Guide()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Resh.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return File.ReadAllText(Path.Combine(dir.FullName, "docs", "operator-guide.md"));
    }

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
