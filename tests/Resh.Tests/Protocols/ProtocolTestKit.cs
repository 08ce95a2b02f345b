using System.Buffers;
using System.Text;
using Resh.Protocols;

namespace Resh.Tests.Protocols;

/// <summary>A recorded session action with its bytes copied out.</summary>
internal sealed record RecordedAction(SessionActionKind Kind, string Text, int Context, int ReplyCount, ReplySelection Selection, bool Close, bool ReadOnly = false)
{
    public static RecordedAction From(SessionAction action) =>
        new(action.Kind, ProtocolTestKit.Show(action.Bytes.Span), action.Context, action.ReplyCount, action.Selection, action.CloseAfterReply, action.ReadOnly);
}

internal static class ProtocolTestKit
{
    public static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    public static string Show(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>Canonical multibulk for the given arguments.</summary>
    public static string Multibulk(params string[] args)
    {
        var builder = new StringBuilder();
        builder.Append('*').Append(args.Length).Append("\r\n");
        foreach (var arg in args)
        {
            builder.Append('$').Append(Encoding.Latin1.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
        }

        return builder.ToString();
    }

    /// <summary>A sequence over <paramref name="data"/> with segment boundaries at <paramref name="cuts"/> (empty segments allowed).</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] data, params int[] cuts)
    {
        var bounds = new List<int> { 0 };
        bounds.AddRange(cuts.Where(c => c >= 0 && c <= data.Length).Order());
        bounds.Add(data.Length);
        Segment? first = null;
        Segment? last = null;
        for (var i = 0; i + 1 < bounds.Count; i++)
        {
            var memory = data.AsMemory(bounds[i], bounds[i + 1] - bounds[i]).ToArray();
            if (first is null)
            {
                first = last = new Segment(memory, 0);
            }
            else
            {
                last = last!.Append(memory);
            }
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>Segments of <paramref name="size"/> bytes each.</summary>
    public static ReadOnlySequence<byte> Chunked(byte[] data, int size)
    {
        var cuts = new List<int>();
        for (var i = size; i < data.Length; i += size)
        {
            cuts.Add(i);
        }

        return Segmented(data, [.. cuts]);
    }

    /// <summary>Runs the session over a complete buffer until it needs more data or closes.</summary>
    public static List<RecordedAction> Drain(IClientSession session, ReadOnlySequence<byte> buffer)
    {
        var actions = new List<RecordedAction>();
        while (true)
        {
            var action = session.Next(ref buffer);
            if (action.Kind == SessionActionKind.NeedMoreData)
            {
                return actions;
            }

            actions.Add(RecordedAction.From(action));
            if (action.Kind == SessionActionKind.Fatal || action.CloseAfterReply)
            {
                return actions;
            }
        }
    }

    public static List<RecordedAction> Drain(IClientSession session, string input) => Drain(session, new ReadOnlySequence<byte>(Bytes(input)));

    /// <summary>
    /// Feeds <paramref name="data"/> the way a pipe reader does: the data arrives in pieces ending at
    /// <paramref name="arrivals"/>; after each arrival the session gets the unconsumed part (same start position
    /// as before when nothing was consumed).
    /// </summary>
    public static List<RecordedAction> Feed(IClientSession session, ReadOnlySequence<byte> data, IEnumerable<long> arrivals)
    {
        var actions = new List<RecordedAction>();
        var consumed = data.Start;
        foreach (var arrived in arrivals.Append(data.Length))
        {
            var received = data.GetPosition(arrived);
            var buffer = data.Slice(consumed, received);
            while (true)
            {
                var action = session.Next(ref buffer);
                consumed = buffer.Start;
                if (action.Kind == SessionActionKind.NeedMoreData)
                {
                    break;
                }

                actions.Add(RecordedAction.From(action));
                if (action.Kind == SessionActionKind.Fatal || action.CloseAfterReply)
                {
                    return actions;
                }
            }
        }

        return actions;
    }

    /// <summary>All replies framed from a complete buffer; null entry marks Invalid.</summary>
    public static List<string?> FrameAll(IReplyFramer framer, ReadOnlySequence<byte> buffer)
    {
        var replies = new List<string?>();
        while (!buffer.IsEmpty)
        {
            var status = framer.TryFrame(buffer, out var end);
            if (status == FrameStatus.Invalid)
            {
                replies.Add(null);
                return replies;
            }

            if (status == FrameStatus.Incomplete)
            {
                return replies;
            }

            replies.Add(Show(buffer.Slice(0, end).ToArray()));
            buffer = buffer.Slice(end);
        }

        return replies;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

/// <summary>A clock the tests set by hand.</summary>
internal sealed class FakeClock : TimeProvider
{
    public FakeClock(long unixMilliseconds) => Now = DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds);

    public DateTimeOffset Now { get; set; }

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Runs a reply transform that does not wait (every transform but a blocking command's).</summary>
internal static class ReplyTransformExtensions
{
    public static ReadOnlyMemory<byte> Apply(this IReplyTransform transform, ReadOnlyMemory<byte> reply) =>
        transform.ApplyAsync(reply, CancellationToken.None).AsTask().GetAwaiter().GetResult();
}
