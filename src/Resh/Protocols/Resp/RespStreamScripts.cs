using System.Text;

namespace Resh.Protocols.Resp;

/// <summary>
/// Consumer groups under the gateway's clock. Redis stamps every pending entry with the time it was delivered and
/// compares it with its own clock for XCLAIM and XAUTOCLAIM's minimum idle time and XPENDING's IDLE filter and
/// idle column; with each replica's clock those would differ, and a replica replaying the log later would claim
/// what the others did not. So a delivery time is always the gateway's milliseconds (XREADGROUP's deliveries are
/// restamped with XCLAIM ... TIME at once, in the same script), and every comparison with "now" is made in a
/// script against the gateway's milliseconds and the exact delivery times, which only XINFO STREAM FULL reports.
/// Each script takes KEYS[1] (or the streams), ARGV[1] the gateway's milliseconds, then the command's own
/// arguments after the key.
/// </summary>
internal static class RespStreamScripts
{
    /// <summary>The group's pending entries in id order, each {id, consumer, delivery time, deliveries}.</summary>
    private const string Pending = """
        local function pending(key, group)
          local n = 0
          for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
            local name, count
            for i = 1, #g, 2 do
              if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'pending' then count = g[i + 1] end
            end
            if name == group then n = count end
          end
          if n == 0 then return {} end
          local full = redis.call('XINFO', 'STREAM', key, 'FULL', 'COUNT', n)
          for i = 1, #full, 2 do
            if full[i] == 'groups' then
              for _, g in ipairs(full[i + 1]) do
                local name, list
                for j = 1, #g, 2 do
                  if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'pending' then list = g[j + 1] end
                end
                if name == group then return list end
              end
            end
          end
          return {}
        end
        local function id(s) if string.find(s, '-', 1, true) then return s end return s .. '-0' end

        """;

    /// <summary>
    /// XREADGROUP, its deliveries stamped with the gateway's time. ARGV[2]: '1' for a blocked session's attempt
    /// (nothing read answers -424243, the gateway's "still blocked"); ARGV[3..]: the arguments after XREADGROUP
    /// without BLOCK. Entries read again from the history are restamped too, as Redis does; deleted ones are not.
    /// </summary>
    public static readonly byte[] XReadGroup = Encoding.ASCII.GetBytes("""
        -- resh: xreadgroup
        local a = {}
        for i = 3, #ARGV do a[#a + 1] = ARGV[i] end
        local r = redis.pcall('XREADGROUP', unpack(a))
        if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
        if not r then
          if ARGV[2] == '1' then return -424243 end
          return nil
        end
        for _, s in ipairs(r) do
          local ids = {}
          for _, e in ipairs(s[2]) do if e[2] then ids[#ids + 1] = e[1] end end
          for i = 1, #ids, 1000 do
            local c = {'XCLAIM', s[1], a[2], a[3], 0}
            for j = i, math.min(i + 999, #ids) do c[#c + 1] = ids[j] end
            c[#c + 1] = 'TIME'; c[#c + 1] = ARGV[1]; c[#c + 1] = 'JUSTID'
            redis.call(unpack(c))
          end
        end
        return r
        """);

    /// <summary>
    /// XCLAIM key group consumer min-idle id... [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE] [JUSTID] [LASTID id].
    /// The same command aimed at no pending entry (0-0) reports Redis's own errors first; then the ids idle long
    /// enough by the gateway's clock are claimed with min-idle 0, stamped with the gateway's time (or the given
    /// IDLE/TIME, read against it).
    /// </summary>
    public static readonly byte[] XClaim = Encoding.ASCII.GetBytes("-- resh: xclaim\n" + Pending + """
        local now = tonumber(ARGV[1])
        local a = {KEYS[1]}
        for i = 2, #ARGV do a[#a + 1] = ARGV[i] end
        local last = 4
        while last < #a and (string.match(a[last + 1], '^%d+$') or string.match(a[last + 1], '^%d+%-%d+$')) do last = last + 1 end
        local probe = {'XCLAIM', a[1], a[2], a[3], a[4], '0-0'}
        local opts, time = {}, nil
        local i = last + 1
        while i <= #a do
          local o = string.upper(a[i])
          if o ~= 'FORCE' then probe[#probe + 1] = a[i] end
          if (o == 'IDLE' or o == 'TIME') and i < #a then
            probe[#probe + 1] = a[i + 1]
            time = tonumber(a[i + 1])
            if o == 'IDLE' and time then time = now - time end
            i = i + 2
          elseif (o == 'RETRYCOUNT' or o == 'LASTID') and i < #a then
            probe[#probe + 1] = a[i + 1]
            opts[#opts + 1] = a[i]; opts[#opts + 1] = a[i + 1]
            i = i + 2
          else
            opts[#opts + 1] = a[i]
            i = i + 1
          end
        end
        local checked = redis.pcall(unpack(probe))
        if type(checked) == 'table' and checked.err then return redis.error_reply(checked.err) end
        if not time or time < 0 or time > now then time = now end
        local minidle = tonumber(a[4])
        local since = {}
        if minidle > 0 then
          for _, p in ipairs(pending(a[1], a[2])) do since[p[1]] = p[3] end
        end
        local c = {'XCLAIM', a[1], a[2], a[3], 0}
        for j = 5, last do
          local t = since[id(a[j])]
          if minidle <= 0 or not t or now - t >= minidle then
            c[#c + 1] = a[j]
            if t then since[id(a[j])] = time end
          end
        end
        if #c == 5 then c[6] = '0-0' end
        for _, o in ipairs(opts) do c[#c + 1] = o end
        c[#c + 1] = 'TIME'; c[#c + 1] = time
        return redis.call(unpack(c))
        """);

    /// <summary>
    /// XAUTOCLAIM key group consumer min-idle start [COUNT n] [JUSTID], walked as Redis 7.0 walks the pending list
    /// (COUNT×10 attempts; an entry deleted from the stream leaves the list, is reported and counts, as since
    /// 7.0.4), its idle test made
    /// against the gateway's clock. Errors come as Redis orders them: min-idle, the start id (checked by XRANGE,
    /// which parses it alike), then the options, type and group (checked by the command aimed past every entry).
    /// </summary>
    public static readonly byte[] XAutoClaim = Encoding.ASCII.GetBytes("-- resh: xautoclaim\n" + Pending + """
        local now = tonumber(ARGV[1])
        local group, consumer, minarg, start = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        if not (minarg == '0' or string.match(minarg, '^%-?[1-9]%d*$')) then
          return redis.error_reply('ERR Invalid min-idle-time argument for XAUTOCLAIM')
        end
        local r = redis.pcall('XRANGE', KEYS[1], start, '+', 'COUNT', 0)
        if type(r) == 'table' and r.err and not string.find(r.err, 'WRONGTYPE', 1, true) then return redis.error_reply(r.err) end
        local probe = {'XAUTOCLAIM', KEYS[1], group, consumer, minarg, '+'}
        local count, justid = 100, false
        local i = 6
        while i <= #ARGV do
          probe[#probe + 1] = ARGV[i]
          local o = string.upper(ARGV[i])
          if o == 'COUNT' and i < #ARGV then
            count = tonumber(ARGV[i + 1]); probe[#probe + 1] = ARGV[i + 1]; i = i + 2
          else
            if o == 'JUSTID' then justid = true end
            i = i + 1
          end
        end
        local checked = redis.pcall(unpack(probe))
        if type(checked) == 'table' and checked.err then return redis.error_reply(checked.err) end
        local minidle = tonumber(minarg)
        local function parse(s)
          local ms, seq = string.match(s, '^(%d+)%-(%d+)$')
          if ms then return tonumber(ms), tonumber(seq) end
          return tonumber(s), 0
        end
        local exclusive = string.sub(start, 1, 1) == '('
        if exclusive then start = string.sub(start, 2) end
        local sms, sseq
        if start == '-' then sms, sseq = 0, 0 elseif start == '+' then sms, sseq = math.huge, math.huge else sms, sseq = parse(start) end
        local list = pending(KEYS[1], group)
        local at = 1
        while at <= #list do
          local ms, seq = parse(list[at][1])
          if ms > sms or (ms == sms and (seq > sseq or (seq == sseq and not exclusive))) then break end
          at = at + 1
        end
        local attempts = count * 10
        local claimed, deleted = {}, {}
        while attempts > 0 and count > 0 and at <= #list do
          attempts = attempts - 1
          local e = list[at]
          at = at + 1
          if #redis.call('XRANGE', KEYS[1], e[1], e[1]) == 0 then
            redis.call('XACK', KEYS[1], group, e[1])
            deleted[#deleted + 1] = e[1]
            count = count - 1
          elseif minidle <= 0 or now - e[3] >= minidle then
            local c = {'XCLAIM', KEYS[1], group, consumer, 0, e[1], 'TIME', now}
            if justid then c[#c + 1] = 'JUSTID' end
            claimed[#claimed + 1] = redis.call(unpack(c))[1]
            count = count - 1
          end
        end
        local cursor = '0-0'
        if at <= #list then cursor = list[at][1] end
        return {cursor, claimed, deleted}
        """);

    /// <summary>
    /// XPENDING key group [IDLE min-idle] start end count [consumer]: Redis's own call checks the arguments, the
    /// range and consumer are Redis's, the IDLE filter and the idle column are the gateway's milliseconds minus
    /// each entry's delivery time.
    /// </summary>
    public static readonly byte[] XPending = Encoding.ASCII.GetBytes("-- resh: xpending\n" + Pending + """
        local now = tonumber(ARGV[1])
        local a = {}
        for i = 2, #ARGV do a[#a + 1] = ARGV[i] end
        local r = redis.pcall('XPENDING', KEYS[1], unpack(a))
        if type(r) == 'table' and r.err then return redis.error_reply(r.err) end
        local j, minidle = 2, 0
        if string.upper(a[2]) == 'IDLE' then minidle = tonumber(a[3]); j = 4 end
        local count = tonumber(a[j + 2])
        local list = pending(KEYS[1], a[1])
        if count <= 0 or #list == 0 then return r end
        local since = {}
        for _, p in ipairs(list) do since[p[1]] = p[3] end
        local q = {'XPENDING', KEYS[1], a[1], a[j], a[j + 1], #list}
        if a[j + 3] then q[#q + 1] = a[j + 3] end
        local out = {}
        for _, e in ipairs(redis.call(unpack(q))) do
          local idle = now - (since[e[1]] or now)
          if idle < 0 then idle = 0 end
          if idle >= minidle then
            out[#out + 1] = {e[1], e[2], idle, e[4]}
            if #out >= count then break end
          end
        end
        return out
        """);
}
