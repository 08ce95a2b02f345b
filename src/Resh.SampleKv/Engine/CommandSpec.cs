using Resh.SampleKv.Protocol;

namespace Resh.SampleKv.Engine;

/// <summary>Runs one command whose arity has been checked.</summary>
internal delegate void CommandHandler(ClientSession session, byte[][] args, ReplyWriter reply, long now);

/// <summary>
/// A command table entry. <paramref name="Arity"/> follows Redis: positive means exactly that many
/// arguments (name included), negative means at least that many.
/// </summary>
internal sealed record CommandSpec(string Name, int Arity, CommandHandler Handler, bool RunsInsideTransaction)
{
    public bool AcceptsArgumentCount(int count) => Arity > 0 ? count == Arity : count >= -Arity;
}
