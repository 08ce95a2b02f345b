using Resh.Admin;
using Resh.Cli;
using Resh.Dresh;
using Resh.Group;
using Resh.Remus;

namespace Resh.Tests.Cli;

public sealed class StatusTableTests
{
    private static readonly ReplicaStatus Replica = new("r1", "up", 4242, 7001, 10, 0, 0, 1, 0.5, "cgroup-v1", null);

    [Fact]
    public void A_dresh_host_shows_its_etcd_run_the_trim_and_every_peer_with_its_lease()
    {
        var status = new ReshStatus(new GroupStatus("resh", 1, 10, 10, 1, true, [Replica]))
        {
            Etcd = new EtcdStatus("http://10.0.0.1:2379/", "redis", 1, 812, 40, 12)
            {
                Run = "0001-abc",
                LeasesLost = 1,
                TrimmedRevision = 700,
                TrimmedBatches = 35,
                Peers = [new EtcdPeer(1, "0001-abc", "11", 9, "10.0.0.1:6380", null, null, true), new EtcdPeer(2, "0002-def", "12", -1, "10.0.0.2:6380", null, null, false)],
            },
        };

        var text = StatusTable.Render(status);

        Assert.Contains("etcd http://10.0.0.1:2379/  cluster redis  member 1  run 0001-abc  revision 812  batches 40 (largest 12)  leases lost 1", text, StringComparison.Ordinal);
        Assert.Contains("etcd log trimmed to revision 700 (35 batches deleted)", text, StringComparison.Ordinal);
        Assert.Contains("peer member 1  run 0001-abc  lease ttl 9s  service 10.0.0.1:6380  (this host)", text, StringComparison.Ordinal);
        Assert.Contains("peer member 2  run 0002-def  lease ttl -  service 10.0.0.2:6380\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_remus_primary_shows_its_backup_epochs_and_fencing()
    {
        var status = new ReshStatus(new GroupStatus("remus", 0, 10, 10, 1, true, [Replica]))
        {
            Remus = new RemusStatus("primary", 3, "10.0.0.2:7400", null, 12, 11, 9, 2, Protected: true, Fenced: true),
        };

        var text = StatusTable.Render(status);

        Assert.Contains("remus primary  term 3  backup 10.0.0.2:7400  epoch 12 (acked 11, #9)  held replies 2  FENCED", text, StringComparison.Ordinal);
        Assert.DoesNotContain("etcd", text, StringComparison.Ordinal);
    }
}
