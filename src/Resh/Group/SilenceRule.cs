
namespace Resh.Group;

/// <summary>What the group does about a replica that owes a reply (<see cref="SilenceRule"/>).</summary>
internal enum SilenceVerdict
{
    /// <summary>Nothing yet.</summary>
    None,

    /// <summary>It has not answered an entry <c>reply-timeout</c> after the others decided it: suspect it.</summary>
    LateAfterDecision,

    /// <summary>It misses an undecided entry for <c>reply-timeout</c> and passive replicas can be woken: wake them.</summary>
    Wake,

    /// <summary>It misses an undecided entry that others answered, for 2×<c>reply-timeout</c>: suspect it.</summary>
    SilentWhileOthersAnswered,

    /// <summary>It is the only voter, nobody answered the entry, and it made no progress for 2×<c>reply-timeout</c>: suspect it.</summary>
    SilentAlone,

    /// <summary>A replaying replica whose applied position has not moved for <c>reply-timeout</c>: suspect it.</summary>
    ReplayStalled,
}

/// <summary>
/// The times the rule reads for one replica, all in one clock's ticks. <paramref name="OwedEntryDecided"/>,
/// <paramref name="DecidedAt"/>, <paramref name="AppendedAt"/>, <paramref name="OthersAnswered"/> and
/// <paramref name="Checkpoint"/> describe the entry after its applied position; <paramref name="Replaying"/> is a
/// replica rebuilding (or bringing itself up to date), judged by progress only; <paramref name="SoleVoter"/>: it is
/// the only replica that votes.
/// </summary>
internal readonly record struct OwedReply(
    bool Replaying,
    long LastProgressAt,
    bool OwedEntryDecided,
    long DecidedAt,
    long AppendedAt,
    bool OthersAnswered,
    bool Checkpoint,
    bool SoleVoter = true);

/// <summary>
/// When a silent replica becomes a fault, as a pure function of ticks so it is tested on made-up times. An undecided
/// entry nobody answered leads to an action: replicas are woken where the mode can wake any, and a voter that is the
/// only one (mode remus, or the one left while another rebuilds) is suspected; otherwise a hung only voter leaves the
/// group undecided for good. Several voters all silent with nobody to wake are left alone: that is a slow command on
/// every replica (a long script, a huge DEL), not a fault, and suspecting them all would rebuild the group into the
/// same command. Silence is measured from the later of the entry's append and the replica's last progress, so a
/// backlog it works through is not silence, and never from before the replica started (the group passes the later of
/// the two as the append and decision times); a checkpoint (its save, its capture) is timed by the checkpoint code.
/// </summary>
internal static class SilenceRule
{
    public static SilenceVerdict Judge(in OwedReply owed, long now, long timeout, bool canWake)
    {
        if (owed.Replaying)
        {
            return now - owed.LastProgressAt > timeout ? SilenceVerdict.ReplayStalled : SilenceVerdict.None;
        }

        if (owed.OwedEntryDecided)
        {
            return now - owed.DecidedAt > timeout ? SilenceVerdict.LateAfterDecision : SilenceVerdict.None;
        }

        if (!owed.OthersAnswered && owed.Checkpoint)
        {
            return SilenceVerdict.None;
        }

        var silent = owed.OthersAnswered ? now - owed.AppendedAt : Math.Min(now - owed.AppendedAt, now - owed.LastProgressAt);
        if (silent > timeout && canWake)
        {
            return SilenceVerdict.Wake;
        }

        if (silent > 2 * timeout && (owed.OthersAnswered || owed.SoleVoter))
        {
            return owed.OthersAnswered ? SilenceVerdict.SilentWhileOthersAnswered : SilenceVerdict.SilentAlone;
        }

        return SilenceVerdict.None;
    }
}
