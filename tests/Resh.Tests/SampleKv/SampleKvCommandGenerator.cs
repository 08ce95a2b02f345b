using System.Globalization;

namespace Resh.Tests.SampleKv;

/// <summary>
/// Seeded random requests over a small key space. With <c>redisComparable</c> only requests whose replies
/// must equal real Redis 7's are made: no KEYS/RANDOMKEY (order), HELLO/COMMAND (server identity), DIGEST
/// (custom), and no key set with a deadline already past (Redis' DBSIZE counts such keys until its
/// background expiry finds them). Relative EX/PX only come with invalid values, since their deadlines
/// depend on the instant each server runs the command.
/// </summary>
internal sealed class SampleKvCommandGenerator
{
    private static readonly string[] KeyPool = ["k0", "k1", "k2", "k3", "", "\0\u00ff", "h*llo", "\u00e9t\u00e9"];

    private static readonly string[] ValuePool =
    [
        "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808", "9223372036854775806", "abc", "",
        "007", "-0", " 1", "+1", "1\0", "12345678901234567890", "x y", "\r\n", "\u00ff\u0080",
    ];

    private static readonly string[] NumberPool =
    [
        "0", "1", "-1", "5", "-5", "100", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "x", "", "-0", "01", "1.5", " 2",
    ];

    private static readonly string[] FutureSeconds = ["4102444800", "4102444801", "4102444900", "4102444799"];

    private static readonly string[] PastSeconds = ["1", "1000", "0", "-5"];

    private readonly Random _random;
    private readonly bool _redisComparable;

    public SampleKvCommandGenerator(int seed, bool redisComparable)
    {
        _random = new Random(seed);
        _redisComparable = redisComparable;
    }

    public string[] Next()
    {
        int roll = _random.Next(_redisComparable ? 100 : 112);
        return roll switch
        {
            < 10 => ["GET", Key()],
            < 20 => Set(),
            < 22 => ["GETSET", Key(), Value()],
            < 24 => ["SETNX", Key(), Value()],
            < 28 => ["DEL", .. Keys(1, 3)],
            < 31 => ["EXISTS", .. Keys(1, 3)],
            < 35 => [Case("INCR"), Key()],
            < 37 => ["DECR", Key()],
            < 40 => ["INCRBY", Key(), Number()],
            < 42 => ["DECRBY", Key(), Number()],
            < 46 => ["APPEND", Key(), Value()],
            < 48 => ["STRLEN", Key()],
            < 51 => ["MGET", .. Keys(1, 4)],
            < 54 => MSet("MSET"),
            < 56 => MSet("MSETNX"),
            < 58 => ["DBSIZE"],
            < 61 => ["SELECT", Pick(["0", "1", "2", "0", "16", "-1", "x"])],
            < 66 => ExpireAt(),
            < 68 => ["PERSIST", Key()],
            < 71 => [Pick(["EXPIRETIME", "PEXPIRETIME"]), Key()],
            < 73 => ["MULTI"],
            < 77 => ["EXEC"],
            < 78 => ["DISCARD"],
            < 80 => _random.Next(2) == 0 ? ["PING"] : ["PING", Value()],
            < 81 => ["ECHO", Value()],
            < 84 => WrongArity(),
            < 86 => [Pick(["NOSUCH", "getx", "SETT"]), .. Keys(0, 2)],
            < 87 => _random.Next(4) == 0 ? ["FLUSHALL"] : ["FLUSHDB", .. _random.Next(3) == 0 ? ["ASYNC"] : Array.Empty<string>()],
            < 100 => ["GET", Key()],
            < 104 => ["KEYS", Pattern()],
            < 106 => ["RANDOMKEY"],
            < 108 => ["HELLO", Pick(["2", "3"])],
            < 109 => ["COMMAND"],
            _ => ["DIGEST"],
        };
    }

    private string Pick(string[] options) => options[_random.Next(options.Length)];

    private string Key() => Pick(KeyPool);

    private string[] Keys(int min, int max) => [.. Enumerable.Range(0, _random.Next(min, max + 1)).Select(_ => Key())];

    private string Value() => _random.Next(4) == 0
        ? _random.Next(-1000, 1000).ToString(CultureInfo.InvariantCulture)
        : Pick(ValuePool);

    private string Number() => _random.Next(3) == 0
        ? _random.Next(-100, 100).ToString(CultureInfo.InvariantCulture)
        : Pick(NumberPool);

    private string Case(string name) => _random.Next(3) == 0 ? name.ToLowerInvariant() : name;

    private string[] Set()
    {
        var request = new List<string> { "SET", Key(), Value() };
        int options = _random.Next(4);
        for (int i = 0; i < options; i++)
        {
            switch (_random.Next(9))
            {
                case 0: request.Add("NX"); break;
                case 1: request.Add("XX"); break;
                case 2: request.Add("GET"); break;
                case 3: request.Add("KEEPTTL"); break;
                case 4: request.AddRange([Pick(["EX", "PX"]), Pick(["0", "-1", "x", "9223372036854775807"])]); break;
                case 5: request.AddRange(["EXAT", Pick(FutureSeconds)]); break;
                case 6: request.AddRange(["PXAT", Pick(FutureSeconds) + "123"]); break;
                case 7 when !_redisComparable: request.AddRange([Pick(["EXAT", "PXAT"]), Pick(["1", "1000"])]); break;
                default: request.Add(Pick(["EX", "bogus", "nx"])); break;
            }
        }

        return [.. request];
    }

    private string[] MSet(string name)
    {
        var request = new List<string> { name };
        int pairs = _random.Next(1, 4);
        for (int i = 0; i < pairs; i++)
        {
            request.Add(Key());
            request.Add(Value());
        }

        if (_random.Next(6) == 0)
        {
            request.RemoveAt(request.Count - 1);
        }

        return [.. request];
    }

    private string[] ExpireAt()
    {
        bool millis = _random.Next(2) == 0;
        string when = _random.Next(3) == 0 ? Pick(PastSeconds) : Pick(FutureSeconds);
        if (millis && when.Length > 5)
        {
            when += Pick(["000", "499", "500", "999"]);
        }

        var request = new List<string> { millis ? "PEXPIREAT" : "EXPIREAT", Key(), _random.Next(15) == 0 ? "soon" : when };
        int flags = _random.Next(4) == 0 ? _random.Next(1, 3) : 0;
        for (int i = 0; i < flags; i++)
        {
            request.Add(Pick(["NX", "XX", "GT", "LT", "gt", "bad"]));
        }

        return [.. request];
    }

    private string[] WrongArity() => _random.Next(6) switch
    {
        0 => ["GET"],
        1 => ["GET", "a", "b"],
        2 => ["SET", "a"],
        3 => ["INCRBY", "a"],
        4 => ["MULTI", "x"],
        _ => ["EXEC", "x"],
    };

    private string Pattern()
    {
        const string alphabet = "k*?[]^-\\0h\u00e9";
        int length = _random.Next(1, 6);
        return new string([.. Enumerable.Range(0, length).Select(_ => alphabet[_random.Next(alphabet.Length)])]);
    }
}
