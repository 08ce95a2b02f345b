using System.Text;
using Resh.Ordering;
using Resh.Voting;

namespace Resh.Tests.Voting;

public sealed class VoterTests
{
    private static readonly OrderedLog Log = new();

    private static LogEntry Entry(OrderedLog? log = null)
    {
        var entry = new LogEntry(LogEventKind.Request, 1, 0, Encoding.ASCII.GetBytes("GET k"), 1);
        (log ?? Log).Append(entry);
        return entry;
    }

    private static Voter Group(int faults, int replicas)
    {
        var voter = new Voter(faults);
        for (var i = 0; i < replicas; i++)
        {
            voter.AddVoter(i);
        }

        return voter;
    }

    private static byte[] B(string s) => Encoding.ASCII.GetBytes(s);

    [Fact]
    public void Decides_at_f_plus_one_equal_replies_and_releases_once()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();

        voter.Add(0, entry, B("+OK"), B("+OK"), outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(Decision.Pending, voter.Decisions.KindOf(entry.Sequence));

        voter.Add(1, entry, B("+OK"), B("+OK"), outcomes);
        var decided = Assert.Single(outcomes);
        Assert.Equal(VoteOutcomeKind.Decided, decided.Kind);
        Assert.Equal("+OK", Encoding.ASCII.GetString(decided.Reply.Span));
        Assert.Equal(Decision.Decided, voter.Decisions.KindOf(entry.Sequence));
        Assert.Equal(Voter.DigestOf(B("+OK")), voter.Decisions.DigestOf(entry.Sequence));

        outcomes.Clear();
        voter.Add(2, entry, B("+OK"), B("+OK"), outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(0, voter.OpenSlots);
    }

    [Fact]
    public void An_abstaining_voter_is_not_waited_for_and_cannot_decide_or_contradict()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();

        voter.Abstain(2, entry, outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(Decision.Pending, voter.Decisions.KindOf(entry.Sequence));
        Assert.Equal(entry.Sequence, voter.SettledBelow(entry.Sequence));

        voter.Add(0, entry, B("+OK"), B("+OK"), outcomes);
        Assert.Empty(outcomes);
        voter.Add(1, entry, B("+OK"), B("+OK"), outcomes);
        Assert.Equal(VoteOutcomeKind.Decided, Assert.Single(outcomes).Kind);
        // Settled with the two that answered: nothing stays open for the one that abstained.
        Assert.Equal(0, voter.OpenSlots);

        // A replica that does not vote has nothing to abstain from.
        outcomes.Clear();
        var other = Entry();
        voter.Abstain(5, other, outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(0, voter.OpenSlots);
    }

    [Fact]
    public void Two_voters_that_split_while_the_third_abstains_disagree_at_once()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();

        voter.Add(0, entry, B("+A"), B("+A"), outcomes);
        voter.Abstain(1, entry, outcomes);
        Assert.Empty(outcomes);
        voter.Add(2, entry, B("+B"), B("+B"), outcomes);
        Assert.Contains(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
        Assert.Equal(Decision.Disagreed, voter.Decisions.KindOf(entry.Sequence));
        Assert.Equal(0, voter.OpenSlots);
    }

    [Fact]
    public void Abstaining_after_the_decision_or_twice_after_answering_is_handled()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("+OK"), B("+OK"), outcomes);
        Assert.Throws<InvalidOperationException>(() => voter.Abstain(0, entry, outcomes));
        voter.Add(1, entry, B("+OK"), B("+OK"), outcomes);
        outcomes.Clear();

        // Decided and open for the third: its abstention settles the entry.
        voter.Abstain(2, entry, outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(0, voter.OpenSlots);
        Assert.Equal(Decision.Decided, voter.Decisions.KindOf(entry.Sequence));
    }

    [Fact]
    public void A_wrong_reply_is_outvoted_and_reported_as_mismatch()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();

        voter.Add(1, entry, B("$3\r\nbad"), B("$3\r\nbad"), outcomes);
        voter.Add(0, entry, B("$4\r\ngood"), B("$4\r\ngood"), outcomes);
        Assert.Empty(outcomes);
        voter.Add(2, entry, B("$4\r\ngood"), B("$4\r\ngood"), outcomes);

        Assert.Contains(outcomes, o => o.Kind == VoteOutcomeKind.Decided && Encoding.ASCII.GetString(o.Reply.Span) == "$4\r\ngood");
        var mismatch = Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Mismatch);
        Assert.Equal(1, mismatch.Replica);
    }

    [Fact]
    public void A_late_wrong_reply_after_the_decision_is_a_mismatch()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        voter.Add(1, entry, B("a"), B("a"), outcomes);
        outcomes.Clear();

        voter.Add(2, entry, B("b"), B("b"), outcomes);

        var mismatch = Assert.Single(outcomes);
        Assert.Equal(VoteOutcomeKind.Mismatch, mismatch.Kind);
        Assert.Equal(2, mismatch.Replica);
    }

    [Fact]
    public void Three_different_replies_disagree()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        voter.Add(1, entry, B("b"), B("b"), outcomes);

        // Two different replies out of three can still be decided by the third.
        Assert.Empty(outcomes);
        voter.Add(2, entry, B("c"), B("c"), outcomes);

        var disagreed = Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
        Assert.Equal(entry, disagreed.Entry);
        Assert.Equal(Decision.Disagreed, voter.Decisions.KindOf(entry.Sequence));
        Assert.Equal(0, voter.OpenSlots);

        // No side won: every side but the lowest replica's is rebuilt, so the replicas converge.
        Assert.Equal([1, 2], outcomes.Where(o => o.Kind == VoteOutcomeKind.Diverged).Select(o => o.Replica).Order());
    }

    [Fact]
    public void A_disagreement_rebuilds_the_smaller_sides_and_of_equal_largest_sides_keeps_the_lowest_replicas()
    {
        // f = 2, 5 replicas: sides {0,3}, {1,4} and {2}; no side has 3 votes.
        var voter = Group(2, 5);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        foreach (var (replica, reply) in new[] { (1, "b"), (4, "b"), (2, "c"), (0, "a"), (3, "a") })
        {
            voter.Add(replica, entry, B(reply), B(reply), outcomes);
        }

        Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
        Assert.Equal([1, 2, 4], outcomes.Where(o => o.Kind == VoteOutcomeKind.Diverged).Select(o => o.Replica).Order());

        // A unique largest side stays whatever its replicas' numbers: {3,4} against {0}, {1}, {2}.
        var other = Group(2, 5);
        var next = Entry();
        var more = new List<VoteOutcome>();
        foreach (var (replica, reply) in new[] { (3, "d"), (4, "d"), (0, "a"), (1, "b"), (2, "c") })
        {
            other.Add(replica, next, B(reply), B(reply), more);
        }

        Assert.Equal([0, 1, 2], more.Where(o => o.Kind == VoteOutcomeKind.Diverged).Select(o => o.Replica).Order());
    }

    [Fact]
    public void Disagreement_is_called_early_when_no_reply_can_reach_the_quorum()
    {
        var voter = Group(2, 5);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        voter.Add(1, entry, B("b"), B("b"), outcomes);
        voter.Add(2, entry, B("c"), B("c"), outcomes);
        Assert.Empty(outcomes);

        // Best group has 1 vote, 1 voter outstanding: 2 < 3.
        voter.Add(3, entry, B("d"), B("d"), outcomes);
        Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
    }

    [Fact]
    public void Removing_a_silent_voter_lets_the_entry_settle()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        voter.Add(1, entry, B("a"), B("a"), outcomes);
        Assert.Equal(1, voter.OpenSlots);

        voter.RemoveVoter(2, outcomes);

        Assert.Equal(0, voter.OpenSlots);
        Assert.False(voter.IsVoter(2));
        Assert.Equal(2, voter.VoterCount);
    }

    [Fact]
    public void Votes_of_a_removed_replica_no_longer_count()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("bad"), B("bad"), outcomes);
        voter.RemoveVoter(0, outcomes);
        voter.Add(1, entry, B("bad"), B("bad"), outcomes);

        // Replica 0's "bad" was dropped with it: one vote is not a quorum.
        Assert.DoesNotContain(outcomes, o => o.Kind == VoteOutcomeKind.Decided);
        voter.Add(2, entry, B("good"), B("good"), outcomes);
        Assert.DoesNotContain(outcomes, o => o.Kind == VoteOutcomeKind.Decided);
        Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
    }

    [Fact]
    public void With_fewer_than_f_plus_one_voters_an_entry_waits_instead_of_disagreeing()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.RemoveVoter(1, outcomes);
        voter.RemoveVoter(2, outcomes);
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(Decision.Pending, voter.Decisions.KindOf(entry.Sequence));

        // A rebuilt replica rejoins and answers: now it is decided.
        voter.AddVoter(1);
        voter.Add(1, entry, B("a"), B("a"), outcomes);
        Assert.Equal(VoteOutcomeKind.Decided, Assert.Single(outcomes).Kind);
    }

    [Fact]
    public void A_voter_that_joins_after_settlement_is_checked_against_the_digest()
    {
        var voter = Group(1, 2);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("x"), B("x"), outcomes);
        voter.Add(1, entry, B("x"), B("x"), outcomes);
        Assert.Equal(0, voter.OpenSlots);
        outcomes.Clear();

        voter.AddVoter(2);
        voter.Add(2, entry, B("y"), B("y"), outcomes);
        Assert.Equal(VoteOutcomeKind.Mismatch, Assert.Single(outcomes).Kind);

        outcomes.Clear();
        var next = Entry();
        voter.Add(0, next, B("z"), B("z"), outcomes);
        voter.Add(1, next, B("z"), B("z"), outcomes);
        voter.Add(2, next, B("z"), B("z"), outcomes);
        Assert.Equal(VoteOutcomeKind.Decided, Assert.Single(outcomes).Kind);
    }

    [Fact]
    public void Normalized_form_decides_but_the_raw_reply_is_released()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("-ERR"), B("-ERR unknown command 'x'"), outcomes);
        voter.Add(1, entry, B("-ERR"), B("-ERR unknown command `x`"), outcomes);

        var decided = Assert.Single(outcomes);
        Assert.Equal("-ERR unknown command 'x'", Encoding.ASCII.GetString(decided.Reply.Span));
    }

    [Fact]
    public void Rejects_replies_from_non_voters_and_double_answers()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        Assert.Throws<InvalidOperationException>(() => voter.Add(5, entry, B("a"), B("a"), outcomes));
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        Assert.Throws<InvalidOperationException>(() => voter.Add(0, entry, B("a"), B("a"), outcomes));
    }

    [Fact]
    public void Replies_are_copied_when_kept_so_the_callers_buffer_can_be_reused()
    {
        var voter = Group(1, 3);
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        var buffer = B("$5\r\nfirst\r\n");
        voter.Add(0, entry, buffer, buffer, outcomes);
        buffer.AsSpan().Fill((byte)'x');

        var second = B("$5\r\nfirst\r\n");
        voter.Add(1, entry, second, second, outcomes);
        second.AsSpan().Fill((byte)'y');

        var decided = Assert.Single(outcomes);
        Assert.Equal("$5\r\nfirst\r\n", Encoding.ASCII.GetString(decided.Reply.Span));
        outcomes.Clear();
        voter.Add(2, entry, B("$5\r\nfirst\r\n"), B("$5\r\nfirst\r\n"), outcomes);
        Assert.Empty(outcomes);
    }

    [Fact]
    public void A_split_vote_waits_for_a_member_being_rebuilt_instead_of_disagreeing()
    {
        var voter = Group(1, 3);
        voter.Members = 3;
        var outcomes = new List<VoteOutcome>();
        voter.RemoveVoter(0, outcomes);
        var entry = Entry();

        // r1 carries corrupted state, r2 is right; r0 is being rebuilt.
        voter.Add(1, entry, B("bad"), B("bad"), outcomes);
        voter.Add(2, entry, B("good"), B("good"), outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(Decision.Pending, voter.Decisions.KindOf(entry.Sequence));

        // The rebuilt r0 reaches the entry and outvotes the corrupted replica.
        voter.AddVoter(0);
        voter.Add(0, entry, B("good"), B("good"), outcomes);
        Assert.Equal("good", Encoding.ASCII.GetString(Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Decided).Reply.Span));
        Assert.Equal(1, Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Mismatch).Replica);
    }

    [Fact]
    public void With_every_member_voting_a_three_way_split_still_disagrees()
    {
        var voter = Group(1, 3);
        voter.Members = 3;
        var entry = Entry();
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, entry, B("a"), B("a"), outcomes);
        voter.Add(1, entry, B("b"), B("b"), outcomes);
        voter.Add(2, entry, B("c"), B("c"), outcomes);
        Assert.Single(outcomes, o => o.Kind == VoteOutcomeKind.Disagreed);
    }

    [Fact]
    public void Spare_a_split_of_the_f_plus_one_active_replicas_waits_for_the_passive_ones_and_they_decide()
    {
        // f = 1: two active voters must agree; two passive members will join when woken.
        var voter = Group(1, 2);
        voter.Members = 4;
        var entry = Entry(new OrderedLog());
        var outcomes = new List<VoteOutcome>();

        voter.Add(0, entry, B("$5 wrong"), B("$5 wrong"), outcomes);
        Assert.False(voter.IsSplit(entry.Sequence));
        voter.Add(1, entry, B("$5 right"), B("$5 right"), outcomes);
        Assert.Empty(outcomes);
        Assert.Equal(Decision.Pending, voter.Decisions.KindOf(entry.Sequence));
        Assert.True(voter.IsSplit(entry.Sequence));
        Assert.Equal(entry.Sequence, voter.SettledBelow(entry.Sequence));

        // A woken passive replica joins and votes: f+1 equal replies decide, the outvoted active one is named.
        voter.AddVoter(2);
        voter.Add(2, entry, B("$5 right"), B("$5 right"), outcomes);
        Assert.Equal(Decision.Decided, voter.Decisions.KindOf(entry.Sequence));
        Assert.Contains(outcomes, o => o.Kind == VoteOutcomeKind.Decided && Encoding.ASCII.GetString(o.Reply.Span) == "$5 right");
        Assert.Contains(outcomes, o => o.Kind == VoteOutcomeKind.Mismatch && o.Replica == 0);
        Assert.False(voter.IsSplit(entry.Sequence));
        Assert.Equal(entry.Sequence + 1, voter.SettledBelow(entry.Sequence));
    }

    [Fact]
    public void Spare_equal_replies_of_all_active_replicas_decide_at_once()
    {
        var voter = Group(1, 2);
        voter.Members = 4;
        var log = new OrderedLog();
        var first = Entry(log);
        var second = Entry(log);
        var outcomes = new List<VoteOutcome>();
        voter.Add(0, first, B("+OK"), B("+OK"), outcomes);
        voter.Add(0, second, B("+OK"), B("+OK"), outcomes);

        // The first entry is answered by one of the two: the verified prefix ends before it.
        Assert.Equal(first.Sequence, voter.SettledBelow(second.Sequence));
        voter.Add(1, first, B("+OK"), B("+OK"), outcomes);
        Assert.Equal(Decision.Decided, voter.Decisions.KindOf(first.Sequence));
        Assert.Equal(second.Sequence, voter.SettledBelow(second.Sequence));
        voter.Add(1, second, B("+OK"), B("+OK"), outcomes);
        Assert.Equal(second.Sequence + 1, voter.SettledBelow(second.Sequence));
        Assert.DoesNotContain(outcomes, o => o.Kind != VoteOutcomeKind.Decided);
    }
}
