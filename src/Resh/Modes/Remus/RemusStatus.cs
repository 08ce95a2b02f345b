using Resh.Composition;

namespace Resh.Remus;

/// <summary>
/// Mode remus as /status shows it: this process's role (primary, backup), its term, the peer, epochs shipped and
/// acknowledged, what the backup holds, replies held for output commit, whether a backup protects the primary,
/// and whether this primary was fenced by a newer term.
/// </summary>
public sealed record RemusStatus(string Role, ulong Term, string? Backup, string? Primary, long Epoch, long AckedEpoch, long AckedCount, int HeldReplies, bool Protected, bool Fenced) : ModeStatus;
