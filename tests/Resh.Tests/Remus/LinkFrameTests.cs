using System.Net;
using System.Net.Sockets;
using System.Text;
using Resh.Ordering;
using Resh.Remus;

namespace Resh.Tests.Remus;

public sealed class LinkFrameTests
{
    [Fact]
    public void An_epoch_round_trips_its_entries()
    {
        LogEntry[] entries =
        [
            new(LogEventKind.Open, 7, 0, ReadOnlyMemory<byte>.Empty, 0),
            new(LogEventKind.Request, 7, 3, Encoding.ASCII.GetBytes("*1\r\n$4\r\nPING\r\n"), 1, replyHint: 2),
            new(LogEventKind.Request, 8, 0, Encoding.ASCII.GetBytes("MULTI..EXEC"), 3, replyLastOnly: true),
            new(LogEventKind.Close, 7, 0, ReadOnlyMemory<byte>.Empty, 0),
        ];
        var (number, first, decoded) = EpochFrame.Decode(EpochFrame.Encode(42, 1000, entries));
        Assert.Equal(42UL, number);
        Assert.Equal(1000, first);
        Assert.Equal(entries.Length, decoded.Count);
        for (var i = 0; i < entries.Length; i++)
        {
            Assert.Equal(entries[i].Kind, decoded[i].Kind);
            Assert.Equal(entries[i].SessionId, decoded[i].SessionId);
            Assert.Equal(entries[i].Context, decoded[i].Context);
            Assert.Equal(entries[i].ReplyCount, decoded[i].ReplyCount);
            Assert.Equal(entries[i].ReplyLastOnly, decoded[i].ReplyLastOnly);
            Assert.Equal(entries[i].ReplyHint, decoded[i].ReplyHint);
            Assert.Equal(entries[i].Payload.ToArray(), decoded[i].Payload.ToArray());
            Assert.Equal(-1, decoded[i].Sequence);
        }
    }

    [Fact]
    public void A_malformed_epoch_is_refused_with_what_is_wrong()
    {
        var frame = EpochFrame.Encode(1, 0, [new LogEntry(LogEventKind.Request, 1, 0, new byte[10], 1)]);
        Assert.Contains("cut off", Assert.Throws<InvalidDataException>(() => EpochFrame.Decode(frame.AsMemory(0, 22))).Message, StringComparison.Ordinal);
        frame[24] = 99; // the entry's kind
        Assert.Contains("not a log entry", Assert.Throws<InvalidDataException>(() => EpochFrame.Decode(frame)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => EpochFrame.Decode(new byte[5]));
    }

    [Fact]
    public void Hello_numbers_and_snapshot_pieces_round_trip_big_endian()
    {
        var hello = new HelloFrame(3, 100, 250, 17);
        Assert.Equal(hello, HelloFrame.Decode(hello.Encode()));
        Assert.Equal(3, hello.Encode()[7]);
        var ack = new NumberFrame(9, -1);
        Assert.Equal(ack, NumberFrame.Decode(ack.Encode()));
        var piece = new SnapshotFileFrame("sub/dump.rdb", 1 << 20, new byte[] { 1, 2, 3 });
        var back = SnapshotFileFrame.Decode(piece.Encode());
        Assert.Equal(piece.Path, back.Path);
        Assert.Equal(piece.Offset, back.Offset);
        Assert.Equal(piece.Data.ToArray(), back.Data.ToArray());
    }

    [Fact]
    public async Task Frames_cross_a_connection_and_an_oversized_one_is_refused()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptSocketAsync();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint).WaitAsync(TimeSpan.FromSeconds(10));
        await using var server = await LinkConnection.AcceptAsync(await accept.WaitAsync(TimeSpan.FromSeconds(10)), null, CancellationToken.None);
        await using var sender = await LinkConnection.ConnectAsync(client, null, CancellationToken.None);
        await sender.SendAsync(LinkFrame.Ack, new NumberFrame(5, 77).Encode(), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var (type, payload) = await server.ReceiveAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(LinkFrame.Ack, type);
        Assert.Equal(new NumberFrame(5, 77), NumberFrame.Decode(payload));

        // A length beyond the limit is refused before anything is allocated for it.
        await client.SendAsync(new byte[] { 0x7f, 0xff, 0xff, 0xff, 4 });
        await Assert.ThrowsAsync<InvalidDataException>(() => server.ReceiveAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
