using Resh.Ordering;

namespace Resh.Tests.Ordering;

public sealed class LocalSequencerContractTests : SequencerContractTests
{
    protected override Task<ISequencer> CreateAsync(OrderedLog log) => Task.FromResult<ISequencer>(new LocalSequencer(log));
}
