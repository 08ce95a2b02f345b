using System.Numerics;
using Resh.Ordering;

namespace Resh.Voting;

/// <summary>What a reply did to the vote of its log entry.</summary>
public enum VoteOutcomeKind
{
    /// <summary>f+1 equal replies: <see cref="VoteOutcome.Reply"/> is released to the client.</summary>
    Decided,

    /// <summary>All voters answered and no reply reached f+1: the client gets an error.</summary>
    Disagreed,

    /// <summary>A replica's reply differs from the decided one.</summary>
    Mismatch,

    /// <summary>
    /// A replica on a losing side of a disagreement (every side but the largest; of equal largest sides, every side
    /// but the one of the lowest replica): it is rebuilt, so that the replicas converge instead of staying apart.
    /// </summary>
    Diverged,
}

public readonly record struct VoteOutcome(VoteOutcomeKind Kind, LogEntry Entry, int Replica, ReadOnlyMemory<byte> Reply);

/// <summary>
/// Majority voting over replies for the same log position. Not thread safe: the caller serializes
/// every call (the replica group does so under its lock). Replicas are numbered 0..63.
/// </summary>
public sealed class Voter
{
    private readonly Dictionary<long, Slot> _slots = [];
    private readonly Stack<Slot> _pool = new();
    private readonly TimeProvider _clock;
    private ulong _voters;

    /// <param name="clock">Stamps each decision's time (the silence rules count from it). The system clock when null.</param>
    public Voter(int faults, TimeProvider? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(faults);
        Quorum = faults + 1;
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>The outcome of every position voted on, for those who check replayed replies or skip decided reads.</summary>
    public DecisionBook Decisions { get; } = new();

    /// <summary>f+1: how many equal replies decide.</summary>
    public int Quorum { get; }

    /// <summary>The highest sequence number decided (or disagreed) so far, -1 before the first.</summary>
    public long DecidedHead { get; private set; } = -1;

    public int VoterCount => BitOperations.PopCount(_voters);

    /// <summary>
    /// How many replicas the group has. A member that is not voting now (being rebuilt) will reach every
    /// open entry and vote on it, so an entry is declared a disagreement only when no reply can reach f+1
    /// even with those votes. 0 (the default) counts only current voters.
    /// </summary>
    public int Members { get; set; }

    /// <summary>Entries with at least one reply that are not settled yet.</summary>
    public int OpenSlots => _slots.Count;

    public bool IsVoter(int replica) => (_voters & Bit(replica)) != 0;

    /// <summary>
    /// Whether the open entry <paramref name="sequence"/> has replies that differ from each other and no decision
    /// yet: the voters it has heard from split. Mode spare wakes its passive replicas on that.
    /// </summary>
    public bool IsSplit(long sequence)
    {
        if (!_slots.TryGetValue(sequence, out var slot) || slot.Decided is not null || slot.Replies.Count < 2)
        {
            return false;
        }

        var first = slot.Replies[0].Normalized.Span;
        for (var i = 1; i < slot.Replies.Count; i++)
        {
            if (!slot.Replies[i].Normalized.Span.SequenceEqual(first))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The first position that is not settled: every entry before it that produces a reply was decided or
    /// disagreed on. (Entries that produce no reply never settle and do not count.) The verified prefix of the log.
    /// </summary>
    public long SettledBelow(long head)
    {
        var below = Math.Min(DecidedHead, head) + 1;
        foreach (var (seq, slot) in _slots)
        {
            if (slot.Decided is null && Decisions.KindOf(seq) == Decision.Pending && seq < below)
            {
                below = seq;
            }
        }

        return below;
    }

    /// <summary>Whether any replica has answered the (still open) entry <paramref name="sequence"/>.</summary>
    public bool HasReplies(long sequence) => _slots.ContainsKey(sequence);

    public void AddVoter(int replica) => _voters |= Bit(replica);

    /// <summary>Takes a replica out of voting; open entries no longer wait for it and its pending votes are dropped.</summary>
    public void RemoveVoter(int replica, List<VoteOutcome> outcomes)
    {
        var bit = Bit(replica);
        _voters &= ~bit;
        List<long>? settled = null;
        foreach (var (seq, slot) in _slots)
        {
            slot.Expected &= ~bit;
            if (slot.Decided is null)
            {
                slot.Replies.RemoveAll(r => r.Replica == replica);
                slot.Responded &= ~bit;
                TryDecide(slot, outcomes);
            }

            if (Settle(slot, outcomes))
            {
                (settled ??= []).Add(seq);
            }
        }

        if (settled is not null)
        {
            foreach (var seq in settled)
            {
                Retire(seq);
            }
        }
    }

    /// <summary>
    /// Counts a voter's reply. <paramref name="normalized"/> is what is compared, <paramref name="reply"/> what is released.
    /// Both are only read during the call: the voter copies what it keeps (the first votes of an undecided entry,
    /// and a reply it releases), so a reply that merely confirms or contradicts a decision costs no copy.
    /// </summary>
    public void Add(int replica, LogEntry entry, ReadOnlySpan<byte> normalized, ReadOnlySpan<byte> reply, List<VoteOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(outcomes);
        if (!IsVoter(replica))
        {
            throw new InvalidOperationException($"replica {replica} is not voting");
        }

        var bit = Bit(replica);
        if (SlotFor(entry) is not { } slot)
        {
            // Settled before this voter joined its expected set: check against the digest.
            if (Decisions.KindOf(entry.Sequence) == Decision.Decided && DigestOf(normalized) != Decisions.DigestOf(entry.Sequence))
            {
                outcomes.Add(new VoteOutcome(VoteOutcomeKind.Mismatch, entry, replica, ReadOnlyMemory<byte>.Empty));
            }

            return;
        }

        slot.Expected |= bit;
        if ((slot.Responded & bit) != 0)
        {
            throw new InvalidOperationException($"replica {replica} answered #{entry.Sequence} twice");
        }

        slot.Responded |= bit;
        if (slot.Decided is { } decided)
        {
            if (!decided.Span.SequenceEqual(normalized))
            {
                outcomes.Add(new VoteOutcome(VoteOutcomeKind.Mismatch, entry, replica, ReadOnlyMemory<byte>.Empty));
            }
        }
        else
        {
            var equal = -1;
            var count = 1;
            for (var i = 0; i < slot.Replies.Count; i++)
            {
                if (slot.Replies[i].Normalized.Span.SequenceEqual(normalized))
                {
                    equal = equal < 0 ? i : equal;
                    count++;
                }
            }

            if (count >= Quorum)
            {
                // This reply decides: the earliest equal vote is released (owned already), else a copy of this one.
                Decide(slot, equal >= 0 ? slot.Replies[equal] : Own(replica, normalized, reply), outcomes);
            }
            else
            {
                slot.Replies.Add(Own(replica, normalized, reply));
            }
        }

        if (Settle(slot, outcomes))
        {
            Retire(entry.Sequence);
        }
    }

    /// <summary>
    /// A voter that the entry does not ask to answer (a replica that rests during a checkpoint flushed by f+1 others):
    /// it counts as having responded without a reply, so the entry settles without it, and it can neither decide nor
    /// contradict. Nothing happens when the entry is settled already.
    /// </summary>
    public void Abstain(int replica, LogEntry entry, List<VoteOutcome> outcomes)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(outcomes);
        var bit = Bit(replica);
        if ((_voters & bit) == 0)
        {
            return;
        }

        if (SlotFor(entry) is not { } slot)
        {
            return;
        }

        if ((slot.Responded & bit) != 0)
        {
            throw new InvalidOperationException($"replica {replica} answered #{entry.Sequence} before it abstained");
        }

        slot.Expected |= bit;
        slot.Responded |= bit;
        if (Settle(slot, outcomes))
        {
            Retire(entry.Sequence);
        }
    }

    /// <summary>The open slot of <paramref name="entry"/>, a new one while it is pending, or null once it is settled.</summary>
    private Slot? SlotFor(LogEntry entry)
    {
        if (_slots.TryGetValue(entry.Sequence, out var slot))
        {
            return slot;
        }

        if (Decisions.KindOf(entry.Sequence) != Decision.Pending)
        {
            return null;
        }

        slot = _pool.TryPop(out var pooled) ? pooled : new Slot();
        slot.Reset(entry, _voters);
        _slots.Add(entry.Sequence, slot);
        return slot;
    }

    /// <summary>Removes a settled slot and keeps it for reuse (one per entry otherwise).</summary>
    private void Retire(long sequence)
    {
        if (_slots.Remove(sequence, out var slot) && _pool.Count < 1024)
        {
            slot.Reset(null!, 0);
            _pool.Push(slot);
        }
    }

    /// <summary>The digest replayed replies are compared with.</summary>
    public static UInt128 DigestOf(ReadOnlySpan<byte> normalized) => ReplyDigest.Compute(normalized);

    private void TryDecide(Slot slot, List<VoteOutcome> outcomes)
    {
        var replies = slot.Replies;
        for (var i = 0; i < replies.Count; i++)
        {
            var count = 0;
            for (var j = 0; j < replies.Count; j++)
            {
                if (replies[j].Normalized.Span.SequenceEqual(replies[i].Normalized.Span))
                {
                    count++;
                }
            }

            if (count < Quorum)
            {
                continue;
            }

            Decide(slot, replies[i], outcomes);
            return;
        }
    }

    private static Vote Own(int replica, ReadOnlySpan<byte> normalized, ReadOnlySpan<byte> reply)
    {
        var raw = reply.ToArray();
        var sameBytes = normalized.Length == reply.Length && normalized.SequenceEqual(reply);
        return new Vote(replica, sameBytes ? raw : normalized.ToArray(), raw);
    }

    private void Decide(Slot slot, Vote winner, List<VoteOutcome> outcomes)
    {
        var replies = slot.Replies;
        {
            slot.Decided = winner.Normalized;
            var entry = slot.Entry;
            Decisions.Record(entry.Sequence, Decision.Decided, DigestOf(winner.Normalized.Span), _clock.GetTimestamp());
            DecidedHead = Math.Max(DecidedHead, entry.Sequence);
            outcomes.Add(new VoteOutcome(VoteOutcomeKind.Decided, entry, winner.Replica, winner.Reply));
            foreach (var other in replies)
            {
                if (!other.Normalized.Span.SequenceEqual(winner.Normalized.Span))
                {
                    outcomes.Add(new VoteOutcome(VoteOutcomeKind.Mismatch, entry, other.Replica, other.Reply));
                }
            }

            replies.Clear();
        }
    }

    /// <summary>Returns true when the slot needs nothing more: every expected voter answered.</summary>
    private bool Settle(Slot slot, List<VoteOutcome> outcomes)
    {
        var outstanding = BitOperations.PopCount(slot.Expected & ~slot.Responded);
        if (slot.Decided is not null)
        {
            return outstanding == 0;
        }

        // Undecided. Only a full group can disagree; with fewer than f+1 voters the entry waits for replicas to rejoin.
        if (BitOperations.PopCount(slot.Expected) < Quorum)
        {
            return false;
        }

        var best = 0;
        foreach (var vote in slot.Replies)
        {
            var count = 0;
            foreach (var other in slot.Replies)
            {
                if (other.Normalized.Span.SequenceEqual(vote.Normalized.Span))
                {
                    count++;
                }
            }

            best = Math.Max(best, count);
        }

        var joiners = Math.Max(0, Members - BitOperations.PopCount(_voters | slot.Expected));
        if (best + outstanding + joiners >= Quorum)
        {
            return false;
        }

        var entry = slot.Entry;
        Decisions.Record(entry.Sequence, Decision.Disagreed, default, _clock.GetTimestamp());
        DecidedHead = Math.Max(DecidedHead, entry.Sequence);
        outcomes.Add(new VoteOutcome(VoteOutcomeKind.Disagreed, entry, -1, ReadOnlyMemory<byte>.Empty));
        foreach (var loser in LosingSides(slot.Replies))
        {
            outcomes.Add(new VoteOutcome(VoteOutcomeKind.Diverged, entry, loser.Replica, loser.Reply));
        }

        slot.Replies.Clear();
        return true;
    }

    /// <summary>
    /// The replies of a disagreement outside the side that stays: the largest side, or of equal largest sides the one
    /// with the lowest replica. Keeping one side keeps the group from rebuilding every replica at once; if the side
    /// kept is the wrong one, the rebuilt replicas outvote it at the next reply where it differs.
    /// </summary>
    private static IEnumerable<Vote> LosingSides(List<Vote> replies)
    {
        Vote? keep = null;
        var keepCount = 0;
        foreach (var vote in replies.OrderBy(v => v.Replica))
        {
            var count = replies.Count(other => other.Normalized.Span.SequenceEqual(vote.Normalized.Span));
            if (count > keepCount)
            {
                (keep, keepCount) = (vote, count);
            }
        }

        return keep is { } kept ? [.. replies.Where(v => !v.Normalized.Span.SequenceEqual(kept.Normalized.Span))] : [];
    }

    private static ulong Bit(int replica)
    {
        if ((uint)replica >= 64)
        {
            throw new ArgumentOutOfRangeException(nameof(replica), replica, "replicas are numbered 0..63");
        }

        return 1UL << replica;
    }

    private readonly record struct Vote(int Replica, ReadOnlyMemory<byte> Normalized, ReadOnlyMemory<byte> Reply);

    private sealed class Slot
    {
        public LogEntry Entry { get; private set; } = null!;

        public ulong Expected { get; set; }

        public ulong Responded { get; set; }

        public ReadOnlyMemory<byte>? Decided { get; set; }

        public List<Vote> Replies { get; } = new(3);

        public void Reset(LogEntry entry, ulong expected)
        {
            Entry = entry;
            Expected = expected;
            Responded = 0;
            Decided = null;
            Replies.Clear();
        }
    }
}
