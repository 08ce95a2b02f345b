using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

/// <summary>N-version check: variant a and variant b must answer every request with the same bytes.</summary>
public sealed class SampleKvDifferentialTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task RandomCommandSequence_GivesIdenticalReplyStreams(int seed)
    {
        await using KvServer a = await SampleKvTestServer.StartAsync(Variant.A);
        await using KvServer b = await SampleKvTestServer.StartAsync(Variant.B);
        RespTestClient[] clientsA = [await RespTestClient.ConnectAsync(a), await RespTestClient.ConnectAsync(a)];
        RespTestClient[] clientsB = [await RespTestClient.ConnectAsync(b), await RespTestClient.ConnectAsync(b)];
        try
        {
            var generator = new SampleKvCommandGenerator(seed, redisComparable: false);
            var connectionPicker = new Random(seed);
            for (int i = 0; i < 3000; i++)
            {
                string[] request = generator.Next();
                int connection = connectionPicker.Next(4) == 0 ? 1 : 0;
                string replyA = await clientsA[connection].CommandAsync(request);
                string replyB = await clientsB[connection].CommandAsync(request);
                Assert.True(replyA == replyB, $"request #{i} [{Describe(request)}] on connection {connection}: a={Describe(replyA)} b={Describe(replyB)}");
            }

            string digestA = await clientsA[0].CommandAsync("DIGEST");
            Assert.Equal(digestA, await clientsB[0].CommandAsync("DIGEST"));
            Assert.NotEqual("$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n", digestA);
        }
        finally
        {
            foreach (RespTestClient client in clientsA.Concat(clientsB))
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task PipelinedRandomSequence_GivesIdenticalByteStreams()
    {
        await using KvServer a = await SampleKvTestServer.StartAsync(Variant.A);
        await using KvServer b = await SampleKvTestServer.StartAsync(Variant.B);
        await using RespTestClient clientA = await RespTestClient.ConnectAsync(a);
        await using RespTestClient clientB = await RespTestClient.ConnectAsync(b);

        var generator = new SampleKvCommandGenerator(42, redisComparable: false);
        byte[] batch = [.. Enumerable.Range(0, 3000).SelectMany(_ => RespTestClient.Encode(generator.Next()))];
        await Task.WhenAll(clientA.SendRawAsync(batch), clientB.SendRawAsync(batch));
        List<string> repliesA = await clientA.ReadRepliesAsync(3000);
        List<string> repliesB = await clientB.ReadRepliesAsync(3000);
        Assert.Equal(string.Concat(repliesA), string.Concat(repliesB));
    }

    internal static string Describe(IEnumerable<string> parts) => string.Join(' ', parts.Select(Describe));

    internal static string Describe(string text) =>
        text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal);
}
