using System.Text.RegularExpressions;
using Resh.Hosting;
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

    [Fact]
    public void Every_configuration_key_is_named_in_the_guide()
    {
        var guide = Guide();
        var keys = ReshOptions.Keys.Describe().ToList();
        Assert.True(keys.Count > 50, $"only {keys.Count} keys declared");
        foreach (var key in keys)
        {
            var leaf = key.Path[(key.Path.LastIndexOf('.') + 1)..];
            Assert.True(Regex.IsMatch(guide, $@"(?<![\w-]){Regex.Escape(leaf)}(?![\w-])"), $"{key.Path} is not named in docs/operator-guide.md");
            Assert.False(string.IsNullOrWhiteSpace(key.Help), $"{key.Path} has no help text");
        }
    }
}
