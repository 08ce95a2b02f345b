using System.Buffers;
using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// The Lua scripts through which the gateway gives random and filtered commands one deterministic meaning. Each
/// runs as one ordered request on every replica; whatever is random comes in as an argument chosen by the gateway.
/// </summary>
internal static class RespScripts
{
    /// <summary>
    /// SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER and RANDOMKEY. ARGV: seed, command, count ('' for none),
    /// '1' for WITHVALUES/WITHSCORES, '1' for RESP3. The collection is put in a canonical order (sorted members or
    /// fields; a sorted set's own order) and picked from with a Park-Miller generator seeded by the gateway, so
    /// every replica picks, and for SPOP removes, the same elements. Costs O(n log n) in the collection's size.
    /// </summary>
    public static readonly byte[] Random = Encoding.ASCII.GetBytes("""
        local seed = tonumber(ARGV[1])
        local function rnd(n) seed = (seed * 16807) % 2147483647; return seed % n end
        local op = ARGV[2]
        local counted = ARGV[3] ~= ''
        local count = tonumber(ARGV[3]) or 1
        local with = ARGV[4] == '1'
        local resp3 = ARGV[5] == '1'
        if op == 'randomkey' then
          local ks = redis.call('KEYS', '*')
          if #ks == 0 then return false end
          table.sort(ks)
          return ks[rnd(#ks) + 1]
        end
        local want = 'zset'
        if op == 'spop' or op == 'srandmember' then want = 'set' elseif op == 'hrandfield' then want = 'hash' end
        local t = redis.call('TYPE', KEYS[1]).ok
        if t == 'none' then
          if counted then return {} else return false end
        end
        if t ~= want then return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value') end
        local m
        if want == 'set' then
          m = redis.call('SMEMBERS', KEYS[1])
          table.sort(m)
        else
          local flat
          if want == 'hash' then flat = redis.call('HGETALL', KEYS[1]) else flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') end
          m = {}
          for i = 1, #flat, 2 do m[#m + 1] = {flat[i], flat[i + 1]} end
          if want == 'hash' then table.sort(m, function(a, b) return a[1] < b[1] end) end
        end
        local picked = {}
        if not counted then
          picked[1] = m[rnd(#m) + 1]
        elseif count >= 0 then
          if count > #m then count = #m end
          for i = 1, count do
            local j = i + rnd(#m - i + 1)
            m[i], m[j] = m[j], m[i]
            picked[i] = m[i]
          end
        else
          for i = 1, -count do picked[i] = m[rnd(#m) + 1] end
        end
        if op == 'spop' then
          for i = 1, #picked, 1000 do redis.call('SREM', KEYS[1], unpack(picked, i, math.min(i + 999, #picked))) end
        end
        local function name(u) if type(u) == 'table' then return u[1] end return u end
        if not counted then return name(picked[1]) end
        local out = {}
        for _, u in ipairs(picked) do
          if with then
            local v = u[2]
            if want == 'zset' and resp3 then v = {double = tonumber(v)} end
            if resp3 then out[#out + 1] = {u[1], v} else out[#out + 1] = u[1]; out[#out + 1] = v end
          else
            out[#out + 1] = name(u)
          end
        end
        return out
        """);

    /// <summary>BLPOP/BRPOP/BZPOPMIN/BZPOPMAX's non-blocking form: the first non-empty key, in order.</summary>
    public static readonly byte[] BlockingPop = """
        -- resh: blocking pop
        for _, k in ipairs(KEYS) do
          local r = redis.pcall(ARGV[1], k)
          if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
          if ARGV[1] == 'LPOP' or ARGV[1] == 'RPOP' then
            if r then return {k, r} end
          elseif #r > 0 then
            if ARGV[3] == '1' then return {k, r[1], {double = tonumber(r[2])}} end
            return {k, r[1], r[2]}
          end
        end
        if ARGV[2] == '1' then return false end
        return -424243
        """u8.ToArray();

    /// <summary>SCAN ... TYPE t at cursor 0: the keys matching ARGV[1] whose type is ARGV[2].</summary>
    public static readonly byte[] KeysOfType = Encoding.ASCII.GetBytes("""
        local r = {}
        for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
          if redis.call('TYPE', k).ok == ARGV[2] then r[#r + 1] = k end
        end
        return r
        """);

    /// <summary>
    /// XADD with an automatic id. KEYS[1]: the stream; ARGV: the gateway's milliseconds, the id's position among the
    /// arguments after the key, then those arguments. The id is &lt;ms&gt;-* with ms the later of the gateway's clock and
    /// the stream's last generated id, as Redis's own clock-based ids never go back.
    /// </summary>
    public static readonly byte[] XAdd = Encoding.ASCII.GetBytes("""
        -- resh: xadd
        local ms = tonumber(ARGV[1])
        local at = tonumber(ARGV[2])
        local args = {}
        for i = 3, #ARGV do args[#args + 1] = ARGV[i] end
        if redis.call('EXISTS', KEYS[1]) == 1 then
          local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
          if ok then
            for i = 1, #info, 2 do
              if info[i] == 'last-generated-id' then
                local last = tonumber(string.match(info[i + 1], '^(%d+)'))
                if last and last > ms then ms = last end
              end
            end
          end
        end
        args[at] = string.format('%d-*', ms)
        local r = redis.pcall('XADD', KEYS[1], unpack(args))
        if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
        return r
        """);

    /// <summary>
    /// Writes the head of an EVAL request: the array header for <paramref name="keys"/> keys and <paramref name="args"/>
    /// arguments, EVAL, the script and the key count. The caller writes the keys and arguments after it.
    /// </summary>
    public static void WriteEval(IBufferWriter<byte> output, ReadOnlySpan<byte> script, int keys, int args)
    {
        RespEncoding.WriteArrayHeader(output, 3 + keys + args);
        RespEncoding.WriteBulk(output, "EVAL"u8);
        RespEncoding.WriteBulk(output, script);
        RespEncoding.WriteBulk(output, keys);
    }

    /// <summary>The largest count a random command may ask for with repetitions (a negative count).</summary>
    public const long MaxRepeatedCount = 10_000_000;
}
