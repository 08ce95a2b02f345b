using Resh.Cli;
using Resh.Group;

namespace Resh.Tests.Cli;

public sealed class ReplayProgressTests
{
    private static ReplicaStatus Replica(string id, long applied, string role = "active") =>
        new(id, "up", 1, 1, applied, 0, 0, 1, 0, null, null) { Role = role };

    private static GroupStatus Group(int faults, long head, params ReplicaStatus[] replicas) => new("resh", faults, head, head, replicas.Length, true, replicas);

    [Fact]
    public void The_replay_stands_where_f_plus_one_active_replicas_are_so_a_lagging_one_does_not_hold_it_back()
    {
        var status = Group(1, 100_000, Replica("r1", 40_000), Replica("r2", 90_000), Replica("r3", 10));
        Assert.Equal(40_000, ReplayProgress.Reached(status));
        Assert.Equal((39_000L, 99_000L), ReplayProgress.Of(status, 1_000, 100_000));
    }

    [Fact]
    public void Passive_replicas_do_not_count_and_too_few_running_replicas_mean_nothing_is_reached()
    {
        var status = Group(1, 50_000, Replica("r1", 50_000), Replica("r2", 50_000, "passive"));
        Assert.Equal(-1, ReplayProgress.Reached(status));
        Assert.Equal((0L, 50_000L), ReplayProgress.Of(status, 0, 50_000));
    }

    [Fact]
    public void Progress_is_clamped_to_the_target_the_replay_started_with()
    {
        var status = Group(1, 80_000, Replica("r1", 80_000), Replica("r2", 80_000), Replica("r3", 80_000));
        Assert.Equal((60_000L, 60_000L), ReplayProgress.Of(status, 0, 60_000));
    }
}
