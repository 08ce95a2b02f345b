using System.Runtime.InteropServices;
using Resh.Ordering;

namespace Resh.Tests.Ordering;

public sealed class PayloadArenaTests
{
    [Fact]
    public void Copies_from_many_threads_at_once_keep_their_own_bytes_across_blocks()
    {
        // 8 threads × 3,000 payloads of up to 1 KiB: about 12 MiB, so several 1 MiB blocks fill up under contention.
        var copies = new (byte[] Original, ReadOnlyMemory<byte> Copy)[8][];
        Parallel.For(0, 8, t =>
        {
            var random = new Random(t);
            copies[t] = new (byte[], ReadOnlyMemory<byte>)[3000];
            for (var i = 0; i < 3000; i++)
            {
                var original = new byte[random.Next(1, 1024)];
                random.NextBytes(original);
                copies[t][i] = (original, PayloadArena.Copy(original));
            }
        });

        foreach (var (original, copy) in copies.SelectMany(c => c))
        {
            Assert.Equal(original, copy.ToArray());
        }
    }

    [Fact]
    public void Small_payloads_share_blocks_and_large_or_empty_ones_do_not()
    {
        var a = PayloadArena.Copy([1, 2, 3]);
        var b = PayloadArena.Copy([4, 5]);
        Assert.True(MemoryMarshal.TryGetArray(a, out var sa));
        Assert.True(MemoryMarshal.TryGetArray(b, out var sb));
        Assert.True(sa.Array!.Length >= 1 << 20);
        Assert.Equal([1, 2, 3], a.ToArray());
        Assert.Equal([4, 5], b.ToArray());

        var large = new byte[PayloadArena.LargePayload];
        large[^1] = 9;
        var copy = PayloadArena.Copy(large);
        Assert.True(MemoryMarshal.TryGetArray(copy, out var sl));
        Assert.Equal(PayloadArena.LargePayload, sl.Array!.Length);
        Assert.Equal(9, copy.Span[^1]);

        Assert.True(PayloadArena.Copy([]).IsEmpty);
    }
}
