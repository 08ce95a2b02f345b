using System.Diagnostics;
using System.Net;
using Resh.Domains;
using Resh.Protocols;
using Resh.Replicas;

namespace Resh.Group;

/// <summary>Supervision: each replica slot starts a domain, restores the newest checkpoint, starts an applier, and rebuilds it when it is suspected.</summary>
public sealed partial class ReplicaGroup
{
    private async Task SuperviseAsync(Replica replica, CancellationToken ct)
    {
        var failures = 0;
        var first = true;
        while (!ct.IsCancellationRequested)
        {
            IDomain? domain = null;
            ReplicaApplier? applier = null;
            var started = false;
            try
            {
                var generation = replica.Generation + 1;
                var port = PortAllocator.GetFreeTcpPort(IPAddress.Loopback);
                var dataDir = Path.GetFullPath(Path.Combine(_options.StateDirectory, "replicas", replica.Spec.Id, $"g{generation}"));
                if (Directory.Exists(dataDir))
                {
                    Directory.Delete(dataDir, recursive: true);
                }

                Directory.CreateDirectory(dataDir);

                // A new replica starts from the newest verified checkpoint and replays only the log after it.
                VerifiedCheckpoint? from;
                lock (_lock)
                {
                    from = _newest;
                    replica.StartsAt = from is null ? 0 : from.Sequence + 1;
                    replica.Role = _policy.RoleOfNewGeneration(ViewUnderLock(), replica.Index, first);
                }

                if (from is not null)
                {
                    var restoreStarted = Stopwatch.GetTimestamp();
                    var info = await _store!.RestoreAsync(from.SnapshotId, dataDir, ct);
                    _events.Record("+replica-restored", replica.Spec.Id, $"generation {generation} starts from checkpoint #{from.Sequence} ({from.SnapshotId}, {info.LogicalBytes} bytes in {Stopwatch.GetElapsedTime(restoreStarted).TotalMilliseconds:0} ms)");
                }

                var values = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["dir"] = dataDir,
                    ["id"] = replica.Spec.Id,
                };
                var args = CommandTemplate.Expand(replica.Spec.Command, values);
                var logDir = Path.GetFullPath(LogDirectory);

                // Stopping ends supervision first: no replica is started once the group stops (the domain factory
                // is disposed after it).
                ct.ThrowIfCancellationRequested();
                domain = _createDomain(new DomainSpec($"{replica.Spec.Id}.g{generation}", args, dataDir, logDir, replica.Spec.Environment));
                lock (_lock)
                {
                    replica.Generation = generation;
                    replica.DataDirectory = dataDir;
                    replica.Port = port;
                    replica.Domain = domain;
                    replica.State = ReplicaState.Starting;
                    replica.Broken = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                domain.Start();
                await WaitUntilReadyAsync(domain, port, ct);
                if (from?.Labels is { } labels)
                {
                    await RestoreStateAsync(replica, port, labels, ct);
                }

                GroupLog.ReplicaStarted(_logger, replica.Spec.Id, generation, domain.Pid, port, domain.Isolation);

                long parkAt = -1;
                lock (_lock)
                {
                    // The first generation starts with the group (before any client, perhaps on a log restored from
                    // disk) and votes from the start; a rebuilt replica replays first. A passive one (mode spare) is
                    // fed the verified log and frozen.
                    var start = replica.StartsAt ?? 0;
                    applier = new ReplicaApplier(replica.Spec.Id, replica.Index, new IPEndPoint(IPAddress.Loopback, port), _log, _protocol, start, this)
                    {
                        // A replica brought up to date may replay only the writes (the policy says); off once it votes.
                        SkipSettledReads = _policy.SkipsSettledReads(replica.Role, first),
                    };
                    if (replica.Role == ReplicaRole.Passive)
                    {
                        replica.State = ReplicaState.Updating;
                        parkAt = Math.Max(start, _policy.UpdateTarget(ViewUnderLock()));
                        applier.Limit = parkAt;
                    }
                    else
                    {
                        replica.State = first ? ReplicaState.Up : ReplicaState.Recovering;
                        if (replica.State == ReplicaState.Up)
                        {
                            _voter.AddVoter(replica.Index);
                        }
                    }

                    replica.Applier = applier;
                    replica.Activating = false;
                    replica.StartedTimestamp = _clock.GetTimestamp();
                    replica.StartsAt = null;
                    replica.ReplayFrom = start;
                    replica.ProgressApplied = start - 1;
                    replica.ProgressTimestamp = replica.StartedTimestamp;
                    replica.ReplayTimestamp = replica.ProgressTimestamp;
                }

                await applier.StartAsync(ct);
                if (parkAt >= 0)
                {
                    _ = ParkAsync(replica, applier, parkAt, ct);
                }
                started = true;
                failures = 0;
                if (first)
                {
                    first = false;
                    replica.FirstStart.TrySetResult();
                }

                var exited = domain.Exited;
                var broken = replica.Broken.Task;
                var done = await Task.WhenAny(exited, broken);
                if (done == exited)
                {
                    var code = await exited;
                    Suspect(replica, applier, "exit", $"process exited with code {code}");
                }
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                // Stopping: whatever failed (a domain killed under it, a disposed factory) is the stop, not a fault.
            }
            catch (Exception e)
            {
                failures++;
                lock (_lock)
                {
                    // This generation will not apply the log: it no longer holds truncation back (the next
                    // attempt picks the newest checkpoint again).
                    replica.StartsAt = null;
                }

                var reason = e is DomainStartException or CommandTemplateException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                GroupLog.ReplicaStartFailed(_logger, replica.Spec.Id, reason);
                _events.Record("+replica-start-failed", replica.Spec.Id, reason);
                if (first && failures >= 3)
                {
                    replica.FirstStart.TrySetException(new DomainStartException($"replica {replica.Spec.Id} could not be started: {reason}"));
                }

                Suspect(replica, applier, "start", reason);
            }
            finally
            {
                if (applier is not null)
                {
                    await applier.DisposeAsync();
                }

                if (domain is not null)
                {
                    await domain.DisposeAsync();
                }
            }

            if (ct.IsCancellationRequested)
            {
                break;
            }

            var backoff = started ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures, 6))));
            try
            {
                await Task.Delay(backoff, ct);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// Gives a replica restored from a checkpoint what the checkpoint's files do not hold (RESP: the configuration
    /// changed by CONFIG SET), before it replays the log after the checkpoint. A refused request is recorded.
    /// </summary>
    private async Task RestoreStateAsync(Replica replica, int port, IReadOnlyDictionary<string, string> labels, CancellationToken ct)
    {
        var requests = _protocol.RestoreRequests(labels);
        if (requests.Count == 0)
        {
            return;
        }

        using var client = await WireClient.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), _protocol.CreateReplyFramer(), ct);
        foreach (var request in requests)
        {
            var reply = await client.RequestAsync(request, ct);
            if (_protocol.IsErrorReply(reply))
            {
                _events.Record("+replica-restore-refused", replica.Spec.Id, $"{System.Text.Encoding.UTF8.GetString(request).ReplaceLineEndings(" ").Trim()}: {System.Text.Encoding.UTF8.GetString(reply).Trim()}");
            }
        }
    }

    private async Task WaitUntilReadyAsync(IDomain domain, int port, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.StartupTimeout);
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        try
        {
            while (true)
            {
                if (domain.Exited.IsCompleted)
                {
                    throw new DomainStartException($"{domain.Id} exited with code {await domain.Exited} during start; see {Path.Combine(LogDirectory, domain.Id)}.err");
                }

                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                attempt.CancelAfter(TimeSpan.FromSeconds(1));
                try
                {
                    if (await _protocol.ProbeAsync(endpoint, attempt.Token))
                    {
                        // The port was free when chosen; make sure it is the replica that answers on it, not a process
                        // that took it in between (the next start tries another port).
                        if (domain.OwnsListener(port) == false)
                        {
                            throw new DomainStartException($"{domain.Id}: port {port} answers, but no process of {domain.Id} listens on it: another process took the port between its choice and the replica's start");
                        }

                        return;
                    }
                }
                catch (OperationCanceledException) when (!timeout.IsCancellationRequested)
                {
                }

                await Task.Delay(50, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new DomainStartException($"{domain.Id} did not answer the readiness probe on port {port} within {_options.StartupTimeout.TotalSeconds:0.#}s; see {Path.Combine(LogDirectory, domain.Id)}.err");
        }
    }
}
