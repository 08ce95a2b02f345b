using System.Buffers;
using Resh.Domains;
using Resh.Replicas;
using Resh.Voting;

namespace Resh.Group;

public sealed partial class ReplicaGroup
{
    private sealed class Replica(int index, ReplicaSpec spec)
    {
        public int Index { get; } = index;

        public ReplicaSpec Spec { get; } = spec;

        public ReplicaState State { get; set; } = ReplicaState.Starting;

        public int Generation { get; set; }

        public int Port { get; set; }

        public string DataDirectory { get; set; } = "";

        /// <summary>Where the generation being started will begin to apply the log; the log is kept from there.</summary>
        public long? StartsAt { get; set; }

        /// <summary>Where the current applier began.</summary>
        public long ReplayFrom { get; set; }

        /// <summary>Recovering: the applied position last seen to move, and when.</summary>
        public long ProgressApplied { get; set; }

        public long ProgressTimestamp { get; set; }

        /// <summary>When the current applier started to replay.</summary>
        public long ReplayTimestamp { get; set; }

        /// <summary>Background checkpoint flushes of this replica running now (a fork writing its files).</summary>
        public int Flushing;

        /// <summary>When its last background flush ended (0: none yet).</summary>
        public long FlushEnded;

        /// <summary>Entries the last rebuild replayed before voting again.</summary>
        public long? LastReplay { get; set; }

        public IDomain? Domain { get; set; }

        public ReplicaApplier? Applier { get; set; }

        public long Mismatches { get; set; }

        public long Recoveries { get; set; }

        public string? LastSuspicion { get; set; }

        public TaskCompletionSource<string> Broken { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource FirstStart { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Active, or (mode spare) passive.</summary>
        public ReplicaRole Role { get; set; } = ReplicaRole.Active;

        /// <summary>Serializes freezing and thawing of this replica's domain with its role changes (mode spare).</summary>
        public SemaphoreSlim Control { get; } = new(1, 1);

        /// <summary>Group-clock timestamp at which the current generation's applier started: the domain's age.</summary>
        public long StartedTimestamp { get; set; }

        /// <summary>Group-clock timestamp of the last activation (passive to active), 0 if never.</summary>
        public long ActivatedTimestamp { get; set; }

        /// <summary>Woken from passive and not voting yet (mode spare).</summary>
        public bool Activating { get; set; }

        /// <summary>When it was last brought up to date as a passive replica.</summary>
        public DateTimeOffset? LastUpdate { get; set; }

        /// <summary>Scratch space of this replica's reader loop for normalized replies.</summary>
        public ArrayBufferWriter<byte> NormalizeBuffer { get; } = new(256);

        /// <summary>Scratch list of this replica's reader loop for vote outcomes.</summary>
        public List<VoteOutcome> Outcomes { get; } = new(4);
    }
}
