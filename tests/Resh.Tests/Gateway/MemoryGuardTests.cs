using Microsoft.Extensions.Logging.Abstractions;
using Resh.Gateway;

namespace Resh.Tests.Gateway;

public sealed class MemoryGuardTests
{
    [Fact]
    public void Over_the_limit_requests_are_refused_and_relief_is_asked_for_until_the_heap_is_below_again()
    {
        var guard = new MemoryGuard(100L << 20, NullLogger.Instance);
        var pressure = new List<long>();
        guard.Pressure += pressure.Add;
        var heap = 50L << 20;

        guard.Check(() => heap);
        Assert.False(guard.Exceeded);

        heap = 150L << 20;
        guard.Check(() => heap);
        Assert.True(guard.Exceeded);
        guard.Check(() => heap);
        Assert.Equal([150L << 20, 150L << 20], pressure);

        heap = 90L << 20;
        guard.Check(() => heap);
        Assert.False(guard.Exceeded);
        Assert.Equal(2, pressure.Count);
    }

    [Fact]
    public void A_heap_over_the_limit_only_with_garbage_refuses_nothing()
    {
        var guard = new MemoryGuard(100L << 20, NullLogger.Instance);
        var readings = new Queue<long>([150L << 20, 60L << 20, 140L << 20]);

        // Over before the collection, under after it: garbage. Then over again within the second: still judged by
        // the measurement after the last collection.
        guard.Check(readings.Dequeue);
        Assert.False(guard.Exceeded);
        guard.Check(readings.Dequeue);
        Assert.False(guard.Exceeded);
    }

    [Fact]
    public void Without_a_limit_nothing_is_ever_refused()
    {
        var guard = new MemoryGuard(0, NullLogger.Instance);
        guard.Check(() => long.MaxValue);
        Assert.False(guard.Exceeded);
    }
}
