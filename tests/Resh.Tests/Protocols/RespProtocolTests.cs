using System.Buffers;
using Resh.Protocols;
using Resh.Protocols.Resp;
using static Resh.Tests.Protocols.ProtocolTestKit;

namespace Resh.Tests.Protocols;

public class RespProtocolTests
{
    private static readonly RespProtocol CodeOnly = new(new RespOptions { ErrorComparison = ErrorComparison.CodeOnly });

    private static string? Normalize(IProtocol protocol, string reply)
    {
        var output = new ArrayBufferWriter<byte>();
        if (!protocol.TryNormalize(Bytes(reply), 0, output))
        {
            Assert.Equal(0, output.WrittenCount);
            return null;
        }

        return Show(output.WrittenSpan);
    }

    [Fact]
    public void Exact_comparison_never_normalizes()
    {
        Assert.Null(Normalize(new RespProtocol(), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"));
    }

    [Theory]
    [InlineData("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", "-WRONGTYPE\r\n")]
    [InlineData("-ERR unknown command 'foo', with args beginning with: \r\n", "-ERR\r\n")]
    [InlineData("!21\r\nSYNTAX invalid syntax\r\n", "!6\r\nSYNTAX\r\n")]
    [InlineData("*3\r\n+OK\r\n-ERR value is not an integer\r\n:1\r\n", "*3\r\n+OK\r\n-ERR\r\n:1\r\n")]
    [InlineData("*2\r\n*2\r\n-WRONGTYPE a b\r\n$2\r\n-x\r\n!5\r\nAB CD\r\n", "*2\r\n*2\r\n-WRONGTYPE\r\n$2\r\n-x\r\n!2\r\nAB\r\n")]
    [InlineData("%1\r\n+k\r\n-ERR x\r\n", "%1\r\n+k\r\n-ERR\r\n")]
    [InlineData("|1\r\n+a\r\n-E f\r\n-E2 g h\r\n", "|1\r\n+a\r\n-E\r\n-E2\r\n")]
    public void Code_only_keeps_just_the_error_codes(string reply, string normalized)
    {
        Assert.Equal(normalized, Normalize(CodeOnly, reply));
    }

    [Theory]
    [InlineData("+OK\r\n")]
    [InlineData(":-1\r\n")]
    [InlineData("$5\r\n-ERR \r\n")]
    [InlineData("*2\r\n$3\r\n-ab\r\n:-1\r\n")]
    [InlineData("*2\r\n+a\r\n+b\r\n")]
    [InlineData("-ERR\r\n")]
    [InlineData("*1\r\n-ERR\r\n")]
    [InlineData("*-1\r\n")]
    [InlineData("*2\r\n$-1\r\n-broken")]
    public void Replies_without_a_longer_error_are_compared_as_they_are(string reply)
    {
        Assert.Null(Normalize(CodeOnly, reply));
    }

    [Fact]
    public void Error_reply_is_one_line()
    {
        var protocol = new RespProtocol();
        Assert.Equal("-ERR resh: replicas disagree\r\n", Show(protocol.ErrorReply("resh: replicas disagree")));
        Assert.Equal("-ERR a  b c\r\n", Show(protocol.ErrorReply("a\r\nb\nc")));
    }

    [Fact]
    public void Factory_builds_each_protocol()
    {
        Assert.Equal(["resp", "line", "length-prefixed"], ProtocolFactory.Names);
        Assert.IsType<RespProtocol>(ProtocolFactory.Create("resp"));
        Assert.IsType<RespProtocol>(ProtocolFactory.Create("RESP", new RespOptions { Databases = 2 }));
        Assert.IsType<LineProtocol>(ProtocolFactory.Create("line", line: new LineOptions { MaxLineBytes = 10 }));
        Assert.IsType<LengthPrefixedProtocol>(ProtocolFactory.Create("length-prefixed"));
        foreach (var name in ProtocolFactory.Names)
        {
            Assert.Equal(name, ProtocolFactory.Create(name).Name);
        }

        var error = Assert.Throws<ArgumentException>(() => ProtocolFactory.Create("http"));
        Assert.Contains("resp, line, length-prefixed", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validation_names_the_key()
    {
        Assert.Empty(new RespOptions().Validate());
        var errors = new RespOptions
        {
            MaxInlineBytes = 0,
            MaxBulkBytes = -1,
            MaxArguments = 0,
            MaxQueuedCommands = 0,
            Databases = 70_000,
            ErrorComparison = (ErrorComparison)9,
            ExpiryRewrite = (ExpiryRewrite)9,
            RejectedCommands = new HashSet<string> { "ok", "two words", "|kill", "" },
        }.Validate();
        Assert.Contains(errors, e => e.StartsWith("service.limits.max-inline-bytes must be between 1 and ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("service.limits.max-bulk-bytes must be between 1 and ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("service.limits.max-arguments must be between 1 and ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("service.limits.max-queued-commands must be between 1 and ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("service.databases must be between 1 and 65536", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("normalize.errors", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("service.expiry must", StringComparison.Ordinal));
        Assert.Equal(3, errors.Count(e => e.StartsWith("service.reject has", StringComparison.Ordinal)));
        Assert.Equal(10, errors.Count);

        var order = new RespOptions { MaxQueryBufferBytes = 1000, MaxBulkBytes = 2000, MaxInlineBytes = 100 }.Validate();
        Assert.Equal(["service.limits.max-bulk-bytes (2000) must not exceed service.limits.max-query-buffer-bytes (1000)"], order);

        var thrown = Assert.Throws<ArgumentException>(() => new RespProtocol(new RespOptions { Databases = 0 }));
        Assert.Contains("service.databases", thrown.Message, StringComparison.Ordinal);
    }
}
