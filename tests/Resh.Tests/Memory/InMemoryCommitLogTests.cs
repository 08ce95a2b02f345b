using Resh.Memory;

namespace Resh.Tests.Memory;

public sealed class InMemoryCommitLogTests : CommitLogContract
{
    protected override Task<ICommitLog> CreateAsync() => Task.FromResult<ICommitLog>(new InMemoryCommitLog());
}
