using System.Buffers;
using Resh.Ordering;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

/// <summary>The reply path: from a replica's reader to the voter, suspicion of mismatches, and release of the outcomes.</summary>
public sealed partial class ReplicaGroup
{
    void IApplierCallbacks.OnReply(ReplicaApplier applier, LogEntry entry, ReadOnlySequence<byte> replySequence, int lastReplyOffset)
    {
        var replica = _replicas[applier.ReplicaIndex];
        ReadOnlySpan<byte> reply = replySequence.IsSingleSegment ? replySequence.FirstSpan : replySequence.ToArray();
        var writer = replica.NormalizeBuffer;
        writer.ResetWrittenCount();
        var normalized = _protocol.TryNormalize(reply, entry.ReplyHint, writer) ? writer.WrittenSpan : reply;
        if (entry.Kind == LogEventKind.Checkpoint)
        {
            normalized = CheckpointVote(replica, applier, entry, reply, lastReplyOffset, normalized);
        }

        // Called only from this replica's reader loop, so its outcome list can be reused.
        var outcomes = replica.Outcomes;
        outcomes.Clear();
        List<(Replica, ReplicaApplier?, string)>? mismatches = null;
        var split = -1L;
        var divergence = -1L;
        var releaseObjects = -1L;
        lock (_lock)
        {
            if (!ReferenceEquals(replica.Applier, applier) || replica.State is not (ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Passive or ReplicaState.Updating))
            {
                return;
            }

            if (replica.State is ReplicaState.Passive or ReplicaState.Updating)
            {
                // A passive replica is fed the verified log: each reply is checked against the decided digest. (One
                // that was demoted from voting also answers the entries it had been sent; those it does not decide.)
                if (_voter.Decisions.KindOf(entry.Sequence) == Decision.Decided && Voter.DigestOf(normalized) != _voter.Decisions.DigestOf(entry.Sequence))
                {
                    replica.Mismatches++;
                    mismatches = [(replica, applier, $"passive replica's reply to #{entry.Sequence} differs from the decided one")];
                }
            }
            else if (replica.State == ReplicaState.Recovering)
            {
                switch (_voter.Decisions.KindOf(entry.Sequence))
                {
                    case Decision.Decided when _voter.Quorum == 1:
                        // One reply decided it: nothing trustworthy to check a replayed reply against (that one reply
                        // may be the wrong value of a corrupted replica). The replayed state is what the log defines,
                        // so a difference is recorded and the replay goes on; suspecting it would rebuild forever.
                        if (Voter.DigestOf(normalized) != _voter.Decisions.DigestOf(entry.Sequence))
                        {
                            divergence = entry.Sequence;
                        }

                        break;
                    case Decision.Decided:
                        if (Voter.DigestOf(normalized) != _voter.Decisions.DigestOf(entry.Sequence))
                        {
                            replica.Mismatches++;
                            mismatches = [(replica, applier, $"replayed reply to #{entry.Sequence} differs from the decided one")];
                        }

                        break;
                    case Decision.Disagreed:
                        break;
                    default:
                        // Caught up with the undecided part of the log: from here on it votes.
                        Join(replica, entry.Sequence - 1);
                        _voter.Add(replica.Index, entry, normalized, entry.ReplyLastOnly ? reply[lastReplyOffset..] : reply, outcomes);
                        break;
                }
            }
            else
            {
                _voter.Add(replica.Index, entry, normalized, entry.ReplyLastOnly ? reply[lastReplyOffset..] : reply, outcomes);
                if (_policy.WatchesSplits && _voter.Decisions.KindOf(entry.Sequence) == Decision.Pending && _voter.IsSplit(entry.Sequence))
                {
                    split = entry.Sequence;
                }
            }

            mismatches = CollectMismatches(outcomes, mismatches);
            if (_voter.DecidedHead >= _releaseObjectsAt)
            {
                releaseObjects = _voter.SettledBelow(_log.Head);
                _releaseObjectsAt = _voter.DecidedHead + ReleaseObjectsStep;
            }
        }

        Release(outcomes);
        if (releaseObjects > 0)
        {
            // Settled entries deliver no reply any more: the log keeps their records only (see OrderedLog).
            _log.ReleaseObjectsBefore(releaseObjects);
        }

        SuspectAll(mismatches);
        if (divergence >= 0)
        {
            _metrics.Mismatch(replica.Spec.Id);
            _events.Record("+replay-divergence", replica.Spec.Id, $"replayed reply to #{divergence} differs from the one reply that decided it; the replayed state is kept");
        }

        if (split >= 0)
        {
            _policy.OnSplit(split);
        }
    }

    /// <summary>Counts the mismatches among <paramref name="outcomes"/> and pairs each with the applier that produced it. Call under the lock.</summary>
    private List<(Replica, ReplicaApplier?, string)>? CollectMismatches(List<VoteOutcome> outcomes, List<(Replica, ReplicaApplier?, string)>? into)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome.Kind == VoteOutcomeKind.Mismatch)
            {
                var r = _replicas[outcome.Replica];
                r.Mismatches++;
                (into ??= []).Add((r, r.Applier, $"reply to #{outcome.Entry.Sequence} differs from the decided one"));
            }
            else if (outcome.Kind == VoteOutcomeKind.Diverged && outcome.Entry.Kind == LogEventKind.Checkpoint && FlushedByQuorum(outcome.Entry.Sequence))
            {
                // f+1 replicas flushed it and split: which side is wrong is not known; every replica flushes the next.
                _allFlushNext = true;
            }
            else if (outcome.Kind == VoteOutcomeKind.Diverged)
            {
                var r = _replicas[outcome.Replica];
                r.Mismatches++;
                (into ??= []).Add((r, r.Applier, $"its reply to #{outcome.Entry.Sequence} was on a losing side of a disagreement; rebuilt so that the replicas converge"));
            }
        }

        return into;
    }

    private void SuspectAll(List<(Replica Replica, ReplicaApplier? Applier, string Reason)>? mismatches)
    {
        if (mismatches is null)
        {
            return;
        }

        foreach (var (r, applier, reason) in mismatches)
        {
            _metrics.Mismatch(r.Spec.Id);
            Suspect(r, applier, "mismatch", reason);
        }
    }

    /// <summary>How many decisions pass between two releases of settled entries' objects (each release walks the open votes once).</summary>
    private const int ReleaseObjectsStep = 1024;

    /// <summary>The decided head at which settled entries' objects are released next. Under <see cref="_lock"/>.</summary>
    private long _releaseObjectsAt;

    bool IApplierCallbacks.IsDecided(long sequence) => _voter.Decisions.KindOf(sequence) != Decision.Pending;

    void IApplierCallbacks.OnBroken(ReplicaApplier applier, string reason)
    {
        Suspect(_replicas[applier.ReplicaIndex], applier, "connection", reason);
    }

    private void Release(List<VoteOutcome> outcomes)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome.Entry.Kind == LogEventKind.Checkpoint)
            {
                if (outcome.Kind is VoteOutcomeKind.Decided or VoteOutcomeKind.Disagreed)
                {
                    CheckpointSettled(outcome);
                }

                continue;
            }

            _policy.OnReleased(outcome);
            switch (outcome.Kind)
            {
                case VoteOutcomeKind.Decided:
                    _metrics.Request("decided");
                    _metrics.ReplyLatency(outcome.Entry.AppendedTimestamp);
                    Complete(outcome.Entry, outcome.Reply);
                    break;
                case VoteOutcomeKind.Disagreed:
                    _metrics.Request("disagreed");
                    GroupLog.Disagreement(_logger, outcome.Entry.Sequence, _voter.Quorum);
                    _events.Record("+disagreement", null, $"no reply to #{outcome.Entry.Sequence} reached {_voter.Quorum} votes");
                    Complete(outcome.Entry, _protocol.ErrorReply("resh: replicas disagree"));
                    break;
            }
        }
    }
}
