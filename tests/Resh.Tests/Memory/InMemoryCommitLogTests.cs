using Resh.Memory;

namespace Resh.Tests.Memory;

public sealed class InMemoryCommitLogTests : CommitLogContract
{
    protected override Task<ICommitLog> CreateAsync() => Task.FromResult<ICommitLog>(new InMemoryCommitLog());
}

public sealed class MemoryOptionsTests
{
    [Fact]
    public void Bad_options_are_refused_with_the_setting_they_name()
    {
        var node = new MemoryNodeOptions { Node = 0, Cluster = "", ReserveAfter = 0, MaxAttempts = 0, Devices = [new FileAppendDevice("d", "/tmp/a"), new FileAppendDevice("d", "/tmp/b")] }.Validate();
        Assert.Equal(5, node.Count);
        Assert.Contains(node, e => e.StartsWith("MemoryNodeOptions.Node", StringComparison.Ordinal));
        Assert.Contains(node, e => e.Contains("d repeat", StringComparison.Ordinal));
        Assert.Empty(new MemoryNodeOptions().Validate());

        var pageserver = new PageServerOptions { StorePath = "", Interval = TimeSpan.FromSeconds(-1), LogRetention = TimeSpan.FromSeconds(-1), Retention = new() }.Validate();
        Assert.Equal(4, pageserver.Count);
        Assert.Contains(pageserver, e => e.StartsWith("PageServerOptions.Retention: retention needs", StringComparison.Ordinal));
        Assert.Empty(new PageServerOptions { StorePath = "/tmp/x" }.Validate());
    }

    [Fact]
    public async Task A_node_with_bad_options_does_not_start()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => MemoryNode.StartAsync(new InMemoryCommitLog(), new MemoryNodeOptions { Node = 70000 }));
        Assert.Contains("1 to 65535", e.Message, StringComparison.Ordinal);
    }
}
