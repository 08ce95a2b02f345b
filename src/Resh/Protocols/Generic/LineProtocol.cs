using System.Buffers;
using System.Net;

namespace Resh.Protocols;

/// <summary>Options of the line codec.</summary>
public sealed class LineOptions
{
    public const int DefaultMaxLineBytes = 64 * 1024;
    public const int DefaultMaxReplyLineBytes = 16 * 1024 * 1024;

    /// <summary>Longest client request line, including its "\n".</summary>
    public int MaxLineBytes { get; set; } = DefaultMaxLineBytes;

    /// <summary>Longest reply line a replica may send, including its "\n"; longer is a protocol fault.</summary>
    public int MaxReplyLineBytes { get; set; } = DefaultMaxReplyLineBytes;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxLineBytes < 1 || MaxLineBytes > Array.MaxLength)
        {
            errors.Add($"service.limits.max-line-bytes must be between 1 and {Array.MaxLength} (got {MaxLineBytes})");
        }

        if (MaxReplyLineBytes < 1 || MaxReplyLineBytes > Array.MaxLength)
        {
            errors.Add($"service.limits.max-reply-line-bytes must be between 1 and {Array.MaxLength} (got {MaxReplyLineBytes})");
        }

        return errors;
    }
}

/// <summary>
/// A generic line protocol: every request is one line up to and including "\n", and so is every reply.
/// No session state, no normalization.
/// </summary>
public sealed class LineProtocol : IProtocol
{
    private static readonly byte[] LineTooLong = "ERR resh: line exceeds max-line-bytes\n"u8.ToArray();

    private readonly int _maxLine;
    private readonly int _maxReplyLine;

    public LineProtocol()
        : this(new LineOptions())
    {
    }

    /// <exception cref="ArgumentException"><paramref name="maxLineBytes"/> is out of range.</exception>
    public LineProtocol(int maxLineBytes)
        : this(new LineOptions { MaxLineBytes = maxLineBytes })
    {
    }

    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public LineProtocol(LineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        OptionsValidation.ThrowIfInvalid(options.Validate(), nameof(options));

        _maxLine = options.MaxLineBytes;
        _maxReplyLine = options.MaxReplyLineBytes;
    }

    public string Name => "line";

    public IClientSession CreateSession(long sessionId) => new Session(_maxLine);

    public IReplyFramer CreateReplyFramer() => new Framer(_maxReplyLine);

    public int WriteContextSwitch(int from, int to, IBufferWriter<byte> output) => 0;

    public bool TryNormalize(ReadOnlySpan<byte> reply, int hint, IBufferWriter<byte> output) => false;

    /// <summary>"ERR " + message + "\n", CR and LF in the message replaced by spaces.</summary>
    public byte[] ErrorReply(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return ProtocolText.OneLine("ERR ", message, "\n");
    }

    /// <summary>The command as one line, ended by "\n".</summary>
    public byte[] EncodeCommand(string command)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        return ProtocolText.OneLine("", command, "\n");
    }

    public bool IsErrorReply(ReadOnlySpan<byte> reply) => reply.StartsWith("ERR "u8);

    /// <summary>True when a TCP connection can be opened (the protocol has no generic ping).</summary>
    public Task<bool> ProbeAsync(IPEndPoint endpoint, CancellationToken cancellationToken) =>
        WireClient.CanConnectAsync(endpoint, cancellationToken);

    public Task<string> CorruptAsync(IPEndPoint endpoint, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the line protocol has no generic way to change a replica's state; corrupt drills need a protocol that knows the service (e.g. resp)");

    /// <summary>Finds the "\n" ending a line within the first <paramref name="max"/> bytes, resuming a previous search.</summary>
    internal static SequencePosition? FindLineEnd(in ReadOnlySequence<byte> buffer, long max, ref SequencePosition searchedStart, ref long searched)
    {
        var window = Math.Min(buffer.Length, max);
        var from = buffer.Start.Equals(searchedStart) && searched <= window ? searched : 0;
        var newline = buffer.Slice(from, window - from).PositionOf((byte)'\n');
        searchedStart = buffer.Start;
        searched = newline is null ? window : 0;
        return newline;
    }

    private sealed class Session : IClientSession
    {
        private readonly int _maxLine;
        private readonly PooledBuffer _request = new();
        private SequencePosition _searchedStart;
        private long _searched;

        public Session(int maxLine) => _maxLine = maxLine;

        public SessionAction Next(ref ReadOnlySequence<byte> buffer)
        {
            _request.Reset();
            var newline = FindLineEnd(buffer, _maxLine, ref _searchedStart, ref _searched);
            if (newline is null)
            {
                if (buffer.Length >= _maxLine)
                {
                    buffer = buffer.Slice(buffer.End);
                    return new SessionAction(SessionActionKind.Fatal, LineTooLong, ReplyCount: 0, CloseAfterReply: true);
                }

                return SessionAction.NeedMore;
            }

            var end = buffer.GetPosition(1, newline.Value);
            _request.Write(buffer.Slice(0, end));
            buffer = buffer.Slice(end);
            return new SessionAction(SessionActionKind.Submit, _request.WrittenMemory);
        }

        public void Closed() => _request.Dispose();
    }

    private sealed class Framer : IReplyFramer
    {
        private readonly int _maxLine;
        private SequencePosition _searchedStart;
        private long _searched;

        public Framer(int maxLine) => _maxLine = maxLine;

        public FrameStatus TryFrame(in ReadOnlySequence<byte> buffer, out SequencePosition end)
        {
            end = buffer.Start;
            var newline = FindLineEnd(buffer, _maxLine, ref _searchedStart, ref _searched);
            if (newline is null)
            {
                return buffer.Length >= _maxLine ? FrameStatus.Invalid : FrameStatus.Incomplete;
            }

            end = buffer.GetPosition(1, newline.Value);
            return FrameStatus.Complete;
        }
    }
}
