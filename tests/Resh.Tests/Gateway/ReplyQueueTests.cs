using Resh.Gateway;

namespace Resh.Tests.Gateway;

public sealed class ReplyQueueTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Slots_come_out_in_order_and_a_full_queue_holds_the_session_back_until_one_is_read()
    {
        var queue = new ReplyQueue<int>(2);
        await queue.EnqueueAsync(1, CancellationToken.None);
        Assert.True(queue.TryEnqueue(2));
        Assert.False(queue.TryEnqueue(3));

        var third = queue.EnqueueAsync(3, CancellationToken.None).AsTask();
        Assert.False(third.IsCompleted);
        Assert.True(await queue.WaitToReadAsync().AsTask().WaitAsync(Timeout));
        Assert.True(queue.TryRead(out var first));
        await third.WaitAsync(Timeout);

        Assert.True(queue.TryRead(out var second));
        Assert.True(queue.TryRead(out var last));
        Assert.Equal([1, 2, 3], new[] { first, second, last });
        Assert.False(queue.TryRead(out _));
    }

    [Fact]
    public async Task A_waiting_reader_wakes_for_a_slot_and_stops_once_completed_and_drained()
    {
        var queue = new ReplyQueue<string>(8);
        var waiting = queue.WaitToReadAsync().AsTask();
        Assert.True(queue.TryEnqueue("pushed"));
        Assert.True(await waiting.WaitAsync(Timeout));
        Assert.True(queue.TryRead(out var pushed));
        Assert.Equal("pushed", pushed);

        var ending = queue.WaitToReadAsync().AsTask();
        queue.Complete();
        Assert.False(await ending.WaitAsync(Timeout));
    }
}
