using Resh.Protocols.Resp;

namespace Resh.Tests.Docs;

/// <summary>docs/compatibility.md is what the code does with every command of Redis 7.0.</summary>
public sealed class CompatibilityTests
{
    /// <summary>The repository's root (where Resh.slnx is).</summary>
    internal static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Resh.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return dir.FullName;
    }

    private static string[] Commands() =>
        [.. File.ReadAllLines(Path.Combine(Root(), "tests", "Resh.Tests", "Docs", "redis-7.0-commands.txt")).Where(l => l.Length > 0 && l[0] != '#')];

    [Fact]
    public void The_table_lists_every_command_as_the_code_treats_it()
    {
        var expected = RespCompatibility.Render(Commands(), "7.0.15");
        var path = Path.Combine(Root(), "docs", "compatibility.md");
        if (Environment.GetEnvironmentVariable("RESH_WRITE_COMPATIBILITY") == "1")
        {
            File.WriteAllText(path, expected);
        }

        Assert.True(expected == File.ReadAllText(path), "docs/compatibility.md differs from the code; run this test with RESH_WRITE_COMPATIBILITY=1 and review the diff");
    }

    [Theory]
    [InlineData("ttl", CommandTreatment.Rewritten)]
    [InlineData("spop", CommandTreatment.Rewritten)]
    [InlineData("scan", CommandTreatment.Rewritten)]
    [InlineData("info", CommandTreatment.Unvoted)]
    [InlineData("time", CommandTreatment.Gateway)]
    [InlineData("client|setname", CommandTreatment.Gateway)]
    [InlineData("client|kill", CommandTreatment.Gateway)]
    [InlineData("client|pause", CommandTreatment.Gateway)]
    [InlineData("client|tracking", CommandTreatment.Refused)]
    [InlineData("smembers", CommandTreatment.ComparedUnordered)]
    [InlineData("get", CommandTreatment.PassedThrough)]
    [InlineData("blpop", CommandTreatment.Rewritten)]
    [InlineData("watch", CommandTreatment.Rewritten)]
    [InlineData("monitor", CommandTreatment.Gateway)]
    [InlineData("debug", CommandTreatment.Refused)]
    [InlineData("config|rewrite", CommandTreatment.Refused)]
    public void Treatments_follow_the_dispatch(string command, CommandTreatment treatment) =>
        Assert.Equal(treatment, RespCompatibility.Describe(command).Treatment);

    [Fact]
    public void Every_refusal_says_why()
    {
        foreach (var command in Commands())
        {
            var (treatment, note) = RespCompatibility.Describe(command);
            Assert.True(treatment != CommandTreatment.Refused || note.Length > 10, command);
        }
    }
}
