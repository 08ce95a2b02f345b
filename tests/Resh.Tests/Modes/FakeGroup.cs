using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Resh.Diagnostics;
using Resh.Group;

namespace Resh.Tests.Modes;

/// <summary>
/// An in-process group for policy tests: replicas are rows the test sets, and every action a policy takes is
/// recorded (and, for wake and retire, applied to the rows as the real group would).
/// </summary>
internal sealed class FakeGroup : IGroupControl, IDisposable
{
    private readonly object _lock = new();
    private readonly List<ReplicaView> _replicas;

    public FakeGroup(GroupOptions options, params (ReplicaRole Role, ReplicaState State)[] replicas)
    {
        Options = options;
        _replicas = [.. replicas.Select((r, i) => new ReplicaView(i, $"r{i + 1}", r.Role, r.State, 1, 100, r.Role == ReplicaRole.Active && r.State == ReplicaState.Up, StartedTimestamp: i, ActivatedTimestamp: 0))];
    }

    public GroupOptions Options { get; }

    public ReshMetrics Metrics { get; } = new();

    public EventJournal Events { get; } = new();

    public ILogger Logger => NullLogger.Instance;

    public TimeProvider Clock { get; init; } = TimeProvider.System;

    public bool Stopping { get; set; }

    public int Quorum { get; set; } = 2;

    /// <summary>The end of the settled prefix the view reports (the log head is 100).</summary>
    public long SettledBelow { get; set; } = 90;

    /// <summary>Whether an update brings the passive replicas at rest to its target, as the real group does.</summary>
    public bool ApplyUpdates { get; init; }

    public HashSet<long> Settled { get; } = [];

    public List<int> Woken { get; } = [];

    public List<int> Demoted { get; } = [];

    public List<(int Replica, string Kind, string Reason)> Suspected { get; } = [];

    public List<int> Retired { get; } = [];

    public List<long> Updates { get; } = [];

    public List<PassiveUpdateMethod> Methods { get; } = [];

    public List<string> Probes { get; } = [];

    public VerifiedCheckpoint? NewestCheckpoint => null;

    public void Set(int replica, ReplicaRole? role = null, ReplicaState? state = null, long? applied = null)
    {
        lock (_lock)
        {
            var r = _replicas[replica];
            var newRole = role ?? r.Role;
            var newState = state ?? r.State;
            _replicas[replica] = r with { Role = newRole, State = newState, Applied = applied ?? r.Applied, Votes = newRole == ReplicaRole.Active && newState == ReplicaState.Up };
        }
    }

    public GroupView View()
    {
        lock (_lock)
        {
            return new GroupView([.. _replicas], Quorum, _replicas.Count(r => r.Votes), 0, 100, 101, SettledBelow);
        }
    }

    public bool IsSettled(long sequence) => Settled.Contains(sequence);

    public Task WakeAsync(int replica)
    {
        lock (_lock)
        {
            Woken.Add(replica);
            if (_replicas[replica].Role == ReplicaRole.Passive)
            {
                _replicas[replica] = _replicas[replica] with { Role = ReplicaRole.Active, State = ReplicaState.Recovering, ActivatedTimestamp = 1000 + Woken.Count };
            }
        }

        return Task.CompletedTask;
    }

    public Task DemoteAsync(int replica)
    {
        lock (_lock)
        {
            Demoted.Add(replica);
        }

        return Task.CompletedTask;
    }

    public Task UpdatePassivesAsync(long target, PassiveUpdateMethod method, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            Updates.Add(target);
            Methods.Add(method);
            for (var i = 0; ApplyUpdates && i < _replicas.Count; i++)
            {
                if (_replicas[i] is { Role: ReplicaRole.Passive, State: ReplicaState.Passive } r && r.Applied < target - 1)
                {
                    _replicas[i] = r with { Applied = target - 1 };
                }
            }
        }

        return Task.CompletedTask;
    }

    public Task ProbeDigestAsync(string digest, CancellationToken cancellationToken)
    {
        Probes.Add(digest);
        return Task.CompletedTask;
    }

    public void Suspect(int replica, int generation, string kind, string reason)
    {
        lock (_lock)
        {
            Suspected.Add((replica, kind, reason));
        }
    }

    public bool Retire(int replica, int generation)
    {
        lock (_lock)
        {
            if (_replicas[replica].State != ReplicaState.Up || _replicas[replica].Generation != generation)
            {
                return false;
            }

            Retired.Add(replica);
            _replicas[replica] = _replicas[replica] with { State = ReplicaState.Suspected, Votes = false };
            return true;
        }
    }

    public Task<VerifiedCheckpoint?> CheckpointNowAsync(TimeSpan timeout) => Task.FromResult<VerifiedCheckpoint?>(null);

    public void CheckNow()
    {
    }

    public void Dispose() => Metrics.Dispose();
}
