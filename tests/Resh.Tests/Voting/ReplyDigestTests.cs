using System.Text;
using Resh.Ordering;

namespace Resh.Tests.Voting;

public sealed class ReplyDigestTests
{
    [Fact]
    public void Is_deterministic_and_separates_every_small_change()
    {
        var random = new Random(7);
        var seen = new HashSet<UInt128>();
        for (var length = 0; length < 200; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            var digest = ReplyDigest.Compute(data);
            Assert.Equal(digest, ReplyDigest.Compute(data.ToArray()));
            Assert.True(seen.Add(digest), $"collision at length {length}");

            // Every single-bit flip changes the digest.
            for (var bit = 0; bit < length * 8; bit += 7)
            {
                data[bit / 8] ^= (byte)(1 << (bit % 8));
                Assert.NotEqual(digest, ReplyDigest.Compute(data));
                data[bit / 8] ^= (byte)(1 << (bit % 8));
            }
        }
    }

    [Fact]
    public void Trailing_zero_bytes_and_length_matter()
    {
        Assert.NotEqual(ReplyDigest.Compute([]), ReplyDigest.Compute([0]));
        Assert.NotEqual(ReplyDigest.Compute([1, 0]), ReplyDigest.Compute([1, 0, 0]));
        Assert.NotEqual(ReplyDigest.Compute(Encoding.ASCII.GetBytes("$1\r\na\r\n")), ReplyDigest.Compute(Encoding.ASCII.GetBytes("$1\r\nb\r\n")));
    }
}
