using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Resh.Checkpoints;
using Resh.Group;
using Resh.Native;
using Resh.Ordering;

namespace Resh.Remus;

/// <summary>
/// The highest term a Remus process has seen, kept in a file so that a restart cannot forget it: written durably
/// (fsync of the file and its directory), and a file that cannot be read stops the start rather than read as term 0,
/// which would let a deposed primary serve again.
/// </summary>
public sealed class TermFile(string path, IDurableFileCalls? calls = null)
{
    public string Path { get; } = path;

    /// <summary>The term in the file; 0 when there is no file yet.</summary>
    /// <exception cref="InvalidDataException">The file exists but does not hold a term.</exception>
    public ulong Read()
    {
        if (!File.Exists(Path))
        {
            return 0;
        }

        var text = File.ReadAllText(Path).Trim();
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var term)
            ? term
            : throw new InvalidDataException($"the Remus term file {Path} is damaged (it holds '{(text.Length > 40 ? text[..40] + "…" : text)}', not a term); a term must never go back: write the highest term this pair has used into it (at least the term in the other host's file)");
    }

    public void Write(ulong term) => DurableFile.Replace(Path, Encoding.ASCII.GetBytes(term.ToString(CultureInfo.InvariantCulture)), calls);
}

/// <summary>Why a backup stopped being one.</summary>
public enum BackupOutcome
{
    /// <summary>Nothing from the primary for the failover timeout: take over.</summary>
    PrimaryLost,

    /// <summary>The primary shut down in a controlled way: stop too.</summary>
    PrimaryStopped,

    /// <summary>The primary handed the service over (a planned switchover): take over now.</summary>
    HandedOver,
}

/// <summary>
/// The backup's side of the Remus link: accepts the primary, checks its term (an older one is fenced),
/// appends every epoch's entries to the backup's ordered log and acknowledges what it holds (in memory),
/// receives a checkpoint when the primary no longer holds what the backup needs, and decides that the
/// primary is lost when nothing arrived for the failover timeout.
/// </summary>
public sealed partial class BackupServer : IAsyncDisposable
{
    private const int MaxHandshakes = 8;

    private readonly IPEndPoint _listen;
    private readonly RemusOptions _options;
    private readonly PinnedTls? _tls;
    private readonly SemaphoreSlim _serving = new(1, 1);
    private readonly SemaphoreSlim _handshakes = new(MaxHandshakes, MaxHandshakes);
    private readonly OrderedLog _log;
    private readonly CheckpointStore? _store;
    private readonly TermFile _terms;
    private readonly ILogger _logger;
    private readonly string _staging;
    private readonly TimeProvider _clock;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<BackupOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _listener;
    private Task _accept = Task.CompletedTask;
    private Task _monitor = Task.CompletedTask;
    private long _heard;
    private long _lastSession;
    private long _refused;
    private readonly Func<long>? _applied;

    /// <param name="clock">The backup's time: its heartbeats and the failover timeout (tests: a fake one).</param>
    /// <param name="applied">
    /// A migration target: how far its replicas have applied the log (the count below which every one has), sent in every
    /// heartbeat, and heartbeats at least every apply interval, so the source knows when the target is ready. Without it
    /// a heartbeat carries the count the backup holds.
    /// </param>
    public BackupServer(IPEndPoint listen, RemusOptions options, OrderedLog log, CheckpointStore? store, TermFile terms, string stagingDirectory, ILogger logger, TimeProvider? clock = null, Func<long>? applied = null)
    {
        _applied = applied;
        _clock = clock ?? TimeProvider.System;
        _listen = listen;
        _options = options;
        _tls = PinnedTls.Load(options.TlsCertificate, options.TlsKey, "remus.tls-certificate/remus.tls-key");
        _log = log;
        _store = store;
        _terms = terms;
        _staging = stagingDirectory;
        _logger = logger;
        Term = terms.Read();
    }

    /// <summary>Peers refused before a Hello: a failed TLS handshake, a first frame too large or not a Hello, or silence.</summary>
    public long RefusedPeers => Interlocked.Read(ref _refused);

    /// <summary>The highest term seen.</summary>
    public ulong Term { get; private set; }

    /// <summary>The address it listens on (after <see cref="Start"/>).</summary>
    public IPEndPoint EndPoint => (IPEndPoint?)_listener?.LocalEndPoint ?? _listen;

    /// <summary>Completes once a primary was accepted and the log holds its starting point (a checkpoint was received if needed).</summary>
    public Task Synced => _synced.Task;

    /// <summary>Completes when the backup must take over or stop.</summary>
    public Task<BackupOutcome> Outcome => _outcome.Task;

    /// <summary>Stopwatch timestamp of the primary's handover frame (0 before one came).</summary>
    public long HandedOverAt { get; private set; }

    /// <summary>The highest session id in the entries received (sessions of a new primary continue above it).</summary>
    public long LastSession => Interlocked.Read(ref _lastSession);

    /// <summary>The checkpoint received from the primary, if any (the log starts right after it).</summary>
    public VerifiedCheckpoint? Received { get; private set; }

    /// <summary>The primary that is (or was last) connected.</summary>
    public string? Primary { get; private set; }

    public void Start()
    {
        var listener = new Socket(_listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_listen);
            listener.Listen(8);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"cannot listen on {_listen} for the primary: {e.Message}", e);
        }

        _listener = listener;
        _accept = Task.Run(() => AcceptLoopAsync(_stop.Token), CancellationToken.None);
        _monitor = Task.Run(() => MonitorAsync(_stop.Token), CancellationToken.None);
        Listening(_logger, EndPoint.ToString(), Term);
    }

    private async Task AcceptLoopAsync(CancellationToken ct)
    {
        var peers = new List<Task>();
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(ct);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                break;
            }

            // Handshakes run side by side, so a peer that connects and stalls cannot keep the primary out; a few at most.
            if (!_handshakes.Wait(0))
            {
                socket.Dispose();
                continue;
            }

            peers.RemoveAll(t => t.IsCompleted);
            peers.Add(Task.Run(() => AcceptPeerAsync(socket, ct), CancellationToken.None));
        }

        await Task.WhenAll(peers);
    }

    /// <summary>
    /// One peer: the TLS handshake (when configured) and a small first frame that must be a Hello, both bounded in time,
    /// before anything large is allocated or anything is written; then, one primary at a time, the link itself.
    /// </summary>
    private async Task AcceptPeerAsync(Socket socket, CancellationToken ct)
    {
        LinkConnection? connection = null;
        (LinkFrame Type, byte[] Payload) first;
        try
        {
            using var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct);
            handshake.CancelAfter(_options.FailoverTimeout + TimeSpan.FromSeconds(5));
            connection = await LinkConnection.AcceptAsync(socket, _tls, handshake.Token);
            first = await connection.ReceiveAsync(handshake.Token, LinkConnection.MaxHelloBytes);
            if (first.Type != LinkFrame.Hello)
            {
                throw new InvalidDataException($"expected Hello, got {first.Type}");
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or OperationCanceledException or SocketException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _refused);
            PeerRefused(_logger, socket.RemoteEndPoint?.ToString() ?? "?", e.Message);
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
            else
            {
                socket.Dispose();
            }

            return;
        }
        finally
        {
            _handshakes.Release();
        }

        try
        {
            await _serving.WaitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            await connection.DisposeAsync();
            return;
        }

        try
        {
            await ServeAsync(connection, first.Payload, ct);
        }
        finally
        {
            _serving.Release();
        }
    }

    private async Task ServeAsync(LinkConnection connection, byte[] helloPayload, CancellationToken ct)
    {
        await using var _ = connection;
        using var heartbeats = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task beating = Task.CompletedTask;
        try
        {
            var payload = helloPayload;
            LinkFrame type;
            var hello = HelloFrame.Decode(payload);
            if (hello.Term < Term)
            {
                Fencing(_logger, connection.Remote, hello.Term, Term);
                await connection.SendAsync(LinkFrame.Fenced, new NumberFrame(Term, _log.Count).Encode(), ct);
                return;
            }

            if (hello.Term > Term)
            {
                Term = hello.Term;
                _terms.Write(Term);
            }

            await connection.SendAsync(LinkFrame.Welcome, new NumberFrame(Term, _log.Count).Encode(), ct);
            Primary = connection.Remote;
            Touch();
            Interlocked.Exchange(ref _following, 0);
            PrimaryAttached(_logger, Primary, Term, _log.Count);
            beating = Task.Run(() => HeartbeatAsync(connection, heartbeats.Token), CancellationToken.None);
            if (_log.Count >= hello.First)
            {
                _synced.TrySetResult();
            }

            var file = (Path: "", Stream: (FileStream?)null);
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    (type, payload) = await connection.ReceiveAsync(ct);
                    Touch();
                    switch (type)
                    {
                        case LinkFrame.Epoch:
                            var (number, first, entries) = EpochFrame.Decode(payload);
                            if (first != _log.Count)
                            {
                                throw new InvalidDataException($"epoch {number} starts at #{first}, the backup holds up to #{_log.Count - 1}");
                            }

                            foreach (var entry in entries)
                            {
                                _log.Append(entry);
                                if (entry.SessionId > Interlocked.Read(ref _lastSession))
                                {
                                    Interlocked.Exchange(ref _lastSession, entry.SessionId);
                                }
                            }

                            await connection.SendAsync(LinkFrame.Ack, new NumberFrame(number, _log.Count).Encode(), ct);
                            break;
                        case LinkFrame.SnapshotFile:
                            var piece = SnapshotFileFrame.Decode(payload);
                            if (piece.Path != file.Path)
                            {
                                if (file.Stream is not null)
                                {
                                    await file.Stream.DisposeAsync();
                                }

                                var target = Path.GetFullPath(Path.Combine(_staging, piece.Path));
                                if (!target.StartsWith(Path.GetFullPath(_staging) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                                {
                                    throw new InvalidDataException($"checkpoint file '{piece.Path}' is outside the checkpoint");
                                }

                                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                                file = (piece.Path, new FileStream(target, FileMode.Create, FileAccess.Write));
                            }

                            await file.Stream!.WriteAsync(piece.Data, ct);
                            break;
                        case LinkFrame.SnapshotEnd:
                            if (file.Stream is not null)
                            {
                                await file.Stream.DisposeAsync();
                                file = ("", null);
                            }

                            await ReceiveCheckpointAsync(NumberFrame.Decode(payload).Position, ct);
                            break;
                        case LinkFrame.Heartbeat:
                            break;
                        case LinkFrame.Goodbye:
                            PrimaryStopped(_logger, connection.Remote);
                            _outcome.TrySetResult(BackupOutcome.PrimaryStopped);
                            return;
                        case LinkFrame.Moving:
                            Follow(NumberFrame.Decode(payload).Number, connection.Remote);
                            return;
                        case LinkFrame.Handover:
                            HandedOverAt = Stopwatch.GetTimestamp();
                            PrimaryHandedOver(_logger, connection.Remote);
                            _outcome.TrySetResult(BackupOutcome.HandedOver);
                            return;
                        default:
                            throw new InvalidDataException($"unexpected {type} from the primary");
                    }
                }
            }
            finally
            {
                if (file.Stream is not null)
                {
                    await file.Stream.DisposeAsync();
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or EndOfStreamException or TimeoutException or CheckpointStoreException or InvalidOperationException)
        {
            PrimaryLostLink(_logger, connection.Remote, e.Message);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            await heartbeats.CancelAsync();
            try
            {
                await beating;
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>
    /// The primary migrates to another host, whose primary attaches here in <paramref name="term"/> or later: the term is
    /// raised (and written) first, so the old primary is fenced should it come back, and the failover timeout is off
    /// until the new primary was heard. This backup never takes over a service it has not seen the new primary serve:
    /// that primary may be serving already, unprotected, with writes this backup does not hold.
    /// </summary>
    private void Follow(ulong term, string from)
    {
        if (term > Term)
        {
            Term = term;
            _terms.Write(Term);
        }

        Volatile.Write(ref _heard, 0);
        Interlocked.Exchange(ref _following, 1);
        PrimaryMoving(_logger, from, Term, _log.Count);
    }

    /// <summary>1 from a primary's Moving until the next primary attached (see <see cref="Follow"/>).</summary>
    private int _following;

    /// <summary>True while this backup waits for the primary a migration moved the service to.</summary>
    public bool Following => Volatile.Read(ref _following) == 1;

    private async Task ReceiveCheckpointAsync(long sequence, CancellationToken ct)
    {
        if (_log.Count != 0 || _store is null)
        {
            throw new InvalidDataException(_store is null
                ? "the primary sent a checkpoint but this backup has no checkpoint store (configure checkpoint:)"
                : $"the primary sent checkpoint #{sequence} but this backup already holds #{_log.First}..#{_log.Count - 1}: start resh backup with an empty state directory");
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ReplicaGroup.SequenceLabel] = sequence.ToString(CultureInfo.InvariantCulture),
            ["resh.replica"] = "primary",
        };
        Directory.CreateDirectory(_staging);
        var info = await _store.SnapshotAsync(_staging, labels, ct);
        Directory.Delete(_staging, recursive: true);
        _log.StartAt(sequence + 1);
        Received = new VerifiedCheckpoint(sequence, info.Id, info.Time);
        CheckpointReceived(_logger, sequence, info.Id, info.LogicalBytes);
        _synced.TrySetResult();
    }

    private async Task HeartbeatAsync(LinkConnection connection, CancellationToken ct)
    {
        var period = TimeSpan.FromTicks(_options.FailoverTimeout.Ticks / 3);
        using var timer = new PeriodicTimer(_applied is null ? period : TimeSpan.FromTicks(Math.Min(period.Ticks, _options.ApplyInterval.Ticks)), _clock);
        while (await timer.WaitForNextTickAsync(ct))
        {
            await connection.SendAsync(LinkFrame.Heartbeat, new NumberFrame(Term, _applied?.Invoke() ?? _log.Count).Encode(), ct);
        }
    }

    private void Touch() => Volatile.Write(ref _heard, _clock.GetTimestamp());

    /// <summary>The primary is lost when a synced backup heard nothing from it for the failover timeout.</summary>
    private async Task MonitorAsync(CancellationToken ct)
    {
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_options.FailoverTimeout.TotalMilliseconds / 10, 5, 100));
        using var timer = new PeriodicTimer(period, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var heard = Volatile.Read(ref _heard);
                if (_synced.Task.IsCompleted && heard != 0 && _clock.GetElapsedTime(heard) > _options.FailoverTimeout)
                {
                    PrimaryLost(_logger, Primary ?? "?", _options.FailoverTimeout.TotalMilliseconds);
                    _outcome.TrySetResult(BackupOutcome.PrimaryLost);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Takes over: the term goes up (and to disk) before anything is served, so the old primary is fenced.</summary>
    public ulong BeginTerm()
    {
        Term++;
        _terms.Write(Term);
        return Term;
    }

    /// <summary>Stops listening and drops the primary's connection.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener?.Dispose();
        try
        {
            await Task.WhenAll(_accept, _monitor).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
        }

        _stop.Dispose();
        _tls?.Dispose();
    }

    [LoggerMessage(EventId = 1418, Level = LogLevel.Warning, Message = "Refused a peer on the backup link from {Peer}: {Reason}")]
    private static partial void PeerRefused(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = 1411, Level = LogLevel.Information, Message = "Backup listening on {Address} for the primary (term {Term})")]
    private static partial void Listening(ILogger logger, string address, ulong term);

    [LoggerMessage(EventId = 1412, Level = LogLevel.Information, Message = "Primary {Primary} attached (term {Term}); the backup holds up to #{Count}")]
    private static partial void PrimaryAttached(ILogger logger, string primary, ulong term, long count);

    [LoggerMessage(EventId = 1413, Level = LogLevel.Warning, Message = "Fenced primary {Primary}: its term {Old} is older than {Term}")]
    private static partial void Fencing(ILogger logger, string primary, ulong old, ulong term);

    [LoggerMessage(EventId = 1414, Level = LogLevel.Warning, Message = "Link to primary {Primary} lost: {Reason}")]
    private static partial void PrimaryLostLink(ILogger logger, string primary, string reason);

    [LoggerMessage(EventId = 1415, Level = LogLevel.Warning, Message = "Primary {Primary} lost: nothing for {Milliseconds:0} ms; taking over")]
    private static partial void PrimaryLost(ILogger logger, string primary, double milliseconds);

    [LoggerMessage(EventId = 1416, Level = LogLevel.Information, Message = "Primary {Primary} stopped in a controlled way; the backup stops too")]
    private static partial void PrimaryStopped(ILogger logger, string primary);

    [LoggerMessage(EventId = 1420, Level = LogLevel.Information, Message = "Primary {Primary} handed the service over (a switchover); taking over now")]
    private static partial void PrimaryHandedOver(ILogger logger, string primary);

    [LoggerMessage(EventId = 1422, Level = LogLevel.Information, Message = "Primary {Primary} migrates the service to another host: this backup keeps the log up to #{Count}, fences terms below {Term} and waits for the new primary; it does not take over before that one attached")]
    private static partial void PrimaryMoving(ILogger logger, string primary, ulong term, long count);

    [LoggerMessage(EventId = 1417, Level = LogLevel.Information, Message = "Received checkpoint #{Sequence} from the primary, stored as {Snapshot} ({Bytes} bytes)")]
    private static partial void CheckpointReceived(ILogger logger, long sequence, string snapshot, long bytes);
}
