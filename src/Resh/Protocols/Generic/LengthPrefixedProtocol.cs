using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Resh.Protocols;

/// <summary>Options of the length-prefixed codec.</summary>
public sealed class LengthPrefixedOptions
{
    public const int DefaultMaxFrameBytes = 16 * 1024 * 1024;

    /// <summary>Largest payload (without the 4-byte header), for requests and replies alike.</summary>
    public int MaxFrameBytes { get; set; } = DefaultMaxFrameBytes;

    public IReadOnlyList<string> Validate()
    {
        var max = Array.MaxLength - LengthPrefixedProtocol.HeaderBytes;
        return MaxFrameBytes < 1 || MaxFrameBytes > max
            ? [$"service.limits.max-frame-bytes must be between 1 and {max} (got {MaxFrameBytes})"]
            : [];
    }
}

/// <summary>
/// A generic framed protocol: every request and every reply is a 4-byte big-endian unsigned payload
/// length followed by the payload. No session state, no normalization.
/// </summary>
public sealed class LengthPrefixedProtocol : IProtocol
{
    public const int HeaderBytes = 4;

    private readonly int _maxFrame;
    private readonly byte[] _frameTooLarge;

    public LengthPrefixedProtocol()
        : this(new LengthPrefixedOptions())
    {
    }

    /// <exception cref="ArgumentException"><paramref name="maxFrameBytes"/> is out of range.</exception>
    public LengthPrefixedProtocol(int maxFrameBytes)
        : this(new LengthPrefixedOptions { MaxFrameBytes = maxFrameBytes })
    {
    }

    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public LengthPrefixedProtocol(LengthPrefixedOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        _maxFrame = options.MaxFrameBytes;
        _frameTooLarge = Frame(Encoding.UTF8.GetBytes($"ERR resh: frame exceeds max-frame-bytes ({_maxFrame})"));
    }

    public string Name => "length-prefixed";

    public IClientSession CreateSession(long sessionId) => new Session(_maxFrame, _frameTooLarge);

    public IReplyFramer CreateReplyFramer() => new Framer(_maxFrame);

    public int WriteContextSwitch(int from, int to, IBufferWriter<byte> output) => 0;

    public bool TryNormalize(ReadOnlySpan<byte> reply, int hint, IBufferWriter<byte> output) => false;

    /// <summary>A frame whose payload is "ERR " + message (UTF-8).</summary>
    public byte[] ErrorReply(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Frame(Encoding.UTF8.GetBytes("ERR " + message));
    }

    /// <summary>One frame whose payload is the command (UTF-8).</summary>
    public byte[] EncodeCommand(string command)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        return Frame(Encoding.UTF8.GetBytes(command));
    }

    public bool IsErrorReply(ReadOnlySpan<byte> reply) => reply.Length >= HeaderBytes && reply[HeaderBytes..].StartsWith("ERR "u8);

    /// <summary>True when a TCP connection can be opened (the protocol has no generic ping).</summary>
    public Task<bool> ProbeAsync(IPEndPoint endpoint, CancellationToken cancellationToken) =>
        WireClient.CanConnectAsync(endpoint, cancellationToken);

    public Task<string> CorruptAsync(IPEndPoint endpoint, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the length-prefixed protocol has no generic way to change a replica's state; corrupt drills need a protocol that knows the service (e.g. resp)");

    /// <summary>Header plus <paramref name="payload"/>.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var frame = new byte[HeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(HeaderBytes));
        return frame;
    }

    /// <summary>Payload length of the frame at the front of <paramref name="buffer"/>, or -1 when the header is incomplete.</summary>
    private static long PeekLength(in ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length < HeaderBytes)
        {
            return -1;
        }

        Span<byte> header = stackalloc byte[HeaderBytes];
        buffer.Slice(0, HeaderBytes).CopyTo(header);
        return BinaryPrimitives.ReadUInt32BigEndian(header);
    }

    private sealed class Session : IClientSession
    {
        private readonly int _maxFrame;
        private readonly byte[] _frameTooLarge;
        private readonly PooledBuffer _request = new();

        public Session(int maxFrame, byte[] frameTooLarge)
        {
            _maxFrame = maxFrame;
            _frameTooLarge = frameTooLarge;
        }

        public SessionAction Next(ref ReadOnlySequence<byte> buffer)
        {
            _request.Reset();
            var length = PeekLength(buffer);
            if (length < 0)
            {
                return SessionAction.NeedMore;
            }

            if (length > _maxFrame)
            {
                buffer = buffer.Slice(buffer.End);
                return new SessionAction(SessionActionKind.Fatal, _frameTooLarge, ReplyCount: 0, CloseAfterReply: true);
            }

            if (buffer.Length < HeaderBytes + length)
            {
                return SessionAction.NeedMore;
            }

            var frame = buffer.Slice(0, HeaderBytes + length);
            _request.Write(frame);
            buffer = buffer.Slice(frame.End);
            return new SessionAction(SessionActionKind.Submit, _request.WrittenMemory);
        }

        public void Closed() => _request.Dispose();
    }

    private sealed class Framer : IReplyFramer
    {
        private readonly int _maxFrame;

        public Framer(int maxFrame) => _maxFrame = maxFrame;

        public FrameStatus TryFrame(in ReadOnlySequence<byte> buffer, out SequencePosition end)
        {
            end = buffer.Start;
            var length = PeekLength(buffer);
            if (length < 0)
            {
                return FrameStatus.Incomplete;
            }

            if (length > _maxFrame)
            {
                return FrameStatus.Invalid;
            }

            if (buffer.Length < HeaderBytes + length)
            {
                return FrameStatus.Incomplete;
            }

            end = buffer.GetPosition(HeaderBytes + length);
            return FrameStatus.Complete;
        }
    }
}
