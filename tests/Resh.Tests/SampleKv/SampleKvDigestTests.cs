using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Resh.SampleKv;

namespace Resh.Tests.SampleKv;

public sealed class SampleKvDigestTests
{
    private const string EmptyDigest = "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n";

    [Theory]
    [InlineData(Variant.A)]
    [InlineData(Variant.B)]
    public async Task EmptyKeyspace_HashesNothing(Variant variant)
    {
        await using KvServer server = await SampleKvTestServer.StartAsync(variant);
        await using RespTestClient client = await RespTestClient.ConnectAsync(server);
        Assert.Equal(EmptyDigest, await client.CommandAsync("DIGEST"));
        Assert.Equal("-ERR wrong number of arguments for 'digest' command\r\n", await client.CommandAsync("DIGEST", "x"));
    }

    [Fact]
    public async Task SameContent_SameDigestAcrossVariants_AndMatchesTheDocumentedFormat()
    {
        await using KvServer a = await SampleKvTestServer.StartAsync(Variant.A);
        await using KvServer b = await SampleKvTestServer.StartAsync(Variant.B);
        await using RespTestClient clientA = await RespTestClient.ConnectAsync(a);
        await using RespTestClient clientB = await RespTestClient.ConnectAsync(b);

        // The same content reached through different orders of writes.
        string[][] scriptA =
        [
            ["MSET", "b", "2", "a", "1", "\u00ff", "hi"], ["SET", "", "empty"], ["SET", "t", "x", "PXAT", "4102444800123"],
            ["SELECT", "5"], ["SET", "a\0b", "\r\n"], ["SET", "gone", "v"], ["EXPIREAT", "gone", "1"], ["SET", "old", "v", "EXAT", "1"],
        ];
        string[][] scriptB =
        [
            ["SELECT", "5"], ["SET", "a\0b", "\r\n"], ["SELECT", "0"], ["SET", "t", "y"], ["SET", "t", "x", "PXAT", "4102444800123"],
            ["SET", "\u00ff", "hi"], ["SET", "", "empty"], ["SET", "a", "1"], ["SET", "b", "1"], ["INCR", "b"],
        ];
        await SampleKvTestServer.RunAsync(clientA, scriptA);
        await SampleKvTestServer.RunAsync(clientB, scriptB);

        string digestA = await clientA.CommandAsync("DIGEST");
        Assert.Equal(digestA, await clientB.CommandAsync("DIGEST"));

        string expected = ExpectedDigest(
            (0, "", "empty", -1), (0, "a", "1", -1), (0, "b", "2", -1), (0, "t", "x", 4102444800123), (0, "\u00ff", "hi", -1),
            (5, "a\0b", "\r\n", -1));
        Assert.Equal($"$40\r\n{expected}\r\n", digestA);

        await clientB.CommandAsync("SET", "a", "changed");
        Assert.NotEqual(digestA, await clientB.CommandAsync("DIGEST"));
        await clientB.CommandAsync("SET", "a", "1");
        Assert.Equal(digestA, await clientB.CommandAsync("DIGEST"));
        await clientB.CommandAsync("PEXPIREAT", "a", "4102444800000");
        Assert.NotEqual(digestA, await clientB.CommandAsync("DIGEST"));
    }

    // SHA-1 over: per database ascending, per key byte-wise ascending,
    // u8 db | u32be keyLength | key | u32be valueLength | value | i64be deadline (-1 = none).
    private static string ExpectedDigest(params (int Db, string Key, string Value, long Deadline)[] entries)
    {
        using var canonical = new MemoryStream();
        Span<byte> number = stackalloc byte[8];
        foreach ((int db, string key, string value, long deadline) in entries)
        {
            byte[] keyBytes = Encoding.Latin1.GetBytes(key);
            byte[] valueBytes = Encoding.Latin1.GetBytes(value);
            canonical.WriteByte((byte)db);
            BinaryPrimitives.WriteUInt32BigEndian(number, (uint)keyBytes.Length);
            canonical.Write(number[..4]);
            canonical.Write(keyBytes);
            BinaryPrimitives.WriteUInt32BigEndian(number, (uint)valueBytes.Length);
            canonical.Write(number[..4]);
            canonical.Write(valueBytes);
            BinaryPrimitives.WriteInt64BigEndian(number, deadline);
            canonical.Write(number);
        }

        return Convert.ToHexStringLower(SHA1.HashData(canonical.ToArray()));
    }
}
