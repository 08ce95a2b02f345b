using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Diagnostics;
using Resh.Group;
using Resh.Ordering;

namespace Resh.Remus;

/// <summary>
/// The primary's side of the Remus backup link. Every epoch it ships the ordered log's new entries to the
/// backup; the backup acknowledges what it holds, and that count is this gate's committed count, so a decided
/// reply is released only when the backup holds the request that produced it (output commit). Heartbeats
/// flow both ways. The link carries a term: a backup that has seen a newer term answers Fenced, and this
/// primary then must not serve (<see cref="Fenced"/>).
/// </summary>
public sealed partial class BackupLink : ICommitGate, ICheckpointHooks, IAsyncDisposable
{
    private readonly RemusOptions _options;
    private readonly PinnedTls? _tls;
    private readonly OrderedLog _log;
    private readonly Func<VerifiedCheckpoint?> _newestCheckpoint;
    private readonly CheckpointStore? _store;
    private readonly ReshMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    /// <summary>Epoch 0: with at most this many entries unacknowledged, an append ships at once on the appending thread.</summary>
    private const int InlineShipMaxUnacked = 2;

    private readonly IPEndPoint? _exclude;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<string> _fenced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _run = Task.CompletedTask;
    private long _acked;
    private long _shipped;
    private long _epochsShipped;
    private long _epochsAcked;

    // The handover: from then on the ship loop waits for appends, not for the epoch, and the handover waits for acks as
    // they come (set by every ack and when the link ends), not in polls.
    private readonly TaskCompletionSource _handingOver = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly WakeSignal _ackOrEnd = new();
    private LogSubscription? _subscription;
    private long _bytesShipped;
    private bool _unprotected;

    /// <summary>While unprotected with a backup attached: protection starts once the backup acknowledged up to here (-1: none pending).</summary>
    private long _protectAt = -1;
    private volatile string? _backup;

    /// <param name="unprotected">A primary that took over: replies are released at once until a backup attached and caught up.</param>
    /// <param name="exclude">This host's own backup address, never dialled (a backup that took over).</param>
    /// <param name="clock">The link's time: epochs, heartbeats, the failover timeout and the redial delay (tests: a fake one).</param>
    public BackupLink(RemusOptions options, ulong term, OrderedLog log, Func<VerifiedCheckpoint?> newestCheckpoint, CheckpointStore? store, ReshMetrics metrics, ILogger logger, bool unprotected = false, IPEndPoint? exclude = null, TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
        _options = options;
        _tls = PinnedTls.Load(options.TlsCertificate, options.TlsKey, "remus.tls-certificate/remus.tls-key");
        Term = term;
        _log = log;
        _newestCheckpoint = newestCheckpoint;
        _store = store;
        _metrics = metrics;
        _logger = logger;
        _unprotected = unprotected;
        _exclude = exclude;
        _acked = 0;
    }

    public ulong Term { get; }

    /// <summary>Entries below this position are held by the backup (or <see cref="long.MaxValue"/> while unprotected).</summary>
    public long CommittedCount => Volatile.Read(ref _unprotected) ? long.MaxValue : Volatile.Read(ref _acked);

    /// <summary>What the backup acknowledged (entries held), whatever the protection.</summary>
    public long AckedCount => Volatile.Read(ref _acked);

    /// <summary>The log is kept in memory from what the backup has not acknowledged, whatever the checkpoints.</summary>
    long ICheckpointHooks.RetainFrom => AckedCount;

    public long EpochsShipped => Interlocked.Read(ref _epochsShipped);

    public long EpochsAcked => Interlocked.Read(ref _epochsAcked);

    /// <summary>The log position the backup held when it last attached (what it already had, or the checkpoint it was sent covers).</summary>
    public long AttachedAt => Volatile.Read(ref _attachedAt);

    private long _attachedAt;
    private long _checkpointBytes;
    private long _checkpointSentAt = -1;

    private long _peerPosition = -1;
    private volatile string? _welcomedBy;

    /// <summary>The backup that accepted this link's term, from its Welcome on (also while it is still sent a checkpoint), or null.</summary>
    public string? WelcomedBy => _welcomedBy;

    /// <summary>The position in the backup's last heartbeat: what it holds, or for a migration target what its replicas applied.</summary>
    public long PeerPosition => Interlocked.Read(ref _peerPosition);

    /// <summary>Bytes of checkpoint files sent at the last attach (0 when the backup needed none).</summary>
    public long CheckpointBytes => Interlocked.Read(ref _checkpointBytes);

    /// <summary>The position of the checkpoint sent at the last attach, or -1.</summary>
    public long CheckpointSentAt => Interlocked.Read(ref _checkpointSentAt);

    /// <summary>Bytes of epochs and checkpoint files sent so far (frame payloads), over every connection.</summary>
    public long BytesShipped => Interlocked.Read(ref _bytesShipped);

    /// <summary>The backup address connected to, or null.</summary>
    public string? Backup => _backup;

    public bool Protected => !Volatile.Read(ref _unprotected);

    public event Action<long>? Committed;

    /// <summary>Completes with the reason when a backup refused this primary's term: it must stop serving.</summary>
    public Task<string> Fenced => _fenced.Task;

    /// <summary>Raised when a backup attached (address) or the link to it was lost (null).</summary>
    public event Action<string?>? BackupChanged;

    public void Start() => _run = Task.Run(() => RunAsync(_stop.Token), CancellationToken.None);

    /// <summary>Tells the backup this is a controlled shutdown (it must not take over), then closes the link.</summary>
    public async Task<bool> SayGoodbyeAsync(TimeSpan timeout) => await SayLastAsync(LinkFrame.Goodbye, timeout);

    /// <summary>
    /// The service migrates to another host (`resh migrate`): tells the backup to keep what it holds and to wait for the
    /// migrated primary, which attaches in a newer term than this link's, instead of stopping or taking over; then closes
    /// the link. This primary's term is fenced there from then on.
    /// </summary>
    public async Task<bool> SayMovingAsync(TimeSpan timeout) => await SayLastAsync(LinkFrame.Moving, timeout, new NumberFrame(Term + 1, _log.Count).Encode());

    /// <summary>
    /// A planned switchover: waits (within <paramref name="timeout"/>) until the backup acknowledged every entry of the log,
    /// then tells it to take over now. Returns the backup it told (HOST:PORT), or null when none is attached to tell.
    /// The address is taken before the telling: a backup that takes over closes the link at once, which clears
    /// <see cref="Backup"/>.
    /// </summary>
    public async Task<string?> HandOverAsync(TimeSpan timeout)
    {
        _handingOver.TrySetResult();
        Volatile.Read(ref _subscription)?.Poke();
        using (var waiting = new CancellationTokenSource(timeout))
        {
            try
            {
                while (AckedCount < _log.Count && Volatile.Read(ref _connection) is not null)
                {
                    await _ackOrEnd.WaitAsync(waiting.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // Not all acknowledged within the timeout: the backup is not told (below, when the link is gone).
            }
        }

        var backup = _backup;
        return backup is not null && Volatile.Read(ref _connection) is not null && await SayLastAsync(LinkFrame.Handover, timeout) ? backup : null;
    }

    private async Task<bool> SayLastAsync(LinkFrame frame, TimeSpan timeout, byte[]? payload = null)
    {
        var connection = Volatile.Read(ref _connection);
        if (connection is null)
        {
            return false;
        }

        try
        {
            using var cts = new CancellationTokenSource(timeout);
            await connection.SendAsync(frame, payload is null ? ReadOnlyMemory<byte>.Empty : payload, cts.Token);
            return true;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    private LinkConnection? _connection;

    private async Task RunAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (!ct.IsCancellationRequested && !_fenced.Task.IsCompleted)
        {
            foreach (var address in _options.Backups)
            {
                if (ct.IsCancellationRequested || _fenced.Task.IsCompleted)
                {
                    return;
                }

                if (address.Equals(_exclude))
                {
                    continue;
                }

                try
                {
                    await ServeAsync(address, ct);
                    delay = TimeSpan.FromMilliseconds(50);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                catch (System.Security.Authentication.AuthenticationException e)
                {
                    // Not the pair's certificate on the other side (or none): never attach; try again, it may be fixed.
                    HandshakeRefused(_logger, address.ToString(), e.Message);
                }
                catch (Exception e) when (e is IOException or SocketException or InvalidDataException or EndOfStreamException or TimeoutException or OperationCanceledException or CheckpointStoreException)
                {
                    if (_backup is not null)
                    {
                        LinkLost(_logger, address.ToString(), e.Message);
                        _backup = null;
                        BackupChanged?.Invoke(null);
                    }
                }
            }

            try
            {
                await Task.Delay(delay, _clock, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromMilliseconds(Math.Min(1000, delay.TotalMilliseconds * 2));
        }
    }

    /// <summary>One connection to one backup, until it fails.</summary>
    private async Task ServeAsync(IPEndPoint address, CancellationToken ct)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            connect.CancelAfter(_options.FailoverTimeout + TimeSpan.FromSeconds(1));
            try
            {
                await SocketReadLoop.ConnectAsync(socket, address, connect.Token);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        LinkConnection opened;
        using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            handshake.CancelAfter(_options.FailoverTimeout + TimeSpan.FromSeconds(5));
            try
            {
                opened = await LinkConnection.ConnectAsync(socket, _tls, handshake.Token);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        await using var connection = opened;
        using var linkCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var token = linkCts.Token;
        await connection.SendAsync(LinkFrame.Hello, new HelloFrame(Term, _log.First, _log.Count, 0).Encode(), token);
        var (type, payload) = await connection.ReceiveAsync(token).WaitAsync(_options.FailoverTimeout + TimeSpan.FromSeconds(5), token);
        if (type == LinkFrame.Fenced)
        {
            var fence = NumberFrame.Decode(payload);
            var reason = $"the backup at {address} has seen term {fence.Number}, newer than this primary's {Term}: another primary took over";
            FencedOff(_logger, reason);
            _fenced.TrySetResult(reason);
            return;
        }

        if (type != LinkFrame.Welcome)
        {
            throw new InvalidDataException($"expected Welcome from {address}, got {type}");
        }

        var expect = NumberFrame.Decode(payload).Position;
        if (expect > _log.Count)
        {
            var reason = $"the backup at {address} holds the log up to #{expect - 1}, more than this primary (#{_log.Count - 1}); it may have served as primary: start from its state";
            FencedOff(_logger, reason);
            _fenced.TrySetResult(reason);
            return;
        }

        var next = expect;
        _welcomedBy = address.ToString();
        Volatile.Write(ref _attachedAt, expect);
        Interlocked.Exchange(ref _checkpointBytes, 0);
        Interlocked.Exchange(ref _checkpointSentAt, -1);
        if (expect < _log.First)
        {
            try
            {
                next = await SendCheckpointAsync(connection, address, token);
            }
            catch
            {
                _welcomedBy = null;
                throw;
            }
        }

        // The backup holds everything below next (its log, or the checkpoint it was just sent). A primary that served
        // unprotected goes on so until the backup caught up with the log as it is now: gating replies at once would hold
        // every client until a new backup replayed the whole stretch after its checkpoint (670 ms for 80,000 entries in
        // benchmarks/migration.sh -m remus, where the old primary attaches as the new one's backup).
        Volatile.Write(ref _shipped, next);
        if (Volatile.Read(ref _unprotected))
        {
            Volatile.Write(ref _protectAt, _log.Count);
        }

        OnAck(new NumberFrame((ulong)Interlocked.Read(ref _epochsAcked), next));
        _connection = connection;
        _backup = address.ToString();
        Attached(_logger, _backup, Term, next);
        BackupChanged?.Invoke(_backup);
        var heard = _clock.GetTimestamp();
        var reader = Task.Run(
            async () =>
            {
                while (!token.IsCancellationRequested)
                {
                    var (t, p) = await connection.ReceiveAsync(token);
                    Volatile.Write(ref heard, _clock.GetTimestamp());
                    if (t == LinkFrame.Ack)
                    {
                        OnAck(NumberFrame.Decode(p));
                    }
                    else if (t == LinkFrame.Heartbeat)
                    {
                        Interlocked.Exchange(ref _peerPosition, NumberFrame.Decode(p).Position);
                    }
                    else if (t == LinkFrame.Fenced)
                    {
                        _fenced.TrySetResult($"the backup at {address} fenced this primary (term {NumberFrame.Decode(p).Number})");
                        return;
                    }
                }
            },
            CancellationToken.None);
        try
        {
            await ShipAsync(connection, () => Volatile.Read(ref heard), reader, token);
        }
        finally
        {
            _connection = null;
            _welcomedBy = null;
            _ackOrEnd.Set(inline: false);
            await linkCts.CancelAsync();
            try
            {
                await reader;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or EndOfStreamException or InvalidDataException or ObjectDisposedException)
            {
            }
        }
    }

    private void OnAck(NumberFrame ack)
    {
        Interlocked.Exchange(ref _epochsAcked, (long)ack.Number);
        long before;
        do
        {
            before = Volatile.Read(ref _acked);
            if (ack.Position <= before)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _acked, ack.Position, before) != before);
        if (Volatile.Read(ref _protectAt) is >= 0 and var protectAt && ack.Position >= protectAt)
        {
            // Caught up: from now on a reply waits for the backup's acknowledgement of its request.
            Volatile.Write(ref _protectAt, -1);
            Volatile.Write(ref _unprotected, false);
            CaughtUp(_logger, _backup ?? _welcomedBy ?? "?", ack.Position);
        }

        Committed?.Invoke(ack.Position);
        if (_handingOver.Task.IsCompleted)
        {
            _ackOrEnd.Set(inline: false);
        }
    }

    /// <summary>Ships an epoch whenever one is due, and a heartbeat when there is nothing to ship; returns when the link fails.</summary>
    private async Task ShipAsync(LinkConnection connection, Func<long> heard, Task reader, CancellationToken ct)
    {
        var heartbeat = TimeSpan.FromTicks(_options.FailoverTimeout.Ticks / 3);
        var lastSent = _clock.GetTimestamp();
        var epochStart = lastSent;
        // Epoch 0: while little is unacknowledged, an append ships at once on the appending thread; busy, the loop
        // runs on the thread pool and the next epoch takes everything appended meanwhile.
        using var subscription = _log.Subscribe(_options.Epoch > TimeSpan.Zero ? null : () => Volatile.Read(ref _shipped) - Volatile.Read(ref _acked) <= InlineShipMaxUnacked);
        Volatile.Write(ref _subscription, subscription);

        // Epoch 0 waits for appends only; this timer wakes it for heartbeats and for the checks above.
        using var beat = _options.Epoch > TimeSpan.Zero ? null : _clock.CreateTimer(static s => ((LogSubscription)s!).Poke(), subscription, heartbeat / 2, heartbeat / 2);
        var batch = new LogEntry[4096];
        var number = (ulong)Interlocked.Read(ref _epochsShipped);
        while (!ct.IsCancellationRequested)
        {
            if (reader.IsCompleted)
            {
                await reader;
                throw new IOException("the backup closed the link");
            }

            if (_clock.GetElapsedTime(heard()) > _options.FailoverTimeout)
            {
                throw new TimeoutException($"nothing from the backup for {_options.FailoverTimeout.TotalMilliseconds:0} ms");
            }

            var next = Volatile.Read(ref _shipped);
            if (_log.Count > next)
            {
                // The epoch closes: everything appended since the last one goes in one frame (or a few, if large).
                var n = _log.Read(next, batch);
                number++;
                var frame = EpochFrame.Encode(number, next, new ArraySegment<LogEntry>(batch, 0, n));
                await connection.SendAsync(LinkFrame.Epoch, frame, ct);
                Interlocked.Add(ref _bytesShipped, frame.Length);
                Array.Clear(batch, 0, n);
                Volatile.Write(ref _shipped, next + n);

                Interlocked.Exchange(ref _epochsShipped, (long)number);
                var now = _clock.GetTimestamp();
                _metrics.Epoch(_clock.GetElapsedTime(epochStart, now));
                (lastSent, epochStart) = (now, now);
                if (n == batch.Length)
                {
                    continue;
                }
            }
            else if (_clock.GetElapsedTime(lastSent) >= heartbeat)
            {
                await connection.SendAsync(LinkFrame.Heartbeat, new NumberFrame(Term, Volatile.Read(ref _shipped)).Encode(), ct);
                lastSent = _clock.GetTimestamp();
            }

            if (_options.Epoch == TimeSpan.Zero || _handingOver.Task.IsCompleted)
            {
                // Epoch 0, or the handover's last entries: ship as soon as something is appended (or the heartbeat
                // timer, or the handover, pokes).
                if (_log.Count <= Volatile.Read(ref _shipped))
                {
                    await subscription.WaitForSignalAsync(ct);
                }

                continue;
            }

            // Wait out the epoch; a handover cuts it short.
            await Task.WhenAny(Task.Delay(_options.Epoch, _clock, ct), _handingOver.Task);
        }
    }

    /// <summary>A backup that needs entries this primary no longer holds gets the newest checkpoint first.</summary>
    private async Task<long> SendCheckpointAsync(LinkConnection connection, IPEndPoint address, CancellationToken ct)
    {
        var checkpoint = _newestCheckpoint() ?? throw new InvalidDataException($"the backup at {address} needs entries before #{_log.First} and there is no checkpoint");
        var store = _store ?? throw new InvalidDataException("no checkpoint store");
        var staging = Path.Combine(Path.GetTempPath(), $"resh-transfer-{Guid.NewGuid():N}");
        try
        {
            await store.RestoreAsync(checkpoint.SnapshotId, staging, ct);
            var buffer = new byte[1 << 20];
            foreach (var file in Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(staging, file);
                await using var stream = File.OpenRead(file);
                long offset = 0;
                int read;
                do
                {
                    read = await stream.ReadAsync(buffer, ct);
                    await connection.SendAsync(LinkFrame.SnapshotFile, new SnapshotFileFrame(relative, offset, buffer.AsMemory(0, read)).Encode(), ct);
                    Interlocked.Add(ref _bytesShipped, read);
                    Interlocked.Add(ref _checkpointBytes, read);
                    offset += read;
                }
                while (read > 0);
            }

            await connection.SendAsync(LinkFrame.SnapshotEnd, new NumberFrame(Term, checkpoint.Sequence).Encode(), ct);
            Interlocked.Exchange(ref _checkpointSentAt, checkpoint.Sequence);
            CheckpointSent(_logger, checkpoint.Sequence, address.ToString());
            return checkpoint.Sequence + 1;
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }

        _stop.Dispose();
        _tls?.Dispose();
    }

    [LoggerMessage(EventId = 1419, Level = LogLevel.Warning, Message = "The backup at {Backup} failed the link's TLS handshake: {Reason}")]
    private static partial void HandshakeRefused(ILogger logger, string backup, string reason);

    [LoggerMessage(EventId = 1421, Level = LogLevel.Information, Message = "Backup {Backup} caught up at #{Position}: replies wait for its acknowledgement from now on")]
    private static partial void CaughtUp(ILogger logger, string backup, long position);

    [LoggerMessage(EventId = 1401, Level = LogLevel.Information, Message = "Backup {Backup} attached (term {Term}), shipping from #{Next}")]
    private static partial void Attached(ILogger logger, string backup, ulong term, long next);

    [LoggerMessage(EventId = 1402, Level = LogLevel.Warning, Message = "Link to backup {Backup} lost: {Reason}; replies wait until a backup acknowledges")]
    private static partial void LinkLost(ILogger logger, string backup, string reason);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Critical, Message = "Fenced: {Reason}. This primary stops serving")]
    private static partial void FencedOff(ILogger logger, string reason);

    [LoggerMessage(EventId = 1404, Level = LogLevel.Information, Message = "Sent checkpoint #{Sequence} to backup {Backup}")]
    private static partial void CheckpointSent(ILogger logger, long sequence, string backup);
}
