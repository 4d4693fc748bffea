#include "store/redis/control.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>

#include "core/clock.h"

namespace herald::redis {

namespace {

// The library `herald_nodes` (FUNCTION LOAD REPLACE at start, and again when Redis lost it).
// Held records: KEYS herald:rec:session, herald:recexp:session, herald:recnode:session,
// herald:held:session:<node>, herald:node:<node>, herald:nodes.
constexpr const char* nodes_library = R"lua(#!lua name=herald_nodes
-- Record k of `node`: expires_ms = now + its recovery_window_ms (`default` when it names none),
-- written into its JSON (first field) and indexed in recexp, unless it already has one (never
-- moved) or another node has written it since (the adopter's write wins).
local function expire_one(keys, k, node, now, default)
  if redis.call('HGET', keys[3], k) ~= node then return 0 end
  if redis.call('ZSCORE', keys[2], k) then return 0 end
  local j = redis.call('HGET', keys[1], k)
  if not j or string.sub(j, 1, 1) ~= '{' then return 0 end
  local w = default
  local ok, o = pcall(cjson.decode, j)
  if ok and type(o) == 'table' and type(o.recovery_window_ms) == 'number' and
      o.recovery_window_ms >= 1 then
    w = o.recovery_window_ms
  end
  local exp = string.format('%.0f', now + w)
  local rest = string.sub(j, 2)
  if rest ~= '}' then rest = ',' .. rest end
  redis.call('HSET', keys[1], k, '{"expires_ms":' .. exp .. rest)
  redis.call('ZADD', keys[2], exp, k)
  return 1
end

-- A lapsed node's records, one SSCAN page. ARGV node, now, default, cursor, page.
-- {next cursor, expired}; {'live', 0} once its lease is back. The last page drops it from
-- herald:nodes.
local function node_expire(keys, args)
  if redis.call('EXISTS', keys[5]) == 1 then return {'live', 0} end
  local r = redis.call('SSCAN', keys[4], args[4], 'COUNT', tonumber(args[5]))
  local n = 0
  for _, k in ipairs(r[2]) do
    n = n + expire_one(keys, k, args[1], tonumber(args[2]), tonumber(args[3]))
  end
  if r[1] == '0' then redis.call('SREM', keys[6], args[1]) end
  return {r[1], n}
end

-- What an earlier run of this node left: expired as above and no longer held by anyone.
-- ARGV node, now, default, page. {taken, expired}.
local function node_release(keys, args)
  local ks = redis.call('SPOP', keys[4], tonumber(args[4]))
  local n = 0
  for _, k in ipairs(ks) do
    n = n + expire_one(keys, k, args[1], tonumber(args[2]), tonumber(args[3]))
    if redis.call('HGET', keys[3], k) == args[1] then redis.call('HDEL', keys[3], k) end
  end
  return {#ks, n}
end

-- This node's lease is back after lapsing: the expiry expire_one wrote is taken out again
-- from the records it still holds. ARGV node, cursor, page. {next cursor, taken back}.
local function node_reclaim(keys, args)
  local r = redis.call('SSCAN', keys[4], args[2], 'COUNT', tonumber(args[3]))
  local n = 0
  for _, k in ipairs(r[2]) do
    local j = redis.call('HGET', keys[1], k)
    if j and redis.call('HGET', keys[3], k) == args[1] and
        string.sub(j, 1, 14) == '{"expires_ms":' then
      local comma = string.find(j, ',', 15, true)
      redis.call('HSET', keys[1], k, comma and ('{' .. string.sub(j, comma + 1)) or '{}')
      redis.call('ZREM', keys[2], k)
      n = n + 1
    end
  end
  return {r[1], n}
end

-- KEYS herald:nodes. ARGV the prefix. The registered ids whose lease lapsed.
local function nodes_lapsed(keys, args)
  local out = {}
  for _, id in ipairs(redis.call('SMEMBERS', keys[1])) do
    if redis.call('EXISTS', args[1] .. 'node:' .. id) == 0 then out[#out + 1] = id end
  end
  return out
end

-- KEYS the stream, its counter. ARGV max_len, node, kind, arg. The entry's ID; its field s is
-- the message's dense number.
local function ctl_add(keys, args)
  local s = redis.call('INCR', keys[2])
  return redis.call('XADD', keys[1], 'MAXLEN', '~', args[1], '*', 'n', args[2], 'k', args[3],
                    'a', args[4], 's', s)
end

-- KEYS the stream, its counter. {the last entry's ID or '', the last number}, read together.
local function ctl_tail(keys, args)
  local t = redis.call('XREVRANGE', keys[1], '+', '-', 'COUNT', 1)
  local s = redis.call('GET', keys[2]) or '0'
  if #t == 0 then return {'', s} end
  return {t[1][1], s}
end

redis.register_function('herald_node_expire', node_expire)
redis.register_function('herald_node_release', node_release)
redis.register_function('herald_node_reclaim', node_reclaim)
redis.register_function('herald_nodes_lapsed', nodes_lapsed)
redis.register_function('herald_ctl_add', ctl_add)
redis.register_function('herald_ctl_tail', ctl_tail)
)lua";

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && p == s.data() + s.size() ? v : 0;
}

}  // namespace

// What the io_thread's handlers share with the object; outlives it while a reply is in flight.
struct control::state {
  control_options opts;
  handler on_message;
  connection* cmd = nullptr;            // null once stopping: no further read is issued
  std::string last = "0-0";             // io_thread: the last entry handled
  std::uint64_t last_seq = 0;           // io_thread: its number (s), 0 unknown
  bool reading = false, again = false;  // io_thread: an XRANGE in flight, another wanted
  std::string stream() const { return opts.prefix + "ctl"; }
};

namespace {

std::string field(const reply& fields, std::string_view name) {
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
    if (fields.elements[i].str == name) return fields.elements[i + 1].str;
  return {};
}

// Reads the stream after `last` (io_thread), hands each entry on, and reads on while a page
// came back full or a notification arrived meanwhile.
void read_more(const std::shared_ptr<control::state>& s) {
  if (s->cmd == nullptr) return;
  if (s->reading) {
    s->again = true;
    return;
  }
  s->reading = true;
  s->again = false;
  command c{"XRANGE", s->stream(), "(" + s->last, "+", "COUNT"};
  c.arg(static_cast<std::int64_t>(s->opts.page));
  s->cmd->exec(c, [s](result<reply> r) {
    s->reading = false;
    if (!r || !r->is_array()) return;  // down: the subscriber's `up` or the poll reads again
    for (const reply& entry : r->elements) {
      if (!entry.is_array() || entry.elements.size() != 2) continue;
      s->last = entry.elements[0].str;
      const reply& fields = entry.elements[1];
      // Numbered densely: a jump means the trimming took messages this node never read.
      if (const std::uint64_t n = to_u64(field(fields, "s")); n != 0) {
        if (s->last_seq != 0 && n > s->last_seq + 1 && s->opts.on_gap && s->cmd != nullptr)
          s->opts.on_gap(n - s->last_seq - 1);
        s->last_seq = n;  // lower: Redis lost the stream and its counter; counted from here
      }
      control_message m{entry.elements[0].str, field(fields, "n"), field(fields, "k"),
                        field(fields, "a")};
      if (m.node == s->opts.node_id || s->cmd == nullptr) continue;  // own, or stopped
      s->on_message(m);
    }
    if (s->again || r->elements.size() >= s->opts.page) read_more(s);
  });
}

}  // namespace

control::control(io_thread& io, options conn, control_options opts, handler on_message)
    : io_(io), opts_(std::move(opts)), state_(std::make_shared<state>()) {
  state_->opts = opts_;
  state_->on_message = std::move(on_message);
  options sub_opts = conn;
  sub_opts.client_name = conn.client_name + "-ctl-sub";
  conn.client_name += "-ctl";
  cmd_ = std::make_unique<connection>(io_, std::move(conn));
  auto s = state_;
  sub_ = std::make_unique<subscriber>(
      io_, std::move(sub_opts), [s](message&&) { read_more(s); },
      [s](bool up, const std::string&) {
        if (up) read_more(s);  // what was published while the subscriber was down
      });
}

control::~control() {
  stop();
  sub_.reset();  // no handler runs after this
  cmd_.reset();
}

status control::start(std::int64_t timeout_ms) {
  cmd_->start();
  if (auto st = cmd_->wait_connected(timeout_ms); !st) return st;
  // Start after the stream's current end, and its number.
  auto tail = fcall(command{"FCALL", "herald_ctl_tail", "2", state_->stream(), seq_key()});
  if (!tail) return tail.err();
  if (!tail->is_array() || tail->elements.size() != 2)
    return error{errc::unavailable, "redis: herald_ctl_tail: " + tail->to_string()};
  {
    const std::string last = tail->elements[0].str;
    const std::uint64_t last_seq = to_u64(tail->elements[1].str);
    std::promise<void> set;
    io_.post([s = state_, last, last_seq, &set] {
      if (!last.empty()) s->last = last;
      s->last_seq = last_seq;
      set.set_value();
    });
    set.get_future().wait();
  }
  // Before this run holds anything: later, its own sessions would be in the set too.
  if (!release_own())
    return error{errc::unavailable,
                 "redis: releasing what an earlier run of node " + opts_.node_id + " held failed"};
  if (auto st = renew(); !st) return st;
  registered_ = true;
  {
    std::promise<void> set;
    io_.post([s = state_, c = cmd_.get(), &set] {
      s->cmd = c;
      set.set_value();
    });
    set.get_future().wait();
  }
  sub_->subscribe({state_->stream()});
  sub_->start();
  if (auto st = sub_->wait_connected(timeout_ms); !st) return st;
  renewer_ = std::thread([this] { renew_loop(); });
  return {};
}

result<reply> control::fcall(const command& c) {
  auto r = call_function(*cmd_, c, nodes_library);
  if (r && r->is_error()) return error{errc::unavailable, "redis: " + r->str};
  return r;
}

command control::held_step(const char* what, const std::string& id) const {
  const std::string& p = opts_.prefix;
  command c{"FCALL",
            std::string("herald_node_") + what,
            "6",
            p + "rec:session",
            p + "recexp:session",
            p + "recnode:session"};
  c.arg(p + "held:session:" + id).arg(p + "node:" + id).arg(p + "nodes").arg(id);
  return c;
}

bool control::release_own() {
  std::int64_t expired = 0;
  const auto page = static_cast<std::int64_t>(opts_.page);
  for (;;) {
    command c = held_step("release", opts_.node_id);
    c.arg(now_ms()).arg(opts_.held_window_ms).arg(page);
    auto r = fcall(c);
    if (!r || !r->is_array() || r->elements.size() != 2) return false;
    expired += r->elements[1].integer;
    if (r->elements[0].integer < page) break;
  }
  if (expired > 0 && opts_.on_note)
    opts_.on_note("an earlier run of node " + opts_.node_id + " held " + std::to_string(expired) +
                  " session records: they now expire within their recovery window");
  return true;
}

bool control::reclaim_own() {
  std::int64_t back = 0;
  std::string cursor = "0";
  do {
    command c = held_step("reclaim", opts_.node_id);
    c.arg(cursor).arg(static_cast<std::int64_t>(opts_.page));
    auto r = fcall(c);
    if (!r || !r->is_array() || r->elements.size() != 2) return false;
    cursor = r->elements[0].str;
    back += r->elements[1].integer;
  } while (cursor != "0");
  if (opts_.on_note)
    opts_.on_note("node " + opts_.node_id + "'s lease had lapsed and is renewed: " +
                  std::to_string(back) + " of its session records no longer expire");
  return true;
}

void control::expire_lapsed() {
  auto lapsed =
      fcall(command{"FCALL", "herald_nodes_lapsed", "1", opts_.prefix + "nodes", opts_.prefix});
  if (!lapsed || !lapsed->is_array()) return;
  for (const reply& id : lapsed->elements) {
    if (id.str == opts_.node_id) continue;
    std::int64_t expired = 0;
    std::string cursor = "0";
    do {
      command c = held_step("expire", id.str);
      c.arg(now_ms())
          .arg(opts_.held_window_ms)
          .arg(cursor)
          .arg(static_cast<std::int64_t>(opts_.page));
      auto r = fcall(c);
      if (!r || !r->is_array() || r->elements.size() != 2) return;  // the next renewal retries
      cursor = r->elements[0].str;
      expired += r->elements[1].integer;
    } while (cursor != "0" && cursor != "live");
    if (cursor == "0" && opts_.on_note)
      opts_.on_note("node " + id.str + "'s lease lapsed: " + std::to_string(expired) +
                    " of its session records now expire within their recovery window");
  }
}

status control::renew() {
  const std::string key = opts_.prefix + "node:" + opts_.node_id;
  command hset{"HSET", key, "node", opts_.node_id, "pid"};
  hset.arg(static_cast<std::int64_t>(::getpid())).arg("renewed_ms").arg(now_ms());
  auto r = cmd_->call(hset);
  if (!r) return r.err();
  if (r->is_error()) return error{errc::unavailable, "redis: HSET " + key + ": " + r->str};
  // Fields added: the hash had gone, so our lease had lapsed (peers may have given our
  // session records an expiry) — unless this is the first renewal.
  if (registered_ && r->integer > 0) reclaim_due_ = true;
  command exp{"PEXPIRE", key};
  exp.arg(opts_.lease_ms);
  r = cmd_->call(exp);
  if (!r) return r.err();
  // In the set again if a peer dropped it while the lease had lapsed (Redis was away).
  r = cmd_->call(command{"SADD", opts_.prefix + "nodes", opts_.node_id});
  if (!r) return r.err();
  // Our lease is live again: no peer's expiry step runs from here on (each checks it first).
  if (reclaim_due_) reclaim_due_ = !reclaim_own();
  return {};
}

void control::renew_loop() {
  std::unique_lock l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(opts_.renew_ms), [&] { return stopping_; });
    if (stopping_) break;
    l.unlock();
    // Down: the lease lapses, and is taken again once Redis is back.
    if (renew()) expire_lapsed();
    io_.post([s = state_] { read_more(s); });
    l.lock();
  }
}

void control::stop() {
  {
    std::lock_guard l(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (!io_.on_this_thread()) {
    std::promise<void> unset;
    io_.post([s = state_, &unset] {
      s->cmd = nullptr;
      unset.set_value();
    });
    unset.get_future().wait();
  }
  stopped_ = true;
  if (cmd_->connected()) {
    // The id stays in herald:nodes: the other nodes see the lease gone at once and give the
    // session records this node held (its clients resume elsewhere, or not) an expiry.
    (void)cmd_->call(command{"DEL", opts_.prefix + "node:" + opts_.node_id}, 1000);
  }
}

status control::publish(std::string_view kind, std::string_view arg) {
  if (stopped_) return error{errc::unavailable, "control channel stopped"};
  command add{"FCALL", "herald_ctl_add", "2", state_->stream(), seq_key()};
  add.arg(static_cast<std::int64_t>(opts_.max_len)).arg(opts_.node_id).arg(kind).arg(arg);
  auto r = fcall(add);
  if (!r) return error{r.err().code, "control message: " + r.err().message};
  // The notification carries the ID and the body (for observers); readers read the stream.
  std::string note = r->str;
  note.append(" ").append(opts_.node_id).append(" ").append(kind).append(" ").append(arg);
  cmd_->exec(command{"PUBLISH", state_->stream(), note}, [](const result<reply>&) {});
  return {};
}

result<std::vector<std::string>> control::live_nodes() {
  if (stopped_) return error{errc::unavailable, "control channel stopped"};
  auto members = cmd_->call(command{"SMEMBERS", opts_.prefix + "nodes"});
  if (!members) return members.err();
  if (!members->is_array()) return error{errc::unavailable, "redis: SMEMBERS: " + members->str};
  std::vector<std::string> live;
  for (const reply& m : members->elements) {
    auto ex = cmd_->call(command{"EXISTS", opts_.prefix + "node:" + m.str});
    if (!ex) return ex.err();
    // A lapsed one stays in the set until expire_lapsed() has dealt with its records.
    if (ex->integer == 1) live.push_back(m.str);
  }
  std::sort(live.begin(), live.end());
  return live;
}

}  // namespace herald::redis
