using System.Net;
using System.Net.Sockets;
using Resh.Domains;

namespace Resh.Tests.Domains;

public sealed class CommandTemplateTests
{
    private static readonly Dictionary<string, string> Values = new()
    {
        ["port"] = "7001",
        ["dir"] = "/var/lib/resh/r 1",
        ["id"] = "r1",
        ["empty"] = "",
    };

    private static string[] Expand(string template) => CommandTemplate.Expand(template, Values).ToArray();

    [Fact]
    public void SplitsOnBlanks_AndSubstitutesPlaceholdersInsideWords()
    {
        Assert.Equal(
            ["redis-server", "--port", "7001", "--dir", "/var/lib/resh/r 1", "--logfile", "r1.log", "--name=r1-7001"],
            Expand("redis-server  --port {port}\t--dir {dir} --logfile {id}.log --name={id}-{port}"));
    }

    [Fact]
    public void EmptyQuotes_YieldAnEmptyArgument()
    {
        Assert.Equal(["redis-server", "--save", "", "--appendonly", "no"], Expand("redis-server --save \"\" --appendonly no"));
        Assert.Equal(["a", "", "b"], Expand("a '' b"));
        Assert.Equal(["x", ""], Expand("x {empty}"));
    }

    [Fact]
    public void Quotes_KeepBlanks_AndJoinWithAdjacentText()
    {
        Assert.Equal(["--dir=/var/lib/resh/r 1/data", "it's"], Expand("--dir=\"{dir}/data\" it\"'\"s"));
        Assert.Equal(["a b c", "$HOME"], Expand("'a b c' '$HOME'"));
        Assert.Equal(["say \"hi\"", "back\\slash"], Expand("\"say \\\"hi\\\"\" \"back\\\\slash\""));
        Assert.Equal(["ke\\ep"], Expand("\"ke\\ep\""));
    }

    [Fact]
    public void Backslash_EscapesOutsideQuotes_AndContinuesLines()
    {
        Assert.Equal(["a b", "c"], Expand("a\\ b \\\n c"));
        Assert.Equal(["{port}", "{port}", "{port}"], Expand("\\{port} {{port} '{{port}'"));
    }

    [Fact]
    public void BracesThatAreNotPlaceholders_AreLiteral()
    {
        Assert.Equal(["{\"a\":1}", "}", "{", "{ x}"], Expand("'{\"a\":1}' } { '{ x}'"));
    }

    [Fact]
    public void EmptyTemplate_YieldsNoArguments() => Assert.Empty(Expand("  \t "));

    [Fact]
    public void UnknownPlaceholder_IsAnError_NamingItAndItsPosition()
    {
        var e = Assert.Throws<CommandTemplateException>(() => Expand("redis-server --port {prot}"));
        Assert.Equal(20, e.Position);
        Assert.Contains("{prot}", e.Message, StringComparison.Ordinal);
        Assert.Contains("position 20", e.Message, StringComparison.Ordinal);
        Assert.Contains("{port}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis-server --save \"x", 20, "double quote")]
    [InlineData("a 'b", 2, "single quote")]
    [InlineData("a b\\", 3, "backslash")]
    public void Unbalanced_IsAnError_NamingThePosition(string template, int position, string what)
    {
        var e = Assert.Throws<CommandTemplateException>(() => Expand(template));
        Assert.Equal(position, e.Position);
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
        Assert.Contains($"position {position}", e.Message, StringComparison.Ordinal);
    }
}

public sealed class PortAllocatorTests
{
    [Fact]
    public void GetFreeTcpPort_ReturnsABindablePort()
    {
        var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);

        Assert.InRange(port, 1, 65535);
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        listener.Stop();
    }

    [Fact]
    public void GetFreeTcpPort_DefaultsToLoopback() => Assert.InRange(PortAllocator.GetFreeTcpPort(), 1, 65535);
}
