using System.Buffers.Binary;
using Resh.Memory;

namespace Resh.Examples.TdmBank;

/// <summary>
/// Accounts in the transactional memory: root "accounts" refers to a table object whose references are the accounts,
/// each holding its balance (8 bytes). Root "transfers-N" counts the transfers node N committed; each transfer also
/// writes a line to the node's ledger device, so the ledger must end up with exactly as many lines as the counter says.
/// </summary>
internal static class Bank
{
    public const long InitialBalance = 1000;

    public static byte[] Encode(long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        return bytes;
    }

    public static long Decode(MemoryObject o) => BinaryPrimitives.ReadInt64LittleEndian(o.Data.Span);

    /// <summary>Creates the accounts unless they exist (several nodes may try at once: one wins, the others see it).</summary>
    public static Task<bool> EnsureAccountsAsync(MemoryNode node, int count) => node.RunAsync(tx =>
    {
        if (!tx.GetRoot("accounts").IsNull)
        {
            return false;
        }

        var accounts = new Ref[count];
        for (var i = 0; i < count; i++)
        {
            accounts[i] = tx.Allocate(Encode(InitialBalance));
        }

        tx.SetRoot("accounts", tx.Allocate(Encode(count), accounts));
        return true;
    });

    /// <summary>
    /// Moves <paramref name="amount"/> from one account to another, if the first holds enough; with a ledger, counts it in
    /// the node's counter and writes it to the ledger device (the benchmark does neither: the counter would make every
    /// transfer of a node conflict with every other).
    /// </summary>
    public static Task<bool> TransferAsync(MemoryNode node, int from, int to, long amount, string? ledger) => node.RunAsync(tx =>
    {
        var table = tx.Read(tx.GetRoot("accounts"));
        var a = table.GetRef(from);
        var b = table.GetRef(to);
        var balance = Decode(tx.Read(a));
        if (from == to || balance < amount)
        {
            return false;
        }

        tx.Write(a, Encode(balance - amount));
        tx.Write(b, Encode(Decode(tx.Read(b)) + amount));
        if (ledger is null)
        {
            return true;
        }

        var counterName = $"transfers-{node.Node}";
        var counter = tx.GetRoot(counterName);
        if (counter.IsNull)
        {
            tx.SetRoot(counterName, tx.Allocate(Encode(1)));
        }
        else
        {
            tx.Write(counter, Encode(Decode(tx.Read(counter)) + 1));
        }

        tx.Emit(ledger, System.Text.Encoding.UTF8.GetBytes($"{from}->{to}:{amount}"));
        return true;
    });

    /// <summary>Every balance, read in one transaction.</summary>
    public static Task<long[]> BalancesAsync(MemoryNode node) => node.RunAsync(tx =>
    {
        var root = tx.GetRoot("accounts");
        return root.IsNull ? [] : tx.Read(root).Refs.Select(r => Decode(tx.Read(r))).ToArray();
    });

    /// <summary>The transfers node <paramref name="nodeId"/> committed, by its counter.</summary>
    public static Task<long> TransfersAsync(MemoryNode node, int nodeId) => node.RunAsync(tx =>
    {
        var counter = tx.GetRoot($"transfers-{nodeId}");
        return counter.IsNull ? 0 : Decode(tx.Read(counter));
    });
}
