using System.Buffers;
using Resh.SampleKv.Engine;

namespace Resh.SampleKv.Protocol;

/// <summary>Writes RESP2/RESP3 replies (the session's current protocol) to a buffer.</summary>
internal sealed class ReplyWriter
{
    private readonly IBufferWriter<byte> _output;
    private readonly IIntegerCodec _integers;
    private readonly ClientSession _session;

    public ReplyWriter(IBufferWriter<byte> output, IIntegerCodec integers, ClientSession session)
    {
        _output = output;
        _integers = integers;
        _session = session;
    }

    /// <summary><c>+OK</c>.</summary>
    public void Ok() => _output.Write("+OK\r\n"u8);

    /// <summary>A simple string: <c>+text</c>.</summary>
    public void Simple(ReadOnlySpan<byte> text)
    {
        WriteByte((byte)'+');
        _output.Write(text);
        _output.Write("\r\n"u8);
    }

    /// <summary>
    /// An error reply. Like Redis, a message not starting with '-' gets the "ERR " code, one starting
    /// with '-' carries its own code ("-EXECABORT ..."); CR and LF in the text become spaces.
    /// </summary>
    public void Error(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty || message[0] != (byte)'-')
        {
            _output.Write("-ERR "u8);
        }

        Span<byte> target = _output.GetSpan(message.Length + 2);
        for (int i = 0; i < message.Length; i++)
        {
            byte b = message[i];
            target[i] = b is (byte)'\r' or (byte)'\n' ? (byte)' ' : b;
        }

        target[message.Length] = (byte)'\r';
        target[message.Length + 1] = (byte)'\n';
        _output.Advance(message.Length + 2);
    }

    /// <summary>An integer: <c>:n</c>.</summary>
    public void Integer(long value) => Prefixed((byte)':', value);

    /// <summary>A bulk string: <c>$len</c> then the bytes.</summary>
    public void Bulk(ReadOnlySpan<byte> data)
    {
        Prefixed((byte)'$', data.Length);
        _output.Write(data);
        _output.Write("\r\n"u8);
    }

    /// <summary>The null reply: <c>$-1</c> in RESP2, <c>_</c> in RESP3.</summary>
    public void Null() => _output.Write(_session.Protocol == 3 ? "_\r\n"u8 : "$-1\r\n"u8);

    /// <summary>The header of an array of <paramref name="count"/> replies.</summary>
    public void Array(int count) => Prefixed((byte)'*', count);

    /// <summary>The header of a map: <c>%pairs</c> in RESP3, an array of twice as many replies in RESP2.</summary>
    public void Map(int pairs)
    {
        if (_session.Protocol == 3)
        {
            Prefixed((byte)'%', pairs);
        }
        else
        {
            Prefixed((byte)'*', 2L * pairs);
        }
    }

    private void WriteByte(byte value)
    {
        _output.GetSpan(1)[0] = value;
        _output.Advance(1);
    }

    private void Prefixed(byte type, long value)
    {
        Span<byte> target = _output.GetSpan(IIntegerCodec.MaxLength + 3);
        target[0] = type;
        int length = 1 + _integers.Format(value, target[1..]);
        target[length] = (byte)'\r';
        target[length + 1] = (byte)'\n';
        _output.Advance(length + 2);
    }
}
