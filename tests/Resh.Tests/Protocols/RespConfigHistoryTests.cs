using System.Text;
using Resh.Clients;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

public sealed class RespConfigHistoryTests
{
    private static byte[] Command(params string[] args) => RespClient.Encode(args);

    [Fact]
    public void A_checkpoint_carries_the_configuration_as_of_its_place_in_the_log()
    {
        var history = new RespConfigHistory();
        history.Observe(5, Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "Hash-Max-Listpack-Entries", "7"));
        history.Observe(6, Command("SET", "config", "set"));
        history.Observe(9, [.. Command("MULTI"), .. Command("CONFIG", "SET", "hash-max-listpack-entries", "9"), .. Command("EXEC")]);

        Assert.Null(history.LabelsAt(4));
        var atSeven = RespConfigHistory.Requests(history.LabelsAt(7)!).Select(Encoding.UTF8.GetString).ToList();
        Assert.Equal(
            [Encoding.UTF8.GetString(Command("CONFIG", "SET", "hash-max-listpack-entries", "7")), Encoding.UTF8.GetString(Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"))],
            atSeven);
        Assert.Contains(Encoding.UTF8.GetString(Command("CONFIG", "SET", "hash-max-listpack-entries", "9")), RespConfigHistory.Requests(history.LabelsAt(9)!).Select(Encoding.UTF8.GetString));
    }

    [Fact]
    public void A_gateway_that_continues_from_a_checkpoint_keeps_its_configuration_for_the_next_one()
    {
        var before = new RespConfigHistory();
        before.Observe(3, Command("CONFIG", "SET", "notify-keyspace-events", "KEA"));
        var labels = before.LabelsAt(10)!;

        var after = new RespConfigHistory();
        after.Seed(10, labels);
        after.Observe(12, Command("CONFIG", "SET", "hash-max-listpack-entries", "7"));
        var requests = RespConfigHistory.Requests(after.LabelsAt(20)!).Select(Encoding.UTF8.GetString).ToList();
        Assert.Equal(2, requests.Count);
        Assert.Contains(Encoding.UTF8.GetString(Command("CONFIG", "SET", "notify-keyspace-events", "KEA")), requests);
    }

    [Fact]
    public void A_damaged_label_gives_no_requests_rather_than_an_error()
    {
        Assert.Empty(RespConfigHistory.Requests(new Dictionary<string, string> { [RespConfigHistory.Label] = "{not json" }));
        Assert.Empty(RespConfigHistory.Requests(new Dictionary<string, string>()));
    }
}
