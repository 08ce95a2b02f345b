using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Resh.Ordering;
using Resh.Protocols;
using Resh.Protocols.Resp;
using Resh.Voting;

namespace Resh.Benchmarks;

/// <summary>
/// The pure parts of one request's way through the gateway, each per operation with its allocations: framing a
/// client's request (the whole session step of the determinism layer), framing a replica's reply, and voting three
/// replies. What is left of a request's CPU beyond these is I/O and thread hand-offs (docs/benchmarks.md).
/// </summary>
[MemoryDiagnoser]
public class RequestPathBenchmarks
{
    private static readonly byte[] Get = Encoding.ASCII.GetBytes("*2\r\n$3\r\nGET\r\n$8\r\nkey:1234\r\n");
    private static readonly byte[] Set = Encoding.ASCII.GetBytes("*3\r\n$3\r\nSET\r\n$8\r\nkey:1234\r\n$100\r\n" + new string('x', 100) + "\r\n");
    private static readonly byte[] Ok = Encoding.ASCII.GetBytes("+OK\r\n");
    private static readonly byte[] Bulk = Encoding.ASCII.GetBytes("$100\r\n" + new string('x', 100) + "\r\n");

    private readonly RespReplyFramer _framer = new();
    private IClientSession _session = null!;
    private Voter _voter = null!;
    private readonly List<VoteOutcome> _outcomes = [];
    private long _sequence;

    [GlobalSetup]
    public void Setup()
    {
        _session = new RespProtocol().CreateSession(1);
        _voter = new Voter(1);
        for (var i = 0; i < 3; i++)
        {
            _voter.AddVoter(i);
        }
    }

    [Benchmark(Description = "session: frame GET (request bytes -> submit action)")]
    public int SessionGet() => Next(Get);

    [Benchmark(Description = "session: frame SET 100 B")]
    public int SessionSet() => Next(Set);

    [Benchmark(Description = "replica reply framer: +OK")]
    public bool FrameOk() => Frame(Ok);

    [Benchmark(Description = "replica reply framer: bulk 100 B")]
    public bool FrameBulk() => Frame(Bulk);

    [Benchmark(Description = "voter: three equal replies decide one entry")]
    public int VoteThree()
    {
        var entry = new LogEntry(LogEventKind.Request, 1, 0, Get, 1) { Sequence = _sequence++ };
        _outcomes.Clear();
        for (var r = 0; r < 3; r++)
        {
            _voter.Add(r, entry, Bulk, Bulk, _outcomes);
        }

        return _outcomes.Count;
    }

    private int Next(byte[] request)
    {
        var buffer = new ReadOnlySequence<byte>(request);
        var action = _session.Next(ref buffer);
        return (int)action.Kind;
    }

    private bool Frame(byte[] reply) => _framer.TryFrame(new ReadOnlySequence<byte>(reply), out _) == FrameStatus.Complete;
}
