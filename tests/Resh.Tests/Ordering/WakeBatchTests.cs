using Resh.Ordering;

namespace Resh.Tests.Ordering;

public sealed class WakeBatchTests
{
    [Fact]
    public void Wakes_deferred_in_a_batch_run_when_it_ends_in_order()
    {
        var woken = new List<int>();
        using (WakeBatch.Open())
        {
            Assert.True(WakeBatch.IsOpen);
            WakeBatch.Defer(new Wake(() => woken.Add(1)));
            WakeBatch.Defer(new Wake(() => woken.Add(2)));
            Assert.Empty(woken);
        }

        Assert.False(WakeBatch.IsOpen);
        Assert.Equal([1, 2], woken);
    }

    [Fact]
    public void A_nested_scope_does_not_end_the_outer_batch()
    {
        var woken = 0;
        using (WakeBatch.Open())
        {
            using (WakeBatch.Open())
            {
                WakeBatch.Defer(new Wake(() => woken++));
            }

            Assert.True(WakeBatch.IsOpen);
            Assert.Equal(0, woken);
        }

        Assert.Equal(1, woken);
    }

    [Fact]
    public void A_wake_may_open_a_batch_of_its_own()
    {
        var woken = new List<string>();
        using (WakeBatch.Open())
        {
            WakeBatch.Defer(new Wake(() =>
            {
                woken.Add("outer");
                using (WakeBatch.Open())
                {
                    WakeBatch.Defer(new Wake(() => woken.Add("inner")));
                }
            }));
        }

        Assert.Equal(["outer", "inner"], woken);

        // The thread's list is usable again afterwards.
        using (WakeBatch.Open())
        {
            WakeBatch.Defer(new Wake(() => woken.Add("again")));
        }

        Assert.Equal(["outer", "inner", "again"], woken);
    }

    [Fact]
    public void Deferring_without_a_batch_is_refused()
    {
        Assert.False(WakeBatch.IsOpen);
        Assert.Throws<InvalidOperationException>(() => WakeBatch.Defer(new Wake(() => { })));
    }

    private sealed class Wake(Action action) : IDeferredWake
    {
        void IDeferredWake.Wake() => action();
    }
}
