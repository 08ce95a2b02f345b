using Microsoft.Extensions.Logging;

namespace Resh.Memory;

/// <summary>
/// The node's devices: the effects its committed transactions declared are performed here, in operation order, and
/// recorded done in the log; a fallback of the cluster voids later effects device by device, with effects paused.
/// </summary>
public sealed partial class MemoryNode
{
    private readonly WakeUp _deviceWake = new();

    private void WakeDevices() => _deviceWake.Set();

    /// <summary>Performs this node's committed effects in operation order, then records them done in the log.</summary>
    private async Task DeviceLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var next = _replica.NextProgress();
                await PerformPendingAsync(ct);
                await Task.WhenAny(_deviceWake.WaitAsync(), next).WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                DeviceFailed(_logger, Node, e.Message);
                try
                {
                    await Task.Delay(500, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task PerformPendingAsync(CancellationToken ct)
    {
        await _devicesGate.WaitAsync(ct);
        try
        {
            var outbox = State.Outbox(Node);
            var pending = outbox.Select(e => e.Operation).ToHashSet();
            _performed.IntersectWith(pending);
            _reported.IntersectWith(pending);

            // Performed before, but the done record did not make it into the log (it was out of reach): again.
            var done = _performed.Where(op => !_reported.Contains(op)).Order().ToList();
            foreach (var entry in outbox)
            {
                if (_performed.Contains(entry.Operation))
                {
                    continue;
                }

                if (!_devices.TryGetValue(entry.Device, out var device))
                {
                    UnknownDevice(_logger, Node, entry.Device, entry.Operation);
                    continue;
                }

                await device.PerformAsync(entry.Operation, entry.Payload, ct);
                _performed.Add(entry.Operation);
                done.Add(entry.Operation);
            }

            if (done.Count > 0)
            {
                await AppendAsync(new DoneRecord(Node, [.. done]).Encode(), ct);
                _reported.UnionWith(done);
            }
        }
        finally
        {
            _devicesGate.Release();
        }
    }

    private async Task<IDisposable> PauseEffectsAsync()
    {
        await _devicesGate.WaitAsync(_stop.Token);
        return new Releaser(_devicesGate);
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        public void Dispose() => gate.Release();
    }

    /// <summary>Voids, device by device, the effects of transactions after the snapshot the cluster falls back to.</summary>
    private async Task FallBackDevicesAsync(long position)
    {
        foreach (var device in _devices.Values)
        {
            await device.FallBackAsync(position, _stop.Token);
        }

        _performed.Clear();
        _reported.Clear();
        WakeDevices();
    }

    [LoggerMessage(EventId = 1914, Level = LogLevel.Error, Message = "Memory: node {Node}: performing effects failed: {Problem}; trying again")]
    private static partial void DeviceFailed(ILogger logger, int node, string problem);

    [LoggerMessage(EventId = 1915, Level = LogLevel.Error, Message = "Memory: node {Node} has no device {Device} for committed effect {Operation}; it stays pending")]
    private static partial void UnknownDevice(ILogger logger, int node, string device, long operation);
}
