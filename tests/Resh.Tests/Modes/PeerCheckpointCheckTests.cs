using Resh.Dresh;

namespace Resh.Tests.Modes;

/// <summary>When a D-RESH host may use a checkpoint a peer sent it: the other hosts' recorded digests decide.</summary>
public sealed class PeerCheckpointCheckTests
{
    private static Dictionary<int, string> Records(params (int Member, string Digest)[] records) => records.ToDictionary(r => r.Member, r => r.Digest);

    [Fact]
    public void A_checkpoint_whose_digest_the_other_hosts_recorded_too_is_taken()
    {
        Assert.Null(PeerCheckpointCheck.Problem("d", null, Records((1, "d"), (2, "d")), out var backers));
        Assert.Equal([1, 2], backers);
        Assert.Null(PeerCheckpointCheck.Problem("rdb:x", "rdb:x", Records((1, "rdb:x"), (2, "rdb:x"), (4, "rdb:y")), out _));
    }

    [Fact]
    public void A_peer_with_its_own_record_only_is_taken_when_no_other_host_recorded_one()
    {
        Assert.Null(PeerCheckpointCheck.Problem("d", null, Records((2, "d")), out var backers));
        Assert.Equal([2], backers);
    }

    [Theory]
    [InlineData(null, null, "no digest")]
    [InlineData("d", "other", "its files digest as other")]
    public void A_checkpoint_without_a_digest_or_whose_files_do_not_match_it_is_refused(string? labelled, string? computed, string reason)
    {
        Assert.Contains(reason, PeerCheckpointCheck.Problem(labelled, computed, Records((1, "d"), (2, "d")), out _), StringComparison.Ordinal);
    }

    [Fact]
    public void A_checkpoint_the_records_do_not_back_is_refused()
    {
        // Nobody recorded anything there.
        Assert.Contains("no host recorded", PeerCheckpointCheck.Problem("d", null, Records(), out _), StringComparison.Ordinal);

        // The peer's own record says d, the other host's says e: one against one is no backing.
        Assert.Contains("do not back it", PeerCheckpointCheck.Problem("d", null, Records((1, "d"), (2, "e")), out _), StringComparison.Ordinal);

        // A peer that sends a checkpoint labelled with a digest no host recorded.
        Assert.Contains("do not back it", PeerCheckpointCheck.Problem("d", null, Records((1, "x"), (2, "e"), (3, "e")), out _), StringComparison.Ordinal);
    }
}
