using Resh.Group;

namespace Resh.Tests.Modes;

/// <summary>The group's rule for silent replicas, on made-up ticks (reply-timeout = 1,000 ticks).</summary>
public sealed class SilenceRuleTests
{
    private const long Timeout = 1_000;

    private static OwedReply Undecided(long appendedAt, long lastProgressAt, bool othersAnswered = false, bool checkpoint = false) =>
        new(Replaying: false, lastProgressAt, OwedEntryDecided: false, DecidedAt: 0, appendedAt, othersAnswered, checkpoint);

    [Fact]
    public void A_stuck_group_a_hung_voter_beside_a_rebuilding_one_is_acted_on_whatever_the_others_do()
    {
        // r1 rebuilds (replaying, slowly but moving); r2, the one voter left, is frozen from tick 0 on, owing entry n.
        var rebuilding = new OwedReply(Replaying: true, LastProgressAt: 1_400, false, 0, 0, false, false);
        var hung = Undecided(appendedAt: 0, lastProgressAt: 0);

        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(rebuilding, 1_500, Timeout, canWake: false));
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(hung, 900, Timeout, canWake: true));

        // After reply-timeout the passive replicas are woken; if none can be (an activation is already under way), the
        // hung voter is suspected after 2×reply-timeout. Nobody else answered: that no longer holds the rule back.
        Assert.Equal(SilenceVerdict.Wake, SilenceRule.Judge(hung, 1_001, Timeout, canWake: true));
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(hung, 1_500, Timeout, canWake: false));
        Assert.Equal(SilenceVerdict.SilentAlone, SilenceRule.Judge(hung, 2_001, Timeout, canWake: false));
    }

    [Fact]
    public void A_hung_only_replica_is_suspected_after_twice_the_reply_timeout()
    {
        var only = Undecided(appendedAt: 10_000, lastProgressAt: 9_000);
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(only, 12_000, Timeout, canWake: false));
        Assert.Equal(SilenceVerdict.SilentAlone, SilenceRule.Judge(only, 12_001, Timeout, canWake: false));
    }

    [Fact]
    public void Several_voters_silent_with_nobody_to_wake_are_a_slow_command_not_a_fault()
    {
        var slow = Undecided(appendedAt: 0, lastProgressAt: 0) with { SoleVoter = false };
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(slow, 100_000, Timeout, canWake: false));
        Assert.Equal(SilenceVerdict.Wake, SilenceRule.Judge(slow, 1_001, Timeout, canWake: true));
    }

    [Fact]
    public void A_backlog_the_replica_works_through_is_not_silence()
    {
        // Entry n was appended long ago in a burst, nobody has reached it yet, and the replica applied an entry just now.
        var busy = Undecided(appendedAt: 0, lastProgressAt: 49_900);
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(busy, 50_000, Timeout, canWake: true));
        Assert.Equal(SilenceVerdict.Wake, SilenceRule.Judge(busy, 50_901, Timeout, canWake: true));
    }

    [Fact]
    public void A_replica_behind_others_that_answered_is_timed_from_the_append_as_before()
    {
        var behind = Undecided(appendedAt: 0, lastProgressAt: 1_999, othersAnswered: true);
        Assert.Equal(SilenceVerdict.SilentWhileOthersAnswered, SilenceRule.Judge(behind, 2_001, Timeout, canWake: false));
        Assert.Equal(SilenceVerdict.Wake, SilenceRule.Judge(behind, 1_001, Timeout, canWake: true));
    }

    [Fact]
    public void A_decided_entry_is_timed_from_its_decision()
    {
        var late = new OwedReply(Replaying: false, LastProgressAt: 0, OwedEntryDecided: true, DecidedAt: 5_000, AppendedAt: 0, OthersAnswered: true, Checkpoint: false);
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(late, 6_000, Timeout, canWake: true));
        Assert.Equal(SilenceVerdict.LateAfterDecision, SilenceRule.Judge(late, 6_001, Timeout, canWake: true));
    }

    [Fact]
    public void A_checkpoint_nobody_answered_yet_is_left_to_the_checkpoint_code()
    {
        var saving = Undecided(appendedAt: 0, lastProgressAt: 0, checkpoint: true);
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(saving, 100_000, Timeout, canWake: true));

        // Once another replica answered it, a replica that does not is behind like at any other entry.
        var behind = saving with { OthersAnswered = true };
        Assert.Equal(SilenceVerdict.SilentWhileOthersAnswered, SilenceRule.Judge(behind, 100_000, Timeout, canWake: false));
    }

    [Fact]
    public void A_replay_is_judged_by_its_progress_only()
    {
        var replay = new OwedReply(Replaying: true, LastProgressAt: 3_000, OwedEntryDecided: true, DecidedAt: 0, AppendedAt: 0, OthersAnswered: true, Checkpoint: false);
        Assert.Equal(SilenceVerdict.None, SilenceRule.Judge(replay, 4_000, Timeout, canWake: true));
        Assert.Equal(SilenceVerdict.ReplayStalled, SilenceRule.Judge(replay, 4_001, Timeout, canWake: true));
    }
}
