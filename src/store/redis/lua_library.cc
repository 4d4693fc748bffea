#include "store/redis/lua_library.h"

namespace herald::redis {

// herald_append KEYS: seq, time, state, subj, ev, stateoff, tenants, runs, then one records
// hash per record.
// ARGV: expected seq, the batch's time (every event of one call has it), n events, then per
// event: the encoded event, its state field (tenant NUL subject; empty: no subject), retain
// (1/0), last of its batch (1/0), its tenant, the record that travels with its batch ('' but
// on a batch's first event whose record travels: kind, key and json each as <length>:<bytes>);
// then per record: its hash's field, json and expiry.
// Each event goes to its tenant's log herald:log:<tenant> (ID <offset>-0, field e; a travelling
// record in field r, and it leads its event in the message: 'R' then the record). Each run of
// one tenant's events in a batch is one message on herald:ev:<tenant> (KEYS[5] is the prefix),
// published in offset order. An event's id
// carries its offset (redis_store.cc, event_id_offset): no index per event. Each run of consecutive
// events of one tenant in the call is one entry of herald:runs (ID <first offset>-0, fields t =
// tenant, n = length, m = time): the map from global offsets to tenants' logs. Commits iff
// herald:seq <= expected (equal: the node is up to date; below: Redis lost acknowledged writes, and
// the node's offsets continue after what it knows was committed) and the proposed time does not go
// back; else returns {0, seq, time} and writes nothing.
const char* const store_function_library = R"lua(#!lua name=herald
-- herald:recexp:<kind> scores each record of herald:rec:<kind> by its expires_ms ('0': none).
local function index_expiry(hash, key, exp)
  local idx = 'herald:recexp:' .. string.sub(hash, 12)
  if exp ~= '0' then
    redis.call('ZADD', idx, exp, key)
  else
    redis.call('ZREM', idx, key)
  end
end

-- herald:recnode:<kind> maps each record naming a holding node to it, and
-- herald:held:<kind>:<node> is that node's set of them; owner '' (an erase, or a record naming
-- none) takes the record out of both.
local function index_owner(hash, key, owner)
  local kind = string.sub(hash, 12)
  local byrec = 'herald:recnode:' .. kind
  local prev = redis.call('HGET', byrec, key)
  if prev == owner then return end
  if prev then redis.call('SREM', 'herald:held:' .. kind .. ':' .. prev, key) end
  if owner ~= '' then
    redis.call('HSET', byrec, key, owner)
    redis.call('SADD', 'herald:held:' .. kind .. ':' .. owner, key)
  elseif prev then
    redis.call('HDEL', byrec, key)
  end
end

local layout_error = 'ERR herald_append: layout: %s holds a keyspace of an earlier Herald ' ..
  'layout (one global log); this version keeps one log per tenant and does not read it: ' ..
  'flush the database or use another one (docs/cluster.md, "Key layout")'

local function append(keys, args)
  -- A call laid out by another version (other keys, other fields per event) is refused before
  -- any write: a write half done would leave a log ahead of herald:seq.
  local n = tonumber(args[3])
  if #keys < 8 or keys[8] ~= 'herald:runs' or (keys[9] and
      string.sub(keys[9], 1, 11) ~= 'herald:rec:') or not n or
      #args ~= 3 + 6 * n + 3 * (#keys - 8) then
    return redis.error_reply('ERR herald_append: version mismatch: ' .. #keys .. ' keys and ' ..
      #args .. ' arguments are not the layout of this version (8 keys and one per record; 3 ' ..
      'arguments, 6 per event, 3 per record): every node of a cluster must run the same ' ..
      'Herald version')
  end
  for _, old in ipairs({'herald:log', 'herald:tidxfrom'}) do
    if redis.call('EXISTS', old) == 1 then
      return redis.error_reply(string.format(layout_error, old))
    end
  end
  local expected = tonumber(args[1])
  local seq = tonumber(redis.call('GET', keys[1]) or '0')
  local t = tonumber(redis.call('GET', keys[2]) or '0')
  local new_time = tonumber(args[2])
  if seq > expected or new_time < t then return {0, seq, t} end
  local i = 4
  local msg, msg_tenant = {}, nil  -- the message being built: events of one tenant in a row
  local tenants = {}
  local run_tenant, run_first, run_n = nil, 0, 0
  local function end_run()
    if run_n > 0 then
      redis.call('XADD', keys[8], run_first .. '-0', 't', run_tenant, 'n', run_n, 'm', args[2])
    end
  end
  local function publish()
    if #msg > 0 then
      redis.call('PUBLISH', keys[5] .. ':' .. msg_tenant, table.concat(msg))
      msg = {}
    end
  end
  for k = 1, n do
    local rec, field, retain, last, tenant = args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]
    local carried = args[i + 5]
    i = i + 6
    local off = expected + k
    local log = tenants[tenant]
    if not log then
      log = 'herald:log:' .. tenant
      tenants[tenant] = log
      redis.call('SADD', keys[7], tenant)
    end
    if tenant ~= msg_tenant then
      publish()
      msg_tenant = tenant
    end
    if carried ~= '' then
      redis.call('XADD', log, off .. '-0', 'e', rec, 'r', carried)
      msg[#msg + 1] = 'R' .. carried
    else
      redis.call('XADD', log, off .. '-0', 'e', rec)
    end
    if tenant == run_tenant then
      run_n = run_n + 1
    else
      end_run()
      run_tenant, run_first, run_n = tenant, off, 1
    end
    if field ~= '' then
      redis.call('SADD', keys[4], field)
      if retain == '1' then
        redis.call('HSET', keys[3], field, rec)
        redis.call('ZADD', keys[6], off, field)
        -- the tenant's own indexes (the field up to its NUL): its fields, for a per-tenant
        -- states(); by offset, for a tenant's read of the states pruned out of its log
        local owner = string.match(field, '^[^%z]*')
        redis.call('SADD', 'herald:tstate:' .. owner, field)
        redis.call('ZADD', 'herald:tstateoff:' .. owner, off, field)
      end
    end
    msg[#msg + 1] = #rec .. ':' .. rec
    if last == '1' then publish() end
  end
  end_run()
  for r = 9, #keys do
    redis.call('HSET', keys[r], args[i], args[i + 1])
    index_expiry(keys[r], args[i], args[i + 2])
    i = i + 3
  end
  redis.call('SET', keys[1], expected + n)
  redis.call('SET', keys[2], args[2])
  return {1, expected + n, new_time}
end

local function records(keys, args)
  local i = 1
  while i <= #args do
    if args[i] == 'p' then
      redis.call('HSET', keys[1], args[i + 1], args[i + 2])
      index_expiry(keys[1], args[i + 1], args[i + 3])
      index_owner(keys[1], args[i + 1], args[i + 4])
      i = i + 5
    else
      redis.call('HDEL', keys[1], args[i + 1])
      index_expiry(keys[1], args[i + 1], '0')
      index_owner(keys[1], args[i + 1], '')
      i = i + 2
    end
  end
  -- herald:seq at the write: the node's copy reflects the log up to it (record_order).
  return tonumber(redis.call('GET', 'herald:seq') or '0')
end

-- Up to args[2] records whose expires_ms is in [1, args[1]], by the index: never a scan.
local function prune_records(keys, args)
  local idx = 'herald:recexp:' .. string.sub(keys[1], 12)
  local due = redis.call('ZRANGEBYSCORE', idx, 1, args[1], 'LIMIT', 0, tonumber(args[2]))
  local gone = 0
  for _, k in ipairs(due) do
    gone = gone + redis.call('HDEL', keys[1], k)
    index_owner(keys[1], k, '')
  end
  if #due > 0 then redis.call('ZREM', idx, unpack(due)) end
  return {#due, gone}
end

-- KEYS: tenants, pruned; ARGV: the first offset every log keeps, the bound in events per
-- tenant (0: none), the most entries this call removes, then a page of tenants.
-- Removes from each tenant's log herald:log:<tenant> the entries below the offset and the
-- oldest past the bound (their IDs read first, to bound the call's work: an event's id needs
-- no index to clean, it carries its offset). One exact XTRIM MINID per log (whole stream nodes freed); herald:pruned counts what went; a
-- log left empty is deleted and its tenant leaves herald:tenants (atomic with the appends,
-- which add it back). Returns {more, oldest}: more = 1 when the budget ran out (call again),
-- oldest = the lowest offset the page's logs still hold (-1: none).
local function prune_log(keys, args)
  local keep, max, budget = tonumber(args[1]), tonumber(args[2]), tonumber(args[3])
  local oldest, more = -1, 0
  for k = 4, #args do
    local log = 'herald:log:' .. args[k]
    local excess = 0
    if max > 0 then excess = math.max(0, redis.call('XLEN', log) - max) end
    if budget <= 0 then
      more = 1
      break
    end
    local entries
    if excess > 0 then
      entries = redis.call('XRANGE', log, '-', '+', 'COUNT', budget)
    else
      entries = redis.call('XRANGE', log, '-', '(' .. keep .. '-0', 'COUNT', budget)
    end
    local last, gone = nil, 0
    for idx, entry in ipairs(entries) do
      local off = tonumber(string.match(entry[1], '^%d+'))
      if off >= keep and idx > excess then break end
      last = off
      gone = gone + 1
    end
    budget = budget - gone
    if last then
      redis.call('XTRIM', log, 'MINID', '=', (last + 1) .. '-0')
      redis.call('INCRBY', keys[2], gone)
    end
    if budget <= 0 and gone == #entries then more = 1 end
    local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
    if first[1] then
      local off = tonumber(string.match(first[1][1], '^%d+'))
      if oldest < 0 or off < oldest then oldest = off end
    else
      redis.call('DEL', log)
      redis.call('SREM', keys[1], args[k])
    end
  end
  return {more, oldest}
end

-- KEYS: herald:seq; ARGV: a node's marker channel, a mark number. Publishes "<mark>:<seq>" on
-- the channel and returns seq: the message reaches the node after every batch message
-- published up to seq (one connection gets its messages in publish order), before any later.
local function mark(keys, args)
  local seq = redis.call('GET', keys[1]) or '0'
  redis.call('PUBLISH', args[1], args[2] .. ':' .. seq)
  return tonumber(seq)
end

-- KEYS: a records hash, herald:seq; ARGV: the key. The record (nil: none) and herald:seq, at once.
local function get_record(keys, args)
  return {redis.call('HGET', keys[1], args[1]), redis.call('GET', keys[2]) or '0'}
end

redis.register_function('herald_append', append)
redis.register_function{function_name = 'herald_get_record', callback = get_record,
                        flags = {'no-writes'}}
redis.register_function('herald_prune_log', prune_log)
-- allow-oom: a Redis at maxmemory (noeviction) refuses writes, and a feed that cannot mark
-- could not read what a dropped subscription missed; a mark stores nothing.
redis.register_function{function_name = 'herald_mark', callback = mark, flags = {'allow-oom'}}
redis.register_function('herald_records', records)
redis.register_function('herald_prune_records', prune_records)
)lua";

}  // namespace herald::redis
