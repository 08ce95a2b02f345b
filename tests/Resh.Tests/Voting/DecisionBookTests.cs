using Resh.Voting;

namespace Resh.Tests.Voting;

public sealed class DecisionBookTests
{
    [Fact]
    public void Outcomes_are_kept_per_position_across_chunks_and_forgotten_with_the_log()
    {
        var book = new DecisionBook();
        Assert.Equal(Decision.Pending, book.KindOf(0));
        Assert.Equal(Decision.Pending, book.KindOf(-1));

        book.Record(5, Decision.Decided, 42, 1000);
        book.Record(10_000, Decision.Disagreed, 0, 2000);
        Assert.Equal((Decision.Decided, (UInt128)42, 1000L), (book.KindOf(5), book.DigestOf(5), book.TimeOf(5)));
        Assert.Equal((Decision.Disagreed, 2000L), (book.KindOf(10_000), book.TimeOf(10_000)));
        Assert.Equal((Decision.Pending, 0L, (UInt128)0), (book.KindOf(6), book.TimeOf(6), book.DigestOf(6)));

        book.TruncateBefore(8192);
        Assert.Equal(Decision.Pending, book.KindOf(5));
        Assert.Equal(Decision.Disagreed, book.KindOf(10_000));
        book.Record(3, Decision.Decided, 1, 1);
        Assert.Equal(Decision.Pending, book.KindOf(3));
    }

    [Fact]
    public async Task A_reader_without_a_lock_sees_either_nothing_or_the_whole_outcome()
    {
        var book = new DecisionBook();
        const int Count = 200_000;
        var reader = Task.Run(() =>
        {
            var seen = 0L;
            while (seen < Count)
            {
                var kind = book.KindOf(seen);
                if (kind == Decision.Pending)
                {
                    continue;
                }

                Assert.Equal(Decision.Decided, kind);
                Assert.Equal((UInt128)(seen + 1), book.DigestOf(seen));
                Assert.Equal(seen + 7, book.TimeOf(seen));
                seen++;
            }
        });
        for (var i = 0L; i < Count; i++)
        {
            book.Record(i, Decision.Decided, (UInt128)(i + 1), i + 7);
        }

        await reader.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
