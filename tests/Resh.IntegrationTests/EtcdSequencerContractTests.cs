using Microsoft.Extensions.Logging.Abstractions;
using Resh.Dresh;
using Resh.Ordering;
using Resh.Tests.Ordering;

namespace Resh.IntegrationTests;

/// <summary>The sequencer contract against a real etcd: each test gets its own etcd and a joined sequencer.</summary>
public sealed class EtcdSequencerContractTests : SequencerContractTests, IAsyncLifetime
{
    private Etcd? _etcd;

    public async Task InitializeAsync() => _etcd = await Etcd.StartAsync();

    public async Task DisposeAsync()
    {
        if (_etcd is not null)
        {
            await _etcd.DisposeAsync();
        }
    }

    protected override async Task<ISequencer> CreateAsync(OrderedLog log)
    {
        var sequencer = new EtcdSequencer(log, new EtcdOrderingOptions { Endpoints = [_etcd!.Url], Cluster = "contract", Member = 1 }, NullLogger.Instance);
        try
        {
            await sequencer.StartAsync(CancellationToken.None);
            await sequencer.JoinAsync(null, null, null, CancellationToken.None);
            return sequencer;
        }
        catch
        {
            await sequencer.DisposeAsync();
            throw;
        }
    }
}
