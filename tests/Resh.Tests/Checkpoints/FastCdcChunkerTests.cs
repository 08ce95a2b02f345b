using Resh.Checkpoints;

namespace Resh.Tests.Checkpoints;

public sealed class FastCdcChunkerTests
{
    private const int Min = 1024;
    private const int Avg = 4096;
    private const int Max = 16 * 1024;

    [Fact]
    public async Task Chunks_concatenate_to_the_input_and_respect_the_size_bounds()
    {
        var data = Data(1 << 20, seed: 1);
        var chunks = await ChunkAsync(new MemoryStream(data));
        Assert.Equal(data, chunks.SelectMany(c => c).ToArray());
        for (var i = 0; i < chunks.Count - 1; i++)
        {
            Assert.InRange(chunks[i].Length, Min, Max);
        }

        Assert.InRange(chunks[^1].Length, 1, Max);
    }

    [Fact]
    public async Task Average_chunk_size_is_near_the_target()
    {
        var data = Data(8 << 20, seed: 2);
        var chunks = await ChunkAsync(new MemoryStream(data));
        var mean = (double)data.Length / chunks.Count;
        Assert.InRange(mean, Avg * 0.6, Avg * 1.6);
    }

    [Fact]
    public async Task Boundaries_do_not_depend_on_how_the_stream_is_read()
    {
        var data = Data(300_000, seed: 3);
        var whole = await ChunkAsync(new MemoryStream(data));
        var dribbled = await ChunkAsync(new DribbleStream(data, seed: 4));
        Assert.Equal(whole.Select(c => c.Length), dribbled.Select(c => c.Length));
    }

    [Fact]
    public async Task An_insertion_changes_only_the_chunks_around_it()
    {
        var data = Data(2 << 20, seed: 5);
        var edited = data[..(1 << 20)].Concat(Data(100, seed: 6)).Concat(data[(1 << 20)..]).ToArray();
        var before = (await ChunkAsync(new MemoryStream(data))).Select(c => ChunkId.Compute(c)).ToHashSet();
        var after = (await ChunkAsync(new MemoryStream(edited))).Select(c => ChunkId.Compute(c)).ToList();
        var changed = after.Count(id => !before.Contains(id));
        Assert.InRange(changed, 1, 3);
    }

    [Fact]
    public async Task Empty_stream_has_no_chunks_and_a_short_one_is_one_chunk()
    {
        Assert.Empty(await ChunkAsync(new MemoryStream()));
        var chunks = await ChunkAsync(new MemoryStream(Data(Min - 1, seed: 7)));
        Assert.Single(chunks);
        Assert.Equal(Min - 1, chunks[0].Length);
    }

    [Fact]
    public async Task Uniform_data_is_cut_at_the_maximum_size()
    {
        var chunks = await ChunkAsync(new MemoryStream(new byte[(5 * Max) + 10]));
        Assert.Equal([Max, Max, Max, Max, Max, 10], chunks.Select(c => c.Length));
    }

    [Fact]
    public async Task Boundaries_are_stable_across_processes_and_versions()
    {
        // Chunk boundaries decide deduplication against data already stored: they must never change
        // for a given format version. These lengths were recorded from this implementation.
        var chunks = await ChunkAsync(new MemoryStream(Data(64 * 1024, seed: 42)));
        Assert.Equal(ExpectedStableLengths, chunks.Select(c => c.Length).ToArray());
    }

    [Fact]
    public void Rejects_inconsistent_sizes()
    {
        Assert.Throws<ArgumentException>(() => new FastCdcChunker(4096, 4096, 8192));
        Assert.Throws<ArgumentException>(() => new FastCdcChunker(1024, 3000, 8192));
        Assert.Throws<ArgumentException>(() => new FastCdcChunker(1024, 4096, 4096));
        Assert.Throws<ArgumentException>(() => new FastCdcChunker(10, 4096, 8192));
    }

    private static readonly int[] ExpectedStableLengths = [1701, 4284, 5915, 4284, 4475, 2427, 5342, 6651, 2740, 5926, 2324, 2954, 5519, 2652, 3419, 4372, 551];

    private static async Task<List<byte[]>> ChunkAsync(Stream stream)
    {
        var chunker = new FastCdcChunker(Min, Avg, Max);
        var chunks = new List<byte[]>();
        await foreach (var chunk in chunker.ChunkAsync(stream))
        {
            chunks.Add(chunk.ToArray());
        }

        return chunks;
    }

    /// <summary>Deterministic pseudo-random bytes (xorshift), independent of System.Random's algorithm.</summary>
    internal static byte[] Data(int length, int seed)
    {
        var data = new byte[length];
        var x = 0x9E3779B97F4A7C15UL ^ (ulong)seed;
        for (var i = 0; i < length; i++)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data[i] = (byte)(x >> 56);
        }

        return data;
    }

    /// <summary>Returns at most a few bytes per read.</summary>
    private sealed class DribbleStream(byte[] data, int seed) : Stream
    {
        private readonly Random _random = new(seed);
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, _random.Next(1, 700)), data.Length - _position);
            data.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset));
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
