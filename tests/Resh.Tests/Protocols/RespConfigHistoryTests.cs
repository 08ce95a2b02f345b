using System.Text;
using Resh.Clients;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

public sealed class RespConfigHistoryTests
{
    private static byte[] Command(params string[] args) => RespClient.Encode(args);

    private static List<string> Requests(IReadOnlyDictionary<string, string>? labels) =>
        [.. RespConfigHistory.Requests(labels!).Select(Encoding.UTF8.GetString)];

    [Fact]
    public void A_checkpoint_carries_the_config_sets_up_to_its_place_whole_and_in_log_order()
    {
        var history = new RespConfigHistory();
        history.Observe(5, Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "hash-max-listpack-entries", "7"));
        history.Observe(6, Command("SET", "config", "set"));
        history.Observe(9, [.. Command("MULTI"), .. Command("CONFIG", "SET", "hash-max-ziplist-entries", "9"), .. Command("EXEC")]);

        Assert.Null(history.LabelsAt(4));
        Assert.Equal([Encoding.UTF8.GetString(Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "hash-max-listpack-entries", "7"))], Requests(history.LabelsAt(7)));
        Assert.Equal(
            [Encoding.UTF8.GetString(Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru", "hash-max-listpack-entries", "7")), Encoding.UTF8.GetString(Command("CONFIG", "SET", "hash-max-ziplist-entries", "9"))],
            Requests(history.LabelsAt(9)));
    }

    [Fact]
    public void A_gateway_that_continues_from_a_checkpoint_keeps_its_config_sets_for_the_next_one()
    {
        var before = new RespConfigHistory();
        before.Observe(3, Command("CONFIG", "SET", "notify-keyspace-events", "KEA"));
        var after = new RespConfigHistory();
        after.Seed(10, before.LabelsAt(10)!);
        after.Observe(12, Command("CONFIG", "SET", "hash-max-listpack-entries", "7"));
        Assert.Equal(
            [Encoding.UTF8.GetString(Command("CONFIG", "SET", "notify-keyspace-events", "KEA")), Encoding.UTF8.GetString(Command("CONFIG", "SET", "hash-max-listpack-entries", "7"))],
            Requests(after.LabelsAt(20)));
    }

    [Fact]
    public void A_transaction_aborted_by_its_watch_sets_nothing()
    {
        var order = new RespOrder();
        var watch = new System.Buffers.ArrayBufferWriter<byte>();
        RespScripts.WriteEval(watch, RespOrder.WatchScript, keys: 1, args: 0);
        RespEncoding.WriteBulk(watch, "k"u8);
        Assert.Null(order.Request(1, 7, 0, watch.WrittenMemory));
        _ = order.Request(2, 8, 0, Command("SET", "k", "v"));
        var block = new byte[][] { Command("MULTI"), Command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"), Command("EXEC") }.SelectMany(b => b).ToArray();
        Assert.NotNull(order.Request(3, 7, 0, block));
        Assert.Null(order.Config.LabelsAt(10));

        // The same block with no watch broken sets the configuration.
        Assert.Null(order.Request(4, 7, 0, block));
        Assert.NotNull(order.Config.LabelsAt(10));
    }

    [Fact]
    public void A_damaged_label_gives_no_requests_rather_than_an_error()
    {
        Assert.Empty(RespConfigHistory.Requests(new Dictionary<string, string> { [RespConfigHistory.Label] = "{not json" }));
        Assert.Empty(RespConfigHistory.Requests(new Dictionary<string, string>()));
    }
}
