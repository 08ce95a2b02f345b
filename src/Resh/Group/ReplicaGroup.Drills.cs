using System.Net;
using Resh.Domains;
using Resh.Replicas;

namespace Resh.Group;

/// <summary>Fault drills: crash, hang, corrupt and slow a replica on purpose.</summary>
public sealed partial class ReplicaGroup
{
    /// <summary>Runs a fault drill against one replica; returns what was done.</summary>
    public async Task<string> InjectAsync(string replicaId, FaultKind fault, CancellationToken cancellationToken)
    {
        var replica = _replicas.FirstOrDefault(r => r.Spec.Id == replicaId)
            ?? throw new ArgumentException($"no replica '{replicaId}'; replicas are {string.Join(", ", _replicas.Select(r => r.Spec.Id))}", nameof(replicaId));
        IDomain? domain;
        ReplicaApplier? applier;
        int port;
        bool passive;
        lock (_lock)
        {
            domain = replica.Domain;
            applier = replica.Applier;
            port = replica.Port;
            passive = replica.State is ReplicaState.Passive or ReplicaState.Updating;
            if (domain is null || replica.State is not (ReplicaState.Up or ReplicaState.Recovering or ReplicaState.Passive or ReplicaState.Updating))
            {
                throw new InvalidOperationException($"replica {replicaId} is {replica.State.ToString().ToLowerInvariant()}, not running");
            }
        }

        if (passive && fault == FaultKind.Hang)
        {
            throw new InvalidOperationException($"replica {replicaId} is passive and frozen already; a hang would end at its next update (inject crash, corrupt or slow)");
        }

        if (passive && fault == FaultKind.Corrupt)
        {
            return await CorruptPassiveAsync(replica, domain, port, cancellationToken);
        }

        string detail;
        switch (fault)
        {
            case FaultKind.Crash:
                detail = $"SIGKILL to pid {domain.Pid}";
                Injected(replicaId, fault, detail);
                domain.Kill();
                return detail;
            case FaultKind.Hang:
                detail = $"froze pid {domain.Pid} ({domain.Isolation})";
                Injected(replicaId, fault, detail);
                domain.Pause();
                return detail;
            case FaultKind.Corrupt:
                detail = await _protocol.CorruptAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                Injected(replicaId, fault, detail);
                return detail;
            case FaultKind.Slow:
                if (applier is null)
                {
                    throw new InvalidOperationException($"replica {replicaId} has no connection yet");
                }

                detail = $"every reply delayed by {_options.SlowDelay.TotalMilliseconds:0} ms";
                Injected(replicaId, fault, detail);
                applier.ReplyDelay = _options.SlowDelay;
                return detail;
            default:
                throw new ArgumentOutOfRangeException(nameof(fault), fault, null);
        }
    }

    private void Injected(string replicaId, FaultKind fault, string detail)
    {
        GroupLog.FaultInjected(_logger, replicaId, fault, detail);
        _events.Record("+fault-injected", replicaId, $"{fault.ToString().ToLowerInvariant()}: {detail}");
    }
}
