using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>The local side of the order observer: MONITOR sessions, and sessions blocked in this gateway.</summary>
internal sealed partial class RespOrder
{
    /// <summary>MONITOR: the session receives every request of the log from now on, as it is appended.</summary>
    public void Monitor(long sessionId, IClientLink link)
    {
        lock (_lock)
        {
            _monitors[sessionId] = link;
            _monitorCount = _monitors.Count;
        }
    }

    public void Unmonitor(long sessionId)
    {
        lock (_lock)
        {
            if (_monitors.Remove(sessionId))
            {
                _monitorCount = _monitors.Count;
            }
        }
    }

    // Deterministic state: touched only in log order, under the log's lock.
    private readonly Dictionary<long, Watch> _watches = [];
    private readonly Dictionary<(int Db, string Key), HashSet<long>> _watchers = [];

    // Local state: sessions blocked in this gateway.
    private readonly Lock _lock = new();
    private readonly Dictionary<(int Db, string Key), HashSet<BlockedSession>> _blocked = [];
    private int _blockedCount;

    /// <summary>One MONITOR line per command: "+seconds.micros [db address] "name" "arg" ...".</summary>
    private void Emit(long sessionId, int db, ReadOnlySpan<byte> payload)
    {
        var micros = (_clock.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        var who = sessionId == 0 ? "resh" : _address(sessionId) ?? $"session:{sessionId}";
        var lines = new StringBuilder();
        foreach (var args in RespKeySpecs.Commands(payload))
        {
            lines.Append(System.Globalization.CultureInfo.InvariantCulture, $"+{micros / 1_000_000}.{micros % 1_000_000:D6} [{db} {who}]");
            foreach (var arg in args)
            {
                lines.Append(" \"");
                foreach (var b in arg)
                {
                    lines.Append(b switch
                    {
                        (byte)'"' => "\\\"",
                        (byte)'\\' => "\\\\",
                        (byte)'\n' => "\\n",
                        (byte)'\r' => "\\r",
                        (byte)'\t' => "\\t",
                        >= 0x20 and < 0x7f => ((char)b).ToString(),
                        _ => $"\\x{b:x2}",
                    });
                }

                lines.Append('"');
            }

            lines.Append("\r\n");
        }

        var bytes = Encoding.UTF8.GetBytes(lines.ToString());
        lock (_lock)
        {
            foreach (var link in _monitors.Values)
            {
                link.TryPush(bytes);
            }
        }
    }

    /// <summary>A session of this gateway blocked on some keys, signalled when a write in the log touches one.</summary>
    internal sealed class BlockedSession(RespOrder owner, (int Db, string Key)[] keys) : IDisposable
    {
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _disposed;

        public (int Db, string Key)[] Keys { get; } = keys;

        /// <summary>Completes at the next touch of one of the keys after the last <see cref="Rearm"/>.</summary>
        public Task Touched => Volatile.Read(ref _signal).Task;

        /// <summary>Forgets the touches so far (called before each retry is submitted, so no later touch is missed).</summary>
        public void Rearm()
        {
            if (Volatile.Read(ref _signal).Task.IsCompleted)
            {
                Volatile.Write(ref _signal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            }
        }

        public void Signal() => Volatile.Read(ref _signal).TrySetResult();

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Unblock(this);
            }
        }
    }
}
