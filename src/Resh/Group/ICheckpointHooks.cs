
namespace Resh.Group;

/// <summary>
/// What a mode adds to the group's checkpoints (D-RESH: the etcd cursor, who schedules, trimming etcd's log after a
/// stored checkpoint; Remus: keeping in memory what the backup has not acknowledged). Every member has a default
/// that adds nothing.
/// </summary>
public interface ICheckpointHooks
{
    /// <summary>More labels for the checkpoint at <paramref name="sequence"/>; null for none.</summary>
    IReadOnlyDictionary<string, string>? Labels(long sequence) => null;

    /// <summary>Whether this gateway submits the checkpoints that fall due. Checkpoints asked for explicitly are submitted whatever it says.</summary>
    bool SchedulesCheckpoints => true;

    /// <summary>Entries from this position on are kept in memory whatever the checkpoints.</summary>
    long RetainFrom => long.MaxValue;

    /// <summary>A checkpoint is stored and verified, with its labels.</summary>
    void Stored(VerifiedCheckpoint checkpoint, IReadOnlyDictionary<string, string> labels)
    {
    }
}
