using System.Buffers;
using System.Text;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

/// <summary>WATCH decided in log order, and blocked sessions woken by writes, from the log alone.</summary>
public sealed class RespOrderTests
{
    private static byte[] Command(params string[] args) => Resh.Clients.RespClient.Encode(args);

    private static byte[] WatchMarker(params string[] keys)
    {
        var output = new ArrayBufferWriter<byte>();
        RespScripts.WriteEval(output, RespOrder.WatchScript, keys.Length, args: 0);
        foreach (var key in keys)
        {
            RespEncoding.WriteBulk(output, Encoding.ASCII.GetBytes(key));
        }

        return output.WrittenSpan.ToArray();
    }

    private static byte[] Block(params string[] commands) =>
        [.. Command("MULTI"), .. commands.SelectMany(c => Command(c.Split(' '))), .. Command("EXEC")];

    [Fact]
    public void A_write_to_a_watched_key_between_watch_and_exec_aborts_the_block_and_nothing_else_does()
    {
        var order = new RespOrder();
        Assert.Null(order.Request(1, 0, WatchMarker("k")));
        Assert.Null(order.Request(2, 0, Command("SET", "other", "x")));
        Assert.Null(order.Request(2, 1, Command("SET", "k", "x")));
        Assert.Null(order.Request(1, 0, Block("INCR k")));
        Assert.Equal(0, order.Watching);

        Assert.Null(order.Request(1, 0, WatchMarker("k")));
        Assert.Null(order.Request(2, 0, Command("SET", "k", "y")));
        var aborted = order.Request(1, 0, Block("INCR k", "GET k"));
        Assert.NotNull(aborted);
        var text = Encoding.ASCII.GetString(aborted.Value.Span);
        Assert.Equal(3, text.Split("PING").Length - 1);
        Assert.Contains("watch aborted", text, StringComparison.Ordinal);
        Assert.Equal(4, RespKeySpecs.Commands(aborted.Value.Span).Count);
    }

    [Theory]
    [InlineData("FLUSHDB")]
    [InlineData("FLUSHALL")]
    [InlineData("RENAME a k")]
    [InlineData("DEL x k")]
    [InlineData("EVAL s 1 k")]
    [InlineData("LMPOP 2 x k LEFT")]
    public void Writes_that_reach_the_key_count(string write)
    {
        var order = new RespOrder();
        order.Request(1, 0, WatchMarker("k"));
        order.Request(2, 0, Command(write.Split(' ')));
        Assert.NotNull(order.Request(1, 0, Block("GET k")));
    }

    [Fact]
    public void Reads_the_session_closing_and_unwatch_leave_nothing_behind()
    {
        var order = new RespOrder();
        order.Request(1, 0, WatchMarker("k"));
        order.Request(2, 0, Command("GET", "k"));
        order.Request(2, 0, Command("EXISTS", "k"));
        Assert.Null(order.Request(1, 0, Block("INCR k")));

        order.Request(3, 0, WatchMarker("k"));
        order.SessionClosed(3);
        Assert.Equal(0, order.Watching);
    }

    [Fact]
    public async Task A_blocked_session_is_woken_by_a_push_to_one_of_its_keys_only()
    {
        var order = new RespOrder();
        using var blocked = order.Block(0, [Encoding.ASCII.GetBytes("jobs")]);
        order.Request(5, 0, Command("RPUSH", "other", "x"));
        order.Request(5, 1, Command("RPUSH", "jobs", "x"));
        Assert.False(blocked.Touched.IsCompleted);
        order.Request(5, 0, Command("RPUSH", "jobs", "x"));
        await blocked.Touched.WaitAsync(TimeSpan.FromSeconds(5));
        blocked.Rearm();
        Assert.False(blocked.Touched.IsCompleted);
    }

    [Fact]
    public void Pops_and_a_blocked_sessions_own_retries_wake_nobody_and_a_move_wakes_its_destination_only()
    {
        var order = new RespOrder();
        using var source = order.Block(0, [Encoding.ASCII.GetBytes("src")]);
        using var target = order.Block(0, [Encoding.ASCII.GetBytes("dst")]);
        order.Request(0, 0, Command("EVAL", Encoding.ASCII.GetString(RespScripts.BlockingPop), "1", "src", "LPOP", "0", "0"));
        order.Request(0, 0, Command("LMPOP", "1", "src", "LEFT"));
        order.Request(0, 0, Command("RPOPLPUSH", "src", "src"));
        Assert.False(source.Touched.IsCompleted);
        order.Request(0, 0, Command("RPOPLPUSH", "src", "dst"));
        Assert.False(source.Touched.IsCompleted);
        Assert.True(target.Touched.IsCompleted);
    }
}
