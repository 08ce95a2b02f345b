using System.Text;
using Resh.Protocols;
using Resh.Protocols.Resp;

namespace Resh.Tests.Protocols;

/// <summary>Which writes a Redis state transfer can name by their keys, and the requests it reads and writes them with.</summary>
public sealed class RespStateTransferTests
{
    private static readonly IStateTransfer Transfer = new RespProtocol().StateTransfer!;

    private static byte[] Cmd(params string[] args) => RespEncoding.Command(args);

    private static string Text(byte[] bytes) => Encoding.ASCII.GetString(bytes).ReplaceLineEndings("|");

    [Theory]
    [InlineData("SET k v", 1)]
    [InlineData("MSET a 1 b 2", 2)]
    [InlineData("DEL a b c", 3)]
    [InlineData("RENAME a b", 2)]
    [InlineData("INCR k", 1)]
    [InlineData("PUBLISH channel message", 0)]
    [InlineData("SCAN 0", 0)]
    public void A_keyed_write_adds_its_keys(string command, int keys)
    {
        var changes = Transfer.NewChanges();
        Assert.True(changes.Add(0, Cmd(command.Split(' '))));
        Assert.Equal(keys, changes.Count);
    }

    [Theory]
    [InlineData("FLUSHALL")]
    [InlineData("FLUSHDB")]
    [InlineData("EVAL return_redis.call('SET','x','1') 0")]
    [InlineData("CONFIG SET maxmemory 1mb")]
    [InlineData("SCRIPT LOAD return_1")]
    [InlineData("SWAPDB 0 1")]
    [InlineData("MOVE k 1")]
    [InlineData("COPY a b DB 1")]
    [InlineData("FUNCTION FLUSH")]
    public void A_write_whose_effect_its_keys_do_not_cover_is_refused(string command)
    {
        var changes = Transfer.NewChanges();
        Assert.False(changes.Add(0, Cmd([.. command.Split(' ').Select(a => a.Replace('_', ' '))])));
    }

    [Fact]
    public void A_transaction_adds_the_keys_of_every_command_and_a_key_counts_once_per_database()
    {
        var changes = Transfer.NewChanges();
        byte[] unit = [.. Cmd("MULTI"), .. Cmd("SET", "a", "1"), .. Cmd("INCR", "a"), .. Cmd("LPUSH", "l", "x"), .. Cmd("EXEC")];
        Assert.True(changes.Add(0, unit));
        Assert.True(changes.Add(0, Cmd("SET", "a", "2")));
        Assert.True(changes.Add(RespProtocol.MakeContext(3, resp3: true), Cmd("SET", "a", "3")));
        Assert.Equal(3, changes.Count);
    }

    [Fact]
    public void The_gateways_own_scripts_count_by_the_keys_they_declare()
    {
        var changes = Transfer.NewChanges();
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        RespScripts.WriteEval(output, RespScripts.XAdd, keys: 1, args: 0);
        RespEncoding.WriteBulk(output, "stream"u8);
        Assert.True(changes.Add(0, output.WrittenSpan));
        Assert.Equal(1, changes.Count);
    }

    [Fact]
    public void The_read_dumps_every_key_in_its_database_and_the_write_restores_or_deletes_it()
    {
        var changes = Transfer.NewChanges();
        Assert.True(changes.Add(0, Cmd("SET", "a", "1")));
        Assert.True(changes.Add(RespProtocol.MakeContext(2, resp3: false), Cmd("SET", "b", "2")));
        Assert.True(changes.Add(0, Cmd("DEL", "gone")));

        var read = changes.Read();
        Assert.Equal(RespReplyOrder.StateDump, read.ReplyHint);
        Assert.Equal(8, read.ReplyCount);
        Assert.Equal(
            Text([.. Cmd("DUMP", "a"), .. Cmd("PEXPIRETIME", "a"), .. Cmd("DUMP", "gone"), .. Cmd("PEXPIRETIME", "gone"),
                .. Cmd("SELECT", "2"), .. Cmd("DUMP", "b"), .. Cmd("PEXPIRETIME", "b"), .. Cmd("SELECT", "0")]),
            Text(read.Payload));

        byte[] replies = [.. "$3\r\nAAA\r\n:-1\r\n$-1\r\n:-2\r\n+OK\r\n$2\r\nBB\r\n:1700000000000\r\n+OK\r\n"u8];
        var write = changes.Write(replies);
        Assert.Equal(5, write.ReplyCount);
        Assert.Equal(
            Text([.. Cmd("RESTORE", "a", "0", "AAA", "REPLACE"), .. Cmd("DEL", "gone"), .. Cmd("SELECT", "2"),
                .. Cmd("RESTORE", "b", "1700000000000", "BB", "REPLACE", "ABSTTL"), .. Cmd("SELECT", "0")]),
            Text(write.Payload));
    }

    [Theory]
    [InlineData("-ERR unknown command 'DUMP'\r\n:-1\r\n", "refused")]
    [InlineData("$3\r\nAAA\r\n", "no complete reply")]
    [InlineData("$3\r\nAAA\r\n:-1\r\n+OK\r\n", "more than")]
    [InlineData("$3\r\nAAA\r\n+OK\r\n", "not an integer")]
    public void Replies_that_cannot_be_restored_are_refused_with_the_reason(string replies, string reason)
    {
        var changes = Transfer.NewChanges();
        Assert.True(changes.Add(0, Cmd("SET", "a", "1")));
        var error = Assert.Throws<InvalidDataException>(() => changes.Write(Encoding.ASCII.GetBytes(replies)));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }
}
