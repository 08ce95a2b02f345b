using System.Net;
using Resh.Admin;
using Resh.Group;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Hosting;

/// <summary>
/// Mode remus on this host: the log is ordered here and shipped to the backup through a <see cref="BackupLink"/>,
/// which is an output-commit gate of the group (a reply waits until the backup holds its request); a primary that a
/// backup fences stops; /status shows the link. The backup's own lifecycle (`resh backup`, the takeover) is the
/// host's <see cref="ReshHost.RunBackupAsync"/>, which sets <see cref="Role"/> and <see cref="Server"/> here.
/// </summary>
internal sealed class RemusHosting(ReshHost host) : IModeHosting
{
    private BackupLink? _link;

    /// <summary>"primary", or "backup" until a takeover.</summary>
    public string Role { get; set; } = "primary";

    /// <summary>The backup's listener for the primary, while this process is a backup.</summary>
    public BackupServer? Server { get; set; }

    public string TermPath => Path.Combine(host.Options.Group.StateDirectory, "term");

    public string? CheckpointLabel => null;

    /// <summary>True when a backup refused this primary's term: another primary took over, and this one must not serve.</summary>
    public bool Fenced => _link?.Fenced.IsCompleted == true;

    public Task<(ISequencer Sequencer, VerifiedCheckpoint? Restored, long LastSession)> OrderAsync(VerifiedCheckpoint? restored, string? label, long lastSession, CancellationToken cancellationToken) =>
        Task.FromResult<(ISequencer, VerifiedCheckpoint?, long)>((new LocalSequencer(host.Log), restored, lastSession));

    /// <summary>Output commit to the backup from the first request on: a reply waits until the backup holds its request.</summary>
    public void Attach(ReplicaGroup group) => AttachLink(group, PrimaryTerm(), unprotected: false, exclude: null);

    public Task ServingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The primary's term: the one on disk (from a takeover), at least 1.</summary>
    private ulong PrimaryTerm()
    {
        var terms = new TermFile(TermPath);
        var term = Math.Max(1, terms.Read());
        terms.Write(term);
        return term;
    }

    /// <summary>Ships the log to a backup (after a takeover: <paramref name="unprotected"/> until one attaches, never to <paramref name="exclude"/>).</summary>
    public void AttachLink(ReplicaGroup group, ulong term, bool unprotected, IPEndPoint? exclude)
    {
        var link = new BackupLink(host.Options.Replication.Remus, term, host.Log, () => group.NewestCheckpoint, host.Store, host.Metrics, host.LoggerFactory.CreateLogger("Resh.Remus"), unprotected, exclude);
        link.BackupChanged += backup => host.Events.Record(backup is null ? "+backup-lost" : "+backup-attached", null, backup is null ? "replies wait until a backup acknowledges" : $"{backup}, term {term}");
        _ = link.Fenced.ContinueWith(
            t =>
            {
                host.Events.Record("+fenced", null, t.Result);
                host.RequestShutdown();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        group.AddCommitGate(link);
        group.AddCheckpointHooks(link);
        _link = link;
        link.Start();
    }

    /// <summary>Mode remus as /status shows it.</summary>
    public ReshStatus Describe(ReshStatus status)
    {
        var link = _link;
        var server = Server;
        return status with
        {
            Remus = new RemusStatus(
                Role,
                link?.Term ?? server?.Term ?? 0,
                link?.Backup,
                server?.Primary,
                link?.EpochsShipped ?? 0,
                link?.EpochsAcked ?? 0,
                link?.AckedCount ?? host.Log.Count,
                host.Group?.HeldReplies ?? 0,
                link?.Protected ?? false,
                Fenced),
        };
    }

    /// <summary>A controlled stop: the backup is told, so it does not take over.</summary>
    public async Task StoppingAsync()
    {
        if (_link is not null && !Fenced)
        {
            await _link.SayGoodbyeAsync(TimeSpan.FromSeconds(2));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_link is not null)
        {
            await _link.DisposeAsync();
        }

        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }
}
