// Over 400 lines: membership is one protocol with etcd (lease, member key, the txn that guards every batch, fencing of a lost run); split, its invariants would be read in two places.
using System.Globalization;
using System.Text.Json;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Resh.Ordering;

namespace Resh.Dresh;

/// <summary>
/// Membership. Every gateway run holds an etcd lease and a member key under /resh/CLUSTER/members/ attached to
/// it, and writes its batches only while that key exists (a txn compares it), so no batch of a run can be
/// ordered after the run's member key is gone. When the key goes (the lease expired, or was revoked at a
/// controlled stop), every gateway sees the deletion at the same revision and appends, there, a Close entry for
/// each session of that run still open: the same entries at the same position everywhere. A gateway whose own
/// lease expired (it was cut off longer than the lease) fails what it had in flight, drops its clients, and
/// joins again as a new run.
/// </summary>
public sealed partial class EtcdSequencer
{
    private readonly Dictionary<string, Peer> _members = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ownRuns = new(StringComparer.Ordinal);
    private readonly HashSet<long> _lostSessions = [];
    private TaskCompletionSource<MemberRun> _registration = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MemberRun? _current;
    private Task _keepAlive = Task.CompletedTask;
    private string? _service;
    private string? _admin;
    private string? _checkpoints;
    private long _runsLost;

    /// <summary>
    /// A gateway run left the cluster (its lease expired or was revoked): the sessions of it that were open, now
    /// closed in the log. Raised on the watcher's loop, in log order; whether the run was this gateway's own.
    /// </summary>
    public event Action<EtcdPeer, IReadOnlyList<long>>? MemberLeft;

    /// <summary>
    /// Another member asked this one to leave its part to it (`resh run --replaces MEMBER` on a new host): the asker's
    /// service address. Raised on the watcher's loop, once per request made after this run joined.
    /// </summary>
    public event Action<string>? LeaveRequested;

    private string LeavePrefix => Root + "leave/";

    /// <summary>The key of a request that member <paramref name="member"/> leave its part (see <see cref="RequestLeaveAsync"/>).</summary>
    private string LeaveKey(int member) => LeavePrefix + member.ToString(CultureInfo.InvariantCulture);

    private const string LeaseLostReason = "this gateway's etcd lease expired, so the cluster closed its sessions; the request was not applied, reconnect";

    private string MembersPrefix => Root + "members/";

    private bool IsLostSession(long session)
    {
        lock (_lock)
        {
            return _lostSessions.Count > 0 && _lostSessions.Contains(session);
        }
    }

    /// <summary>This gateway's current run (MEMBER-INCARNATION), or null while it (re)joins.</summary>
    public string? CurrentRun
    {
        get
        {
            lock (_lock)
            {
                return _current?.Run;
            }
        }
    }

    /// <summary>How often one of this gateway's runs lost its lease and joined again.</summary>
    public long RunsLost => Interlocked.Read(ref _runsLost);

    /// <summary>
    /// Joins the cluster (lease, member key with the addresses to advertise) and starts writing batches and
    /// keeping the lease alive.
    /// </summary>
    public async Task JoinAsync(string? service, string? admin, string? checkpoints, CancellationToken cancellationToken)
    {
        _service = service;
        _admin = admin;
        _checkpoints = checkpoints;
        _ = Task.Run(() => RegisterAsync(_stop.Token), CancellationToken.None);
        _writer = Task.Run(() => WriteLoopAsync(_stop.Token), CancellationToken.None);
        _keepAlive = Task.Run(() => KeepAliveLoopAsync(_stop.Token), CancellationToken.None);
        TaskCompletionSource<MemberRun> registration;
        lock (_lock)
        {
            registration = _registration;
        }

        await registration.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    /// <summary>
    /// Whether this gateway submits the scheduled checkpoints: the member with the lowest number among those
    /// alive does, so that the hosts share one checkpoint position instead of one each.
    /// </summary>
    public bool SchedulesCheckpoints
    {
        get
        {
            lock (_lock)
            {
                return _current is not null && _members.Values.All(p => p.Info.Member >= _options.Member);
            }
        }
    }

    /// <summary>The gateway runs in the cluster as this gateway has applied them, with their leases' time to live.</summary>
    public IReadOnlyList<EtcdPeer> Peers
    {
        get
        {
            lock (_lock)
            {
                return [.. _members.OrderBy(m => m.Value.Info.Member).Select(m => m.Value.ToStatus(m.Key, _current?.Run == m.Key))];
            }
        }
    }

    private async Task<MemberRun> CurrentRunAsync(CancellationToken ct)
    {
        Task<MemberRun> registration;
        lock (_lock)
        {
            registration = _registration.Task;
        }

        return await registration.WaitAsync(ct);
    }

    /// <summary>Grants a lease and puts a member key for a new run of this gateway; retries until etcd answers.</summary>
    private async Task RegisterAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (!ct.IsCancellationRequested)
        {
            long? lease = null;
            var endpoint = Endpoint;
            try
            {
                var incarnation = DateTime.UtcNow.Ticks.ToString("x16", CultureInfo.InvariantCulture);
                var run = $"{_options.Member:D4}-{incarnation}";
                var granted = await _etcd.CallAsync(o => _etcd.Leases.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)_options.Lease.TotalSeconds }, o), ct);
                if (granted.ID == 0 || !string.IsNullOrEmpty(granted.Error))
                {
                    throw new IOException($"etcd granted no lease: {granted.Error}");
                }

                lease = granted.ID;
                var info = new MemberInfo(_options.Member, incarnation, granted.ID.ToString(CultureInfo.InvariantCulture), _service, _admin, _checkpoints);
                var key = MembersPrefix + run;
                lock (_lock)
                {
                    _ownRuns.Add(run);
                }

                var put = new PutRequest { Key = Utf8(key), Value = ByteString.CopyFrom(JsonSerializer.SerializeToUtf8Bytes(info, EtcdJson.Default.MemberInfo)), Lease = granted.ID };
                var header = (await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), ct)).Header;
                Confirmed(header);
                var member = new MemberRun(run, key, granted.ID) { JoinedRevision = header?.Revision ?? 0 };
                lock (_lock)
                {
                    _current = member;
                    _registration.TrySetResult(member);
                }

                Joined(_logger, run, granted.ID, (long)_options.Lease.TotalSeconds);
                return;
            }
            catch (Exception e) when (e is RpcException or IOException or EtcdAuthException && !ct.IsCancellationRequested)
            {
                EtcdUnavailable(_logger, endpoint.ToString(), Describe(e));

                // The member key may have been put all the same (etcd answered "request timed out" after applying
                // it): revoking the lease takes it away now, instead of a run nobody keeps alive for a lease's time.
                if (lease is { } granted)
                {
                    await RevokeAsync(granted);
                }

                NextEndpoint(endpoint);
                try
                {
                    await Task.Delay(delay, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                delay = TimeSpan.FromMilliseconds(Math.Min(2000, delay.TotalMilliseconds * 2));
            }
        }
    }

    /// <summary>
    /// Asks member <paramref name="member"/> to leave its part to this gateway: a key under this run's lease (gone with
    /// this run) holding this gateway's service address, which that member sees in the log's watch.
    /// </summary>
    public async Task RequestLeaveAsync(int member, CancellationToken cancellationToken)
    {
        var run = await CurrentRunAsync(cancellationToken);
        var put = new PutRequest { Key = Utf8(LeaveKey(member)), Value = Utf8(_service ?? ""), Lease = run.Lease };
        Confirmed((await _etcd.CallAsync(o => _etcd.Kv.PutAsync(put, o), cancellationToken)).Header);
    }

    /// <summary>Takes back the request of <see cref="RequestLeaveAsync"/> (a later run of that member must not see it).</summary>
    public async Task WithdrawLeaveAsync(int member, CancellationToken cancellationToken)
    {
        var delete = new DeleteRangeRequest { Key = Utf8(LeaveKey(member)) };
        await _etcd.CallAsync(o => _etcd.Kv.DeleteRangeAsync(delete, o), cancellationToken);
    }

    /// <summary>A leave request appeared in the watch: raised when it names this member and was made after this run joined.</summary>
    private void LeaveAsked(string member, ByteString value, long revision)
    {
        MemberRun? current;
        lock (_lock)
        {
            current = _current;
        }

        if (member == _options.Member.ToString(CultureInfo.InvariantCulture) && current is not null && revision > current.JoinedRevision)
        {
            LeaveRequested?.Invoke(value.ToStringUtf8());
        }
    }

    /// <summary>The members registered in etcd now, read directly (for a gateway that cannot follow the log).</summary>
    public async Task<IReadOnlyList<MemberInfo>> ListMembersAsync(CancellationToken ct) =>
        [.. (await RangeAsync(MembersPrefix, keysOnly: false, maxModRevision: 0, ct)).Select(kv => ReadMemberInfo(kv.Value)).OfType<MemberInfo>()];

    /// <summary>A member key's value, or null when this version cannot read it (such a member is no source of checkpoints).</summary>
    private static MemberInfo? ReadMemberInfo(ByteString value)
    {
        try
        {
            return value.IsEmpty ? null : JsonSerializer.Deserialize(value.Span, EtcdJson.Default.MemberInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The run's lease is gone: batches wait for a new run, which is registered once.</summary>
    private void LeaseLost(MemberRun member)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_current, member))
            {
                return;
            }

            _current = null;
            _registration = new TaskCompletionSource<MemberRun>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        Interlocked.Increment(ref _runsLost);
        LeaseExpired(_logger, member.Run);
        _ = Task.Run(() => RegisterAsync(_stop.Token), CancellationToken.None);
    }

    /// <summary>
    /// Keeps this run's lease alive (three times per TTL) over one keepalive stream, made again after a failure, and
    /// reads the peers' remaining TTLs.
    /// </summary>
    private async Task KeepAliveLoopAsync(CancellationToken ct)
    {
        var period = _options.Lease / 3;
        AsyncDuplexStreamingCall<LeaseKeepAliveRequest, LeaseKeepAliveResponse>? stream = null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var endpoint = Endpoint;
                try
                {
                    await Task.Delay(period, ct);
                    CheckWatchLag();
                    MemberRun? member;
                    List<(string Run, string Lease)> peers;
                    lock (_lock)
                    {
                        member = _current;
                        peers = [.. _members.Where(m => m.Key != _current?.Run).Select(m => (m.Key, m.Value.Info.Lease))];
                    }

                    if (member is not null)
                    {
                        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                        cts.CancelAfter(period);
                        var keepAlive = new LeaseKeepAliveRequest { ID = member.Lease };
                        if (stream is null)
                        {
                            stream = _etcd.Leases.LeaseKeepAlive(_etcd.Stream(ct));
                            await EtcdConnection.OpenAsync(stream, keepAlive, cts.Token);
                        }
                        else
                        {
                            await stream.RequestStream.WriteAsync(keepAlive, cts.Token);
                        }
                        if (!await stream.ResponseStream.MoveNext(cts.Token))
                        {
                            throw new IOException("etcd ended the keepalive stream");
                        }

                        var ttl = stream.ResponseStream.Current.TTL;
                        if (ttl <= 0)
                        {
                            // etcd no longer knows the lease: it expired while this gateway could not reach a quorum.
                            LeaseLost(member);
                        }

                        // The keepalive's answer is this run's TTL: no separate time-to-live query for it.
                        SetTtl(member.Run, ttl > 0 ? ttl : -1);
                    }

                    foreach (var (run, lease) in peers)
                    {
                        var id = long.TryParse(lease, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0;
                        var answer = await _etcd.CallAsync(o => _etcd.Leases.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = id }, o), ct);
                        SetTtl(run, answer.TTL);
                    }
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is RpcException or IOException or EtcdAuthException or OperationCanceledException)
                {
                    EtcdUnavailable(_logger, endpoint.ToString(), $"keepalive: {Describe(e)}");
                    stream?.Dispose();
                    stream = null;
                    NextEndpoint(endpoint);
                }
            }
        }
        finally
        {
            stream?.Dispose();
        }
    }

    private void SetTtl(string run, long ttl)
    {
        lock (_lock)
        {
            if (_members.TryGetValue(run, out var peer))
            {
                peer.Ttl = ttl;
            }
        }
    }

    private void MemberJoined(string run, ByteString value)
    {
        var info = ReadMemberInfo(value);
        lock (_lock)
        {
            _members[run] = new Peer(info ?? new MemberInfo(int.TryParse(run.Split('-')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0, "?", "0", null, null));
        }
    }

    /// <summary>
    /// A run's member key is gone: its sessions still open are closed here, in log order, and its batches that
    /// wait for an earlier one are dropped (etcd refuses its later puts).
    /// </summary>
    private void RunLeft(string run)
    {
        Peer? peer;
        bool own;
        lock (_lock)
        {
            _members.Remove(run, out peer);
            own = _ownRuns.Contains(run);
        }

        _closedRuns.Add(run);
        _runs.Remove(run);
        var sessions = _openSessions.Where(s => s.Value == run).Select(s => s.Key).Order().ToList();
        foreach (var session in sessions)
        {
            _openSessions.Remove(session);
            Log.Append(new LogEntry(LogEventKind.Close, session, 0, ReadOnlyMemory<byte>.Empty, 0));
        }

        var status = (peer ?? new Peer(new MemberInfo(0, run, "0", null, null))).ToStatus(run, own);
        MemberGone(_logger, run, sessions.Count, own);
        if (own)
        {
            lock (_lock)
            {
                _lostSessions.UnionWith(sessions);
            }

            FailInFlight(run, 0, LeaseLostReason);
            MemberRun? current;
            lock (_lock)
            {
                current = _current;
            }

            if (current?.Run == run)
            {
                LeaseLost(current);
            }
        }

        MemberLeft?.Invoke(status, sessions);
    }

    /// <summary>Revokes the current run's lease (a controlled stop): the others close what is left of its sessions at once.</summary>
    private async Task RevokeAsync()
    {
        MemberRun? member;
        lock (_lock)
        {
            member = _current;
        }

        if (member is not null)
        {
            await RevokeAsync(member.Lease);
        }
    }

    /// <summary>Revokes a lease of this gateway (its member key goes with it); best effort, within 2 s.</summary>
    private async Task RevokeAsync(long lease)
    {
        try
        {
            await _etcd.CallAsync(o => _etcd.Leases.LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease }, o), CancellationToken.None, TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is RpcException or IOException or EtcdAuthException or OperationCanceledException)
        {
            // The lease expires by itself.
        }
    }

    /// <summary>This gateway's run in the cluster: its name, member key and lease, and the batches it numbered.</summary>
    private sealed class MemberRun(string run, string key, long lease)
    {
        public string Run { get; } = run;

        public string Key { get; } = key;

        public long Lease { get; } = lease;

        /// <summary>The revision of its member key's put: requests made before it were for an earlier run.</summary>
        public long JoinedRevision { get; init; }

        public long Batches { get; set; }
    }

    /// <summary>A member as applied from its key, with its lease's remaining TTL as last read (-1: unknown or expired).</summary>
    private sealed class Peer(MemberInfo info)
    {
        public MemberInfo Info { get; } = info;

        public long Ttl { get; set; } = -1;

        public EtcdPeer ToStatus(string run, bool self) => new(Info.Member, run, Info.Lease, Ttl, Info.Service, Info.Admin, Info.Checkpoints, self);
    }

    [LoggerMessage(EventId = 1503, Level = LogLevel.Information, Message = "joined the etcd cluster as run {Run} (lease {Lease}, {Ttl}s)")]
    private static partial void Joined(ILogger logger, string run, long lease, long ttl);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Warning, Message = "the etcd lease of run {Run} expired; this gateway joins again as a new run")]
    private static partial void LeaseExpired(ILogger logger, string run);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Warning, Message = "gateway run {Run} left the cluster; {Sessions} of its sessions closed in the log (this gateway's own: {Own})")]
    private static partial void MemberGone(ILogger logger, string run, int sessions, bool own);
}
