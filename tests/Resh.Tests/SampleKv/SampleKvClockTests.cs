using System.Net;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

/// <summary>Expiry at the exact millisecond boundaries, with a clock the test moves by hand.</summary>
public sealed class SampleKvClockTests
{
    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task RelativeExpiry_CountsFromTheCommandsClock(Variant variant)
    {
        var clock = new ManualClock(1_700_000_000_000);
        await using KvServer server = await KvServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), variant, clock.Read, CancellationToken.None);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);

        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "px", "v", "PX", "250"));
        Assert.Equal(":1700000000250\r\n", await client.CommandAsync("PEXPIRETIME", "px"));
        Assert.Equal("+OK\r\n", await client.CommandAsync("SET", "ex", "v", "EX", "2"));
        Assert.Equal(":1700000002000\r\n", await client.CommandAsync("PEXPIRETIME", "ex"));
        Assert.Equal(":1700000002\r\n", await client.CommandAsync("EXPIRETIME", "ex"));

        // A key is still there at its deadline and gone one millisecond later (Redis: expired when now > deadline).
        clock.Now = 1_700_000_000_250;
        Assert.Equal("$1\r\nv\r\n", await client.CommandAsync("GET", "px"));
        Assert.Equal(":2\r\n", await client.CommandAsync("DBSIZE"));
        clock.Now++;
        Assert.Equal("$-1\r\n", await client.CommandAsync("GET", "px"));
        Assert.Equal(":1\r\n", await client.CommandAsync("DBSIZE"));
        Assert.Equal("*1\r\n$2\r\nex\r\n", await client.CommandAsync("KEYS", "*"));
        Assert.Equal("$2\r\nex\r\n", await client.CommandAsync("RANDOMKEY"));

        // EXPIREAT with a deadline equal to now deletes at once.
        Assert.Equal(":1\r\n", await client.CommandAsync("PEXPIREAT", "ex", clock.Now.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(":0\r\n", await client.CommandAsync("EXISTS", "ex"));
        Assert.Equal(":0\r\n", await client.CommandAsync("DBSIZE"));
    }

    [Fact]
    public async Task Digests_AgreeAcrossVariants_ThroughExpiry()
    {
        var clock = new ManualClock(1_000_000);
        await using KvServer a = await KvServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), Variant.A, clock.Read, CancellationToken.None);
        await using KvServer b = await KvServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), Variant.B, clock.Read, CancellationToken.None);
        await using RespTestClient clientA = await RespTestClient.ConnectAsync(a);
        await using RespTestClient clientB = await RespTestClient.ConnectAsync(b);

        string[][] script = [["SET", "a", "1", "PX", "10"], ["SET", "b", "2", "PX", "20"], ["SET", "c", "3"], ["SELECT", "1"], ["SET", "a", "4", "PX", "5"]];
        await SampleKvTestServer.RunAsync(clientA, script);
        await SampleKvTestServer.RunAsync(clientB, script);
        var digests = new HashSet<string>();
        foreach (long step in new long[] { 0, 5, 1, 4, 1, 9, 1 })
        {
            clock.Now += step;
            string digest = await clientA.CommandAsync("DIGEST");
            Assert.Equal(digest, await clientB.CommandAsync("DIGEST"));
            digests.Add(digest);
        }

        Assert.Equal(4, digests.Count);
    }

    private sealed class ManualClock(long start)
    {
        private long _now = start;

        public long Now
        {
            get => Volatile.Read(ref _now);
            set => Volatile.Write(ref _now, value);
        }

        public long Read() => Now;
    }
}
