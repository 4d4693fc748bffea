#include "store/redis/redis_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "core/clock.h"
#include "store/batch_check.h"
#include "store/redis/lua_library.h"
#include "store/redis/subscriber.h"

namespace herald {

namespace {

// The Redis keys (docs/cluster.md). Everything lives in the URL's database.
constexpr const char* k_seq = "herald:seq";
constexpr const char* k_time = "herald:time";
constexpr const char* k_state = "herald:state";
constexpr const char* k_subj = "herald:subj";
constexpr const char* k_ev = "herald:ev";
constexpr const char* k_state_off = "herald:stateoff";
constexpr const char* k_tenants = "herald:tenants";  // every tenant with a log
constexpr const char* k_runs = "herald:runs";        // offset -> tenant, one entry per run
constexpr const char* k_pruned = "herald:pruned";    // how many events prune removed

// states_below(): no upper bound.
constexpr std::int64_t no_floor = std::numeric_limits<std::int64_t>::max();

// A tenant's log: its events, ID <offset>-0 (the global offset).
std::string log_key(std::string_view tenant) { return "herald:log:" + std::string(tenant); }

// An event's id in the cluster store carries its offset: "evt_", the offset in 11 base62
// digits (62^11 > 2^63; ids sort as their offsets do), then 11 of the 22 random digits
// new_id() drew (65 bits). find_event goes from the id to its run in herald:runs and one entry
// of its tenant's log, or to its retained state by herald:stateoff, with no index per event
// (a hash of ids cost 91.7 bytes an event, measured, and a write per event).
constexpr std::string_view id_prefix = "evt_";
constexpr std::size_t id_offset_digits = 11, id_size = 26;
constexpr std::string_view base62 =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void stamp_offset(std::string& id, std::int64_t offset) {
  if (id.size() != id_size || !id.starts_with(id_prefix)) id = new_id(id_prefix);
  auto v = static_cast<std::uint64_t>(offset);
  for (std::size_t i = id_offset_digits; i-- > 0;) {
    id[id_prefix.size() + i] = base62[v % 62];
    v /= 62;
  }
}

// The offset stamp_offset() put in `id`; none for anything else (another form, a digit out
// of base62, an offset past int64 or zero).
std::optional<std::int64_t> event_id_offset(std::string_view id) {
  if (id.size() != id_size || !id.starts_with(id_prefix)) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < id_offset_digits; ++i) {
    const auto d = base62.find(id[id_prefix.size() + i]);
    if (d == std::string_view::npos) return std::nullopt;
    if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - d) / 62)
      return std::nullopt;
    v = v * 62 + d;
  }
  if (v == 0) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

std::string rec_key(std::string_view kind) { return "herald:rec:" + std::string(kind); }

// A record's `expires_ms` as herald:recexp scores it: a number >= 1 (fractions rounded up),
// else "0" (none: 0, null, absent, not a number, not JSON) — what sqlite's
// json_extract(value, '$.expires_ms') BETWEEN 1 AND now selects.
std::string expiry_of(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return "0";
  const boost::json::value* e = v.as_object().if_contains("expires_ms");
  if (e == nullptr) return "0";
  if (e->is_int64()) return e->as_int64() >= 1 ? std::to_string(e->as_int64()) : "0";
  if (e->is_uint64()) return std::to_string(e->as_uint64());
  if (e->is_double() && e->as_double() >= 1 && e->as_double() < 9e18) {
    return std::to_string(static_cast<std::int64_t>(std::ceil(e->as_double())));
  }
  return "0";
}
// The node a record names as its holder (its string field `node`: session records in cluster
// mode), else "" — what herald:recnode / herald:held index (docs/cluster.md).
std::string owner_of(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return {};
  const boost::json::value* n = v.as_object().if_contains("node");
  return n != nullptr && n->is_string() ? std::string(n->as_string()) : std::string();
}
std::string subject_key(std::string_view tenant, std::string_view subject) {
  std::string k(tenant);
  k += '\0';
  k += subject;
  return k;
}

// ---- the event encoding ----

void put_field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out.append(v);
}

// Reads "<integer>:" at `pos`; advances past the colon.
bool get_int(std::string_view s, std::size_t& pos, std::int64_t& v) {
  const char* b = s.data() + pos;
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p == b || p == e || *p != ':') return false;
  pos = static_cast<std::size_t>(p - s.data()) + 1;
  return true;
}

bool get_field(std::string_view s, std::size_t& pos, std::string& out) {
  std::int64_t n = 0;
  if (!get_int(s, pos, n) || n < 0 || static_cast<std::uint64_t>(n) > s.size() - pos) return false;
  out.assign(s.substr(pos, static_cast<std::size_t>(n)));
  pos += static_cast<std::size_t>(n);
  return true;
}

// ---- replies ----

error redis_error(std::string_view what, const std::string& why, errc code = errc::unavailable) {
  return {code, fmt::format("redis store: {}: {}", what, why)};
}

// The class of an error reply: Redis refusing for now (out of memory under noeviction, busy
// with a script, loading its data, a replica or a failed disk save) is unavailable (503);
// anything else is internal (Redis answered, but not what we asked for).
errc reply_error_code(std::string_view err) {
  for (std::string_view p : {"OOM", "BUSY", "LOADING", "MASTERDOWN", "READONLY", "NOREPLICAS",
                             "TRYAGAIN", "CLUSTERDOWN", "MISCONF"}) {
    if (err.substr(0, p.size()) == p) return errc::unavailable;
  }
  return errc::internal;
}

result<redis::reply> checked(result<redis::reply> r, std::string_view what) {
  if (!r) return redis_error(what, r.err().message, r.err().code);
  if (r->is_error()) return redis_error(what, r->str, reply_error_code(r->str));
  return r;
}

// A counter a bulk-string reply holds (herald:seq, herald:pruned): 0 when nil or not a number.
std::int64_t int_of(const redis::reply& v) {
  std::int64_t x = 0;
  if (v.is_string()) std::from_chars(v.str.data(), v.str.data() + v.str.size(), x);
  return x;
}

// Parses "<n>-0" (a log entry ID) into its offset.
std::int64_t offset_of_id(std::string_view id) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), v);
  return ec == std::errc() ? v : 0;
}

// The events of an XRANGE / XREVRANGE reply, in reply order (undecodable entries skipped).
std::vector<event_ptr> stream_events(const redis::reply& r) {
  std::vector<event_ptr> out;
  if (!r.is_array()) return out;
  out.reserve(r.elements.size());
  for (const redis::reply& entry : r.elements) {
    if (entry.elements.size() != 2 || !entry.elements[1].is_array()) continue;
    const auto& fields = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      if (fields[i].str != "e") continue;
      if (event_ptr ev = decode_event(fields[i + 1].str)) out.push_back(std::move(ev));
    }
  }
  return out;
}

// A record that travelled with its batch (redis_store::set_record_listener), handed to the
// record listener right before the event at `offset` (its batch's first).
struct carried_record {
  std::int64_t offset = 0;
  std::string kind, key, json;
};

std::string encode_carried(std::string_view kind, std::string_view key, std::string_view json) {
  std::string out;
  put_field(out, kind);
  put_field(out, key);
  put_field(out, json);
  return out;
}

// Reads kind, key and json at `pos` (advanced past them).
bool get_carried(std::string_view s, std::size_t& pos, carried_record& out) {
  return get_field(s, pos, out.kind) && get_field(s, pos, out.key) && get_field(s, pos, out.json);
}

// One entry of herald:runs: `len` consecutive events of `tenant` from offset `first`, all
// appended at `time_ms` (one herald_append call gives all its events one time).
struct log_run {
  std::int64_t first = 0, len = 1, time_ms = 0;
  std::string tenant;
  std::int64_t last() const { return first + len - 1; }
};

// The runs of an XRANGE / XREVRANGE reply of herald:runs (fields t, n, m), in reply order.
std::vector<log_run> parse_runs(const redis::reply& r) {
  std::vector<log_run> out;
  if (!r.is_array()) return out;
  for (const redis::reply& entry : r.elements) {
    if (entry.elements.size() != 2 || !entry.elements[1].is_array()) continue;
    log_run run;
    run.first = offset_of_id(entry.elements[0].str);
    const auto& fields = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      const std::string& v = fields[i + 1].str;
      if (fields[i].str == "t") {
        run.tenant = v;
        continue;
      }
      std::int64_t x = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || p != v.data() + v.size()) continue;
      if (fields[i].str == "n" && x >= 1) run.len = x;
      if (fields[i].str == "m") run.time_ms = x;
    }
    out.push_back(std::move(run));
  }
  return out;
}

// The travelling records of an XRANGE reply (field `r` of an entry), in reply order.
std::vector<carried_record> stream_records(const redis::reply& r) {
  std::vector<carried_record> out;
  if (!r.is_array()) return out;
  for (const redis::reply& entry : r.elements) {
    if (entry.elements.size() != 2 || !entry.elements[1].is_array()) continue;
    const auto& fields = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      if (fields[i].str != "r") continue;
      carried_record c;
      std::size_t pos = 0;
      if (get_carried(fields[i + 1].str, pos, c) && pos == fields[i + 1].str.size()) {
        c.offset = offset_of_id(entry.elements[0].str);
        out.push_back(std::move(c));
      }
    }
  }
  return out;
}

}  // namespace

std::string encode_event(const event& e) {
  std::string out;
  out.reserve(64 + e.id.size() + e.topic.size() + e.type.size() + e.tenant.size() + e.app.size() +
              e.subject.size() + e.data.size());
  out += std::to_string(e.offset);
  out += ':';
  out += std::to_string(e.time_ms);
  out += ':';
  for (const std::string* f : {&e.id, &e.topic, &e.type, &e.tenant, &e.app, &e.subject, &e.data}) {
    put_field(out, *f);
  }
  out += e.retain ? '1' : '0';
  return out;
}

event_ptr decode_event(std::string_view s) {
  auto ev = std::make_shared<event>();
  std::size_t pos = 0;
  if (!get_int(s, pos, ev->offset) || !get_int(s, pos, ev->time_ms)) return nullptr;
  for (std::string* f :
       {&ev->id, &ev->topic, &ev->type, &ev->tenant, &ev->app, &ev->subject, &ev->data}) {
    if (!get_field(s, pos, *f)) return nullptr;
  }
  if (pos + 1 != s.size() || (s[pos] != '0' && s[pos] != '1')) return nullptr;
  ev->retain = s[pos] == '1';
  return ev;
}

// One queued append.
struct append_job {
  std::vector<event_draft> drafts;
  append_record with;
  std::vector<std::shared_ptr<event>> built;  // the writer fills offsets and times in
  std::vector<event_ptr> events;
  status st;
  bool done = false;  // guarded by impl::mu
};

struct redis_store::impl {
  redis_store_options opts;
  redis::io_thread io;
  std::unique_ptr<redis::connection> conn;
  // Paged reads (log, states, hashes) have their own connection: a page past max_reply_bytes
  // costs its connection, and must not fail the appends in flight on `conn`.
  std::unique_ptr<redis::connection> rconn;
  std::unique_ptr<redis::subscriber> sub;
  redis::server_config server;

  mutable std::mutex mu;
  std::condition_variable work_cv;  // the writer: jobs queued, or closing
  std::condition_variable feed_cv;  // the feed: messages, a resync or a catch-up wanted
  std::condition_variable done_cv;  // callers: a job done, or the feed moved
  std::deque<std::shared_ptr<append_job>> queue;
  bool closed = false, stopping = false;
  // What the feed thread works through, in order: what the subscriber handed over (its
  // connection's order: on_message, on_sub_state) and the follow()/unfollow() asked for.
  struct feed_item {
    enum class kind { message, barrier, reconnected, remark, follow, unfollow };
    kind what = kind::message;
    std::string channel, payload;  // payload: a message's, a barrier's token, a follow's tenant
  };
  std::deque<feed_item> items;
  std::size_t queued_messages = 0;  // the items that are messages (bounded: max_feed_queue)
  bool sub_was_down = false, drop_messages = false;
  std::int64_t catch_up_to = 0;
  // What the feed follows (changed on the feed thread only): a tenant's channel
  // herald:ev:<tenant>, or "" for every tenant's (the pattern herald:ev:*). Subscribing:
  // waiting for the barrier sent after its (P)SUBSCRIBE; marking: waiting for the mark asked
  // for then (herald_mark on mark_channel); delivering: its events after `delivered` reach the
  // listener. A fresh one has never delivered: its first mark says from which offset it does
  // (the follow listener). While any one that is not fresh does not deliver (after a
  // reconnection, a dropped queue), nothing is delivered live: the next mark reads the logs
  // for all of them from `delivered`.
  enum class follow_state { subscribing, marking, delivering };
  struct follow_entry {
    follow_state st = follow_state::subscribing;
    bool fresh = true;
    std::uint64_t barrier = 0;  // the barrier sent after its subscription
    std::uint64_t mark = 0;
  };
  std::map<std::string, follow_entry, std::less<>> follows;
  std::string mark_channel;    // herald:mk:<random>: this store's marks
  std::uint64_t marks = 0;     // the last mark asked for
  std::uint64_t barriers = 0;  // the last barrier sent
  redis_store::follow_listener on_follow;
  std::int64_t delivered = 0;  // the listener has seen every offset up to it
  append_listener listener;
  redis_store::record_listener record_listener;
  std::set<std::string, std::less<>> carried_kinds;  // records of these kinds travel
  std::uint64_t retries = 0, catchups = 0;

  // The writer's view of herald:seq / herald:time (writer thread only).
  std::int64_t known_seq = 0, known_time = 0;

  std::thread writer, feed;

  explicit impl(redis_store_options o) : opts(std::move(o)) {}
  // The connections go first: their handlers use the members below them (a failed open()).
  ~impl() {
    sub.reset();
    rconn.reset();
    conn.reset();
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  result<redis::reply> call(const redis::command& c, std::string_view what) {
    return checked(conn->call(c), what);
  }

  // A paged read: `make(count)` builds the command for `count` items. A reply past
  // redis.max_reply_bytes (large events) costs the connection: wait for it again and retry
  // with a tenth of the count, down to one. `count` is left at what worked.
  result<redis::reply> paged(const std::function<redis::command(std::int64_t)>& make,
                             std::string_view what, std::size_t& count) {
    for (;;) {
      const std::uint64_t before = rconn->connects();
      auto r = checked(rconn->call(make(static_cast<std::int64_t>(count))), what);
      if (r || r.err().code != errc::too_large || count <= 1) return r;
      count = std::max<std::size_t>(1, count / 10);
      await_reconnect(before);
    }
  }

  // The read link is dropped after a reply past max_reply_bytes: waits (bounded by the connect
  // timeout) for its replacement's handshake, `before` being rconn->connects() before the call.
  void await_reconnect(std::uint64_t before) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.conn.connect_timeout_ms);
    while (rconn->connects() == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    (void)rconn->wait_connected(opts.conn.connect_timeout_ms);
  }

  // `cmds` pipelined on the read connection (all written at once); the replies in order.
  std::vector<result<redis::reply>> pipelined(const std::vector<redis::command>& cmds,
                                              std::string_view what) {
    std::vector<std::future<result<redis::reply>>> replies;
    replies.reserve(cmds.size());
    for (const redis::command& c : cmds) {
      auto p = std::make_shared<std::promise<result<redis::reply>>>();
      replies.push_back(p->get_future());
      rconn->exec(c, [p](result<redis::reply> r) { p->set_value(std::move(r)); });
    }
    std::vector<result<redis::reply>> out;
    out.reserve(cmds.size());
    for (auto& f : replies) out.push_back(checked(f.get(), what));
    return out;
  }

  // XRANGE of the stream `key` from offset `from` to `to` ("+": the end), at most `count`
  // entries (paged).
  result<redis::reply> xrange(const std::string& key, std::int64_t from, const std::string& to,
                              std::size_t& count) {
    return paged(
        [&](std::int64_t n) {
          redis::command c{"XRANGE", key};
          c.arg(std::to_string(from) + "-0").arg(to).arg("COUNT").arg(n);
          return c;
        },
        "XRANGE", count);
  }

  // HMGET herald:state of `fields`, in pages; the values in the fields' order.
  result<std::vector<redis::reply>> state_values(const std::vector<std::string>& fields) {
    std::vector<redis::reply> out;
    out.reserve(fields.size());
    std::size_t n = opts.page;
    for (std::size_t i = 0; i < fields.size();) {
      n = std::min(n, fields.size() - i);
      auto r = paged(
          [&](std::int64_t k) {
            redis::command h{"HMGET", k_state};
            for (std::size_t j = i; j < i + static_cast<std::size_t>(k); ++j) h.arg(fields[j]);
            return h;
          },
          "HMGET", n);
      if (!r) return r.err();
      for (auto& v : r->elements) out.push_back(std::move(v));
      i += n;
    }
    return out;
  }

  // FCALL `c` on the command connection; a Redis restarted empty gets the library again.
  result<redis::reply> fcall(const redis::command& c, std::string_view what) {
    return checked(redis::call_function(*conn, c, redis::store_function_library), what);
  }

  status load_functions() {
    auto r = call(redis::command{"FUNCTION", "LOAD", "REPLACE", redis::store_function_library},
                  "FUNCTION LOAD");
    return r ? status{} : status(r.err());
  }

  // ---- the writer ----

  void writer_loop() {
    for (;;) {
      std::vector<std::shared_ptr<append_job>> jobs;
      {
        std::unique_lock lk(mu);
        work_cv.wait(lk, [&] { return !queue.empty() || stopping; });
        if (queue.empty()) return;
        // Bounded in events and bytes (one call must fit redis.max_send_buffer_bytes); a job
        // past either bound still goes, alone.
        std::size_t events = 0, bytes = 0;
        while (!queue.empty()) {
          const append_job& next = *queue.front();
          std::size_t b = 0;
          for (const event_draft& d : next.drafts) b += d.data.size() + d.topic.size() + 256;
          if (!jobs.empty() && (events + next.drafts.size() > opts.max_group_events ||
                                bytes + b > opts.max_group_bytes)) {
            break;
          }
          events += next.drafts.size();
          bytes += b;
          jobs.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      commit(jobs);
      std::lock_guard lk(mu);
      for (auto& j : jobs) j->done = true;
      done_cv.notify_all();
    }
  }

  // Builds and sends one herald_append for `jobs`, rebuilding on a moved herald:seq.
  void commit(std::vector<std::shared_ptr<append_job>>& jobs) {
    // Ids are chosen once; offsets and times are rebuilt on each attempt.
    for (auto& j : jobs) {
      j->built.reserve(j->drafts.size());
      for (event_draft& d : j->drafts)
        j->built.push_back(store_detail::event_from_draft(std::move(d)));
      j->events.assign(j->built.begin(), j->built.end());
    }
    const std::int64_t deadline =
        now_ms() + std::max<std::int64_t>(opts.conn.command_timeout_ms, 1);
    bool reloaded = false;
    std::set<std::string, std::less<>> carried;
    {
      std::lock_guard lk(mu);
      carried = carried_kinds;
    }
    for (;;) {
      {
        std::lock_guard lk(mu);  // never propose offsets the feed has already handed out
        known_seq = std::max(known_seq, delivered);
      }
      const std::int64_t now = now_ms();
      std::int64_t off = known_seq, t = known_time;
      redis::command c{"FCALL", "herald_append"};
      std::size_t n_records = 0;
      for (auto& j : jobs)
        if (j->with.json) ++n_records;
      c.arg(static_cast<std::int64_t>(8 + n_records));
      for (const char* k : {k_seq, k_time, k_state, k_subj, k_ev, k_state_off, k_tenants, k_runs})
        c.arg(k);
      for (auto& j : jobs)
        if (j->with.json) c.arg(rec_key(j->with.kind));
      // The events' offsets and times first (records are built from them).
      std::size_t n = 0;
      for (auto& j : jobs) {
        for (auto& ev : j->built) {
          ev->offset = ++off;
          stamp_offset(ev->id, off);
          t = std::max(now, t);
          ev->time_ms = t;
          ++n;
        }
      }
      c.arg(known_seq).arg(t).arg(static_cast<std::int64_t>(n));
      // The records' JSON, built from the events' offsets and times.
      std::vector<std::string> docs(jobs.size());
      for (std::size_t k = 0; k < jobs.size(); ++k)
        if (jobs[k]->with.json) docs[k] = jobs[k]->with.json(jobs[k]->events);
      for (std::size_t k = 0; k < jobs.size(); ++k) {
        const append_job& j = *jobs[k];
        for (std::size_t i = 0; i < j.events.size(); ++i) {
          const event& e = *j.events[i];
          c.arg(encode_event(e));
          c.arg(e.subject.empty() ? std::string() : subject_key(e.tenant, e.subject));
          c.arg(e.retain ? "1" : "0");
          c.arg(i + 1 == j.events.size() ? "1" : "0");
          c.arg(e.tenant);
          c.arg(i == 0 && j.with.json && carried.contains(j.with.kind)
                    ? encode_carried(j.with.kind, j.with.key, docs[k])
                    : std::string());
        }
      }
      for (std::size_t k = 0; k < jobs.size(); ++k) {
        if (!jobs[k]->with.json) continue;
        c.arg(jobs[k]->with.key).arg(docs[k]).arg(expiry_of(docs[k]));
      }
      auto r = conn->call(c);
      if (!r) return fail(jobs, redis_error("append", r.err().message, r.err().code));
      if (r->is_function_missing() && !reloaded) {
        reloaded = true;
        if (status st = load_functions(); !st) return fail(jobs, st.err());
        continue;
      }
      if (r->is_error()) {
        return fail(jobs, redis_error("append", r->str, reply_error_code(r->str)));
      }
      if (!r->is_array() || r->elements.size() != 3) {
        return fail(jobs,
                    redis_error("append", "unexpected reply " + r->to_string(), errc::internal));
      }
      known_seq = r->elements[1].integer;
      known_time = r->elements[2].integer;
      if (r->elements[0].integer == 1) return;
      {
        std::lock_guard lk(mu);
        ++retries;
      }
      if (now_ms() > deadline) {
        return fail(jobs, {errc::unavailable,
                           "redis store: append: herald:seq kept moving (other nodes' appends) "
                           "for longer than the command timeout"});
      }
    }
  }

  void fail(std::vector<std::shared_ptr<append_job>>& jobs, const error& e) {
    for (auto& j : jobs) {
      j->st = e;
      j->events.clear();
      j->built.clear();
    }
  }

  // ---- the feed ----

  void on_message(redis::message&& m) {
    std::lock_guard lk(mu);
    if (m.barrier) {
      items.push_back({feed_item::kind::barrier, {}, std::move(m.payload)});
    } else if (drop_messages) {
      return;
    } else if (queued_messages >= opts.max_feed_queue) {
      // The logs have them: drop the queued messages (not the barriers) and mark again.
      std::erase_if(items, [](const feed_item& i) { return i.what == feed_item::kind::message; });
      queued_messages = 0;
      items.push_back({feed_item::kind::remark, {}, {}});
    } else {
      items.push_back({feed_item::kind::message, std::move(m.channel), std::move(m.payload)});
      ++queued_messages;
    }
    feed_cv.notify_one();
  }

  void on_sub_state(bool up, const std::string&) {
    std::lock_guard lk(mu);
    if (!up) {
      sub_was_down = true;
      return;
    }
    if (sub_was_down) {
      // What was published while we were away is only in the logs: every followed channel
      // (subscribed again already) waits for a barrier and a mark.
      items.push_back({feed_item::kind::reconnected, {}, {}});
      sub_was_down = false;
      feed_cv.notify_one();
    }
  }

  static std::string ev_channel(std::string_view tenant) {
    return std::string(k_ev) + ":" + std::string(tenant);
  }
  static constexpr std::string_view ev_pattern = "herald:ev:*";

  // The tenant a channel is of; nullopt for another (the mark channel).
  static std::optional<std::string> tenant_of(const std::string& channel) {
    const std::string prefix = std::string(k_ev) + ":";
    if (channel.size() > prefix.size() && channel.compare(0, prefix.size(), prefix) == 0)
      return channel.substr(prefix.size());
    return std::nullopt;
  }

  // Whether a message of `tenant` is delivered now (mu held): its key or "" delivers, and no
  // key that delivered before is waiting for a mark (its events must come first, from the logs).
  bool live_locked(std::string_view tenant) const {
    bool covered = false;
    for (const auto& [k, f] : follows) {
      if (f.st == follow_state::delivering) {
        if (k.empty() || k == tenant) covered = true;
      } else if (!f.fresh) {
        return false;
      }
    }
    return covered;
  }

  // Whether `tenant` delivers (mu held): an append of it waits for the feed; another one's
  // returns at its commit (fresh: its events up to its first mark never reach the listener).
  bool delivers_locked(std::string_view tenant) const {
    for (std::string_view k : {std::string_view(), tenant}) {
      auto it = follows.find(k);
      if (it != follows.end() && !it->second.fresh) return true;
    }
    return false;
  }

  // What a catch-up reads: every followed tenant but the fresh ones (their first mark says from
  // where they deliver). nullopt: every tenant.
  std::optional<std::set<std::string, std::less<>>> catch_up_tenants() {
    std::lock_guard lk(mu);
    if (auto all = follows.find(std::string_view()); all != follows.end() && !all->second.fresh)
      return std::nullopt;
    std::set<std::string, std::less<>> out;
    for (const auto& [k, f] : follows)
      if (!f.fresh && !k.empty()) out.insert(k);
    return out;
  }

  // A barrier after the (P)SUBSCRIBE of every key in `keys` (or of every key: a reconnection).
  void send_barrier(const std::vector<std::string>* keys) {
    std::uint64_t b = 0;
    {
      std::lock_guard lk(mu);
      b = ++barriers;
      for (auto& [k, f] : follows) {
        if (keys != nullptr && std::find(keys->begin(), keys->end(), k) == keys->end()) continue;
        f.st = follow_state::subscribing;
        f.barrier = b;
      }
    }
    sub->barrier(std::to_string(b));
  }

  // follow(): subscribe, then a barrier. unfollow(): its messages stop (in flight: dropped).
  void on_follow_item(const feed_item& it) {
    const std::string& t = it.payload;
    bool add = false;
    {
      std::lock_guard lk(mu);
      if (it.what == feed_item::kind::follow) {
        add = follows.emplace(t, follow_entry{}).second;
      } else if (follows.erase(t) == 0) {
        return;
      }
    }
    if (it.what == feed_item::kind::unfollow) {
      if (t.empty())
        sub->punsubscribe({std::string(ev_pattern)});
      else
        sub->unsubscribe({ev_channel(t)});
      return;
    }
    if (!add) return;
    if (t.empty())
      sub->psubscribe({std::string(ev_pattern)});
    else
      sub->subscribe({ev_channel(t)});
    const std::vector<std::string> keys{t};
    send_barrier(&keys);
  }

  // A barrier came back: Redis runs every subscription sent before it. Each key waiting for it
  // (or an earlier one) is marked.
  void on_barrier(std::string_view token) {
    std::uint64_t b = 0;
    if (std::from_chars(token.data(), token.data() + token.size(), b).ptr !=
        token.data() + token.size())
      return;  // not one of ours
    std::vector<std::string> keys;
    {
      std::lock_guard lk(mu);
      for (const auto& [k, f] : follows)
        if (f.st == follow_state::subscribing && f.barrier <= b) keys.push_back(k);
    }
    if (!keys.empty()) request_mark(keys);
  }

  // Asks Redis for a mark covering `keys` (herald_mark publishes herald:seq on mark_channel,
  // after every batch message published up to it). On failure, marks again later.
  void request_mark(const std::vector<std::string>& keys) {
    std::uint64_t m = 0;
    {
      std::lock_guard lk(mu);
      m = ++marks;
      for (const std::string& k : keys) {
        auto it = follows.find(k);
        if (it == follows.end()) continue;
        it->second.st = follow_state::marking;
        it->second.mark = m;
      }
    }
    redis::command c{"FCALL", "herald_mark", "1", k_seq, mark_channel};
    c.arg(static_cast<std::int64_t>(m));
    if (fcall(c, "FCALL herald_mark")) return;
    std::unique_lock lk(mu);
    feed_cv.wait_for(lk, std::chrono::milliseconds(opts.feed_wait_ms), [&] { return stopping; });
    items.push_front({feed_item::kind::remark, {}, {}});
  }

  // The messages queued were dropped (or one was unreadable): every key subscribed is marked
  // again, nothing delivering live until then; the catch-up at the mark reads the logs.
  void remark() {
    std::vector<std::string> keys;
    {
      std::lock_guard lk(mu);
      for (const auto& [k, f] : follows)
        if (f.st != follow_state::subscribing) keys.push_back(k);
    }
    if (!keys.empty()) request_mark(keys);
  }

  // A mark "<number>:<seq>" on mark_channel: every message published up to seq is behind. The
  // logs up to seq are read for every key followed before (the ones not delivering had their
  // messages dropped, or never sent; live ones' reads find nothing new); each key marking with
  // that number or an earlier one then delivers, a fresh one from what was delivered by then
  // (the follow listener hears it first): its events up to there are history to this node.
  void on_mark(std::string_view payload) {
    const auto colon = payload.find(':');
    std::uint64_t m = 0;
    std::int64_t seq = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(payload.data(), payload.data() + colon, m).ptr != payload.data() + colon ||
        std::from_chars(payload.data() + colon + 1, payload.data() + payload.size(), seq).ptr !=
            payload.data() + payload.size()) {
      std::lock_guard lk(mu);  // not one of ours: whatever waits for one is marked again
      items.push_back({feed_item::kind::remark, {}, {}});
      return;
    }
    const auto before = catch_up_tenants();  // the fresh ones' events up to here: history
    std::vector<std::string> fresh;
    {
      std::lock_guard lk(mu);
      for (auto& [k, f] : follows) {
        if (f.st != follow_state::marking || f.mark > m) continue;
        f.st = follow_state::delivering;
        if (f.fresh) fresh.push_back(k);
        f.fresh = false;
      }
    }
    if (!catch_up(seq, before)) retry_later(seq);
    std::int64_t from = 0;
    redis_store::follow_listener l;
    {
      std::lock_guard lk(mu);
      from = delivered;
      l = on_follow;
    }
    if (l)
      for (const std::string& t : fresh) l(t, from);
  }

  // Hands `batch` to the listener; each of `recs` (offset order) goes to the record listener
  // right before the event at its offset (the batch is split there).
  void deliver(std::vector<event_ptr> batch, const std::vector<carried_record>& recs = {}) {
    if (batch.empty()) return;
    const std::int64_t last = batch.back()->offset;
    append_listener l;
    redis_store::record_listener rl;
    {
      std::lock_guard lk(mu);
      l = listener;
      rl = record_listener;
    }
    if (rl && !recs.empty()) {
      std::vector<event_ptr> part;
      std::size_t r = 0;
      for (event_ptr& e : batch) {
        for (; r < recs.size() && recs[r].offset <= e->offset; ++r) {
          if (recs[r].offset != e->offset) continue;  // its event is not in this batch
          if (l && !part.empty()) l(std::exchange(part, {}));
          rl(recs[r].kind, recs[r].key, recs[r].json, recs[r].offset);
        }
        part.push_back(std::move(e));
      }
      if (l && !part.empty()) l(std::move(part));
    } else if (l) {
      l(std::move(batch));
    }
    std::lock_guard lk(mu);
    delivered = std::max(delivered, last);
    done_cv.notify_all();
  }

  void mark_delivered(std::int64_t upto) {
    std::lock_guard lk(mu);
    delivered = std::max(delivered, upto);
    done_cv.notify_all();
  }

  // Reads the log after `delivered` up to `upto` (0: to its end) and delivers it page by page
  // (herald:runs, then each run's events from its tenant's log), the followed tenants' only
  // (catch_up_tenants). Offsets missing in the range are holes (pruned, lost by Redis, or not
  // followed): skipped. False when Redis could not be read (the caller retries later).
  bool catch_up(std::int64_t upto) { return catch_up(upto, catch_up_tenants()); }
  // Only `tenants`' runs (nullopt: every tenant's).
  bool catch_up(std::int64_t upto,
                const std::optional<std::set<std::string, std::less<>>>& tenants) {
    {
      std::lock_guard lk(mu);
      ++catchups;
    }
    if (tenants && tenants->empty()) {
      mark_delivered(upto);  // nothing followed needs the logs
      return true;
    }
    std::function<bool(std::string_view)> keep;
    if (tenants) keep = [&t = *tenants](std::string_view n) { return t.count(n) != 0; };
    for (;;) {
      std::int64_t from = 0;
      {
        std::lock_guard lk(mu);
        from = delivered + 1;
      }
      if (upto != 0 && from > upto) return true;
      auto page = runs_page(from, upto, opts.page, keep);
      if (!page) return false;
      deliver(std::move(page->events), page->recs);
      if (page->next > from) mark_delivered(page->next - 1);  // the holes in it too
      if (!page->more) {
        if (upto != 0) mark_delivered(upto);
        return true;
      }
    }
  }

  void feed_loop() {
    for (;;) {
      feed_item it;
      std::int64_t want = 0;
      {
        std::unique_lock lk(mu);
        feed_cv.wait(lk, [&] { return stopping || catch_up_to > delivered || !items.empty(); });
        if (stopping) return;
        if (catch_up_to > delivered) {
          want = catch_up_to;
        } else {
          it = std::move(items.front());
          items.pop_front();
          if (it.what == feed_item::kind::message) --queued_messages;
        }
      }
      if (want != 0) {
        if (!catch_up(want)) retry_later(want);
        continue;
      }
      switch (it.what) {
        case feed_item::kind::message:
          if (it.channel == mark_channel)
            on_mark(it.payload);
          else
            handle_message(it.channel, it.payload);
          break;
        case feed_item::kind::barrier:
          on_barrier(it.payload);
          break;
        case feed_item::kind::reconnected:
          send_barrier(nullptr);
          break;
        case feed_item::kind::remark:
          remark();
          break;
        case feed_item::kind::follow:
        case feed_item::kind::unfollow:
          on_follow_item(it);
          break;
      }
    }
  }

  // Redis could not be read: the catch-up up to `want` runs again after feed_wait_ms, before
  // anything queued.
  void retry_later(std::int64_t want) {
    std::unique_lock lk(mu);
    feed_cv.wait_for(lk, std::chrono::milliseconds(opts.feed_wait_ms), [&] { return stopping; });
    catch_up_to = std::max(catch_up_to, want);
  }

  void handle_message(const std::string& channel, std::string_view payload) {
    const auto tenant = tenant_of(channel);
    bool every = false;
    {
      std::lock_guard lk(mu);
      if (!tenant || !live_locked(*tenant)) return;  // not (yet) delivering: dropped
      auto all = follows.find(std::string_view());
      every = all != follows.end() && all->second.st == follow_state::delivering;
    }
    std::vector<event_ptr> batch;
    std::vector<carried_record> recs;
    std::optional<carried_record> pending;  // a record: the next event is its batch's first
    std::size_t pos = 0;
    while (pos < payload.size()) {
      if (payload[pos] == 'R') {
        pending.emplace();
        ++pos;
        if (!get_carried(payload, pos, *pending)) {
          batch.clear();
          break;
        }
        continue;
      }
      std::int64_t n = 0;
      if (!get_int(payload, pos, n) || n < 0 ||
          static_cast<std::uint64_t>(n) > payload.size() - pos) {
        batch.clear();
        break;
      }
      event_ptr ev = decode_event(payload.substr(pos, static_cast<std::size_t>(n)));
      pos += static_cast<std::size_t>(n);
      if (!ev || ev->tenant != *tenant) {
        batch.clear();
        break;
      }
      if (pending) {
        pending->offset = ev->offset;
        recs.push_back(std::move(*pending));
        pending.reset();
      }
      batch.push_back(std::move(ev));
    }
    if (batch.empty()) {  // unreadable: the logs have the truth
      std::lock_guard lk(mu);
      items.push_front({feed_item::kind::remark, {}, {}});
      return;
    }
    std::int64_t last = 0;
    {
      std::lock_guard lk(mu);
      last = delivered;
    }
    if (batch.back()->offset <= last) return;  // seen already
    // Following every tenant, the offsets are dense: a message starting past last + 1 means
    // some were lost, and they were published before this one — the logs have them.
    if (every && batch.front()->offset > last + 1) {
      if (!catch_up(batch.front()->offset - 1)) {
        retry_later(batch.back()->offset);  // this message is in the log too
        return;
      }
      std::lock_guard lk(mu);
      last = delivered;
    }
    std::erase_if(batch, [last](const event_ptr& e) { return e->offset <= last; });
    deliver(std::move(batch), recs);
  }

  // Waits until the feed has delivered the batch (its last offset `off`); after feed_wait_ms
  // without it, asks the feed to read the log. Bounded: past the command timeout the (committed)
  // events are returned. Only for a batch whose tenants the feed follows: another's returns at its
  // commit (no listener of this node will see it).
  void wait_delivered(const std::vector<event_ptr>& batch) {
    std::unique_lock lk(mu);
    std::int64_t off = 0;  // the batch's last event of a tenant the feed delivers
    for (const event_ptr& e : batch)
      if (delivers_locked(e->tenant)) off = e->offset;
    if (off == 0) return;
    const auto step = std::chrono::milliseconds(std::max<std::int64_t>(opts.feed_wait_ms, 1));
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(opts.conn.command_timeout_ms) + step;
    while (delivered < off && !stopping) {
      if (done_cv.wait_for(lk, step, [&] { return delivered >= off || stopping; })) break;
      if (std::chrono::steady_clock::now() > deadline) break;
      catch_up_to = std::max(catch_up_to, off);
      feed_cv.notify_one();
    }
  }

  // ---- reads ----

  // The first run starting at or after `off` (none: none).
  result<std::optional<log_run>> run_at_or_after(std::int64_t off) {
    redis::command c{"XRANGE", k_runs};
    c.arg(std::to_string(off) + "-0").arg("+").arg("COUNT").arg(1);
    auto r = call(c, "XRANGE");
    if (!r) return r.err();
    auto runs = parse_runs(*r);
    if (runs.empty()) return std::optional<log_run>{};
    return std::optional<log_run>{std::move(runs.front())};
  }

  // The newest run (none: nothing appended, or everything pruned).
  result<std::optional<log_run>> last_run() {
    auto r = call(redis::command{"XREVRANGE", k_runs, "+", "-", "COUNT", "1"}, "XREVRANGE");
    if (!r) return r.err();
    auto runs = parse_runs(*r);
    if (runs.empty()) return std::optional<log_run>{};
    return std::optional<log_run>{std::move(runs.front())};
  }

  // The first offset whose event's time is at or after t_ms (none: none). Time never decreases
  // along offsets and every event of a run has the run's time, so a bisection over herald:runs,
  // each step one XRANGE COUNT 1.
  result<std::optional<std::int64_t>> first_offset_at(std::int64_t t_ms) {
    auto last = last_run();
    if (!last) return last.err();
    if (!*last || (*last)->time_ms < t_ms) return std::optional<std::int64_t>{};
    std::int64_t lo = 0, hi = (*last)->first, found = (*last)->first;
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      auto r = run_at_or_after(mid);
      if (!r) return r.err();
      if (!*r) break;  // pruned meanwhile
      if ((*r)->time_ms >= t_ms) {
        hi = mid;
        found = (*r)->first;
      } else {
        lo = (*r)->first + 1;
      }
    }
    return std::optional<std::int64_t>{found};
  }

  // The first offset herald:runs covers; none when it is empty.
  result<std::optional<std::int64_t>> runs_floor() {
    auto r = call(redis::command{"XRANGE", k_runs, "-", "+", "COUNT", "1"}, "XRANGE");
    if (!r) return r.err();
    auto runs = parse_runs(*r);
    if (runs.empty()) return std::optional<std::int64_t>{};
    return std::optional<std::int64_t>{runs.front().first};
  }

  // Calls `each(event)` for the retained states whose event pruning took out of the logs,
  // offsets in [from, floor) (no_floor: every one), in offset order, until it returns false.
  // They live in herald:state, indexed by offset in `index`: herald:stateoff (every tenant's)
  // or herald:tstateoff:<tenant> (one tenant's). Paged by score, not by position: a state
  // replaced meanwhile moves to a higher score and shifts no page (one offset, one field).
  status states_below(std::int64_t from, std::int64_t floor,
                      const std::function<bool(event_ptr&)>& each,
                      const std::string& index = k_state_off) {
    const std::string hi = floor != no_floor ? "(" + std::to_string(floor) : std::string("+inf");
    std::string lo = std::to_string(from);
    for (;;) {
      redis::command z{"ZRANGEBYSCORE", index, lo, hi, "WITHSCORES", "LIMIT", "0"};
      z.arg(static_cast<std::int64_t>(opts.page));
      auto fields = call(z, "ZRANGEBYSCORE");
      if (!fields) return fields.err();
      if (fields->elements.size() < 2) return {};
      std::vector<std::string> names;
      for (std::size_t k = 0; k + 1 < fields->elements.size(); k += 2)
        names.push_back(fields->elements[k].str);
      lo = "(" + fields->elements.back().str;
      auto values = state_values(names);
      if (!values) return values.err();
      for (const auto& v : *values) {
        event_ptr ev = v.is_string() ? decode_event(v.str) : nullptr;
        // A state replaced meanwhile by a later event is that event's, in the log.
        if (!ev || ev->offset < from || ev->offset >= floor) continue;
        if (!each(ev)) return {};
      }
      if (names.size() < opts.page) return {};
    }
  }

  // What one step over herald:runs read: the events (offset order), the records travelling
  // with them, the offsets the runs name whose events the logs no longer hold (pruned, or lost
  // by Redis), and where the next step starts (more: there may be more before `to`).
  struct log_page {
    std::vector<event_ptr> events;
    std::vector<carried_record> recs;
    std::vector<std::int64_t> missing;
    std::int64_t next = 0;
    bool more = false;
  };

  // Up to `budget` offsets of the log from `from` to `to` (0: its end): the runs covering them
  // (XREVRANGE for the run holding `from`, one XRANGE page after it, pipelined), then each
  // run's events from its tenant's log (one XRANGE per run, pipelined; replies past
  // max_reply_bytes read again run by run in paged XRANGEs). With `keep`, only the runs of the
  // tenants it accepts are read (the feed of a node following some tenants); the others are
  // passed over, `next` past them too.
  result<log_page> runs_page(std::int64_t from, std::int64_t to, std::size_t budget,
                             const std::function<bool(std::string_view)>& keep = {}) {
    log_page out;
    out.next = from;
    const std::string id = std::to_string(from) + "-0";
    std::vector<redis::command> cmds;
    cmds.push_back(redis::command{"XREVRANGE", k_runs, id, "-", "COUNT", "1"});
    redis::command x{"XRANGE", k_runs, "(" + id, to != 0 ? std::to_string(to) + "-0" : "+"};
    x.arg("COUNT").arg(static_cast<std::int64_t>(budget));
    cmds.push_back(std::move(x));
    auto rr = pipelined(cmds, "XRANGE");
    for (auto& r : rr)
      if (!r) return r.err();
    std::vector<log_run> runs;
    for (log_run& r : parse_runs(*rr[0]))
      if (r.last() >= from) runs.push_back(std::move(r));
    const std::vector<log_run> after = parse_runs(*rr[1]);
    runs.insert(runs.end(), after.begin(), after.end());
    out.more = after.size() >= budget;
    // Clip to [from, to] and to the budget.
    std::vector<log_run> want;
    std::size_t taken = 0;
    std::int64_t passed = 0;  // the last offset of a run passed over (not kept)
    for (const log_run& r : runs) {
      log_run c = r;
      c.first = std::max(r.first, from);
      std::int64_t last = to != 0 ? std::min(r.last(), to) : r.last();
      if (c.first > last) continue;
      if (keep && !keep(r.tenant)) {
        passed = last;
        continue;
      }
      const auto room = static_cast<std::int64_t>(budget - taken);
      if (last - c.first + 1 >= room) {
        last = c.first + room - 1;
        out.more = true;
      }
      c.len = last - c.first + 1;
      taken += static_cast<std::size_t>(c.len);
      want.push_back(std::move(c));
      if (taken >= budget) break;
    }
    if (want.empty()) {
      if (passed != 0) {
        out.next = passed + 1;  // only other tenants' runs: go on after them
      } else {
        out.more = false;
      }
      return out;
    }
    out.next = std::max(want.back().last(), passed) + 1;
    std::vector<redis::command> reads;
    for (const log_run& r : want) {
      redis::command c{"XRANGE", log_key(r.tenant)};
      c.arg(std::to_string(r.first) + "-0").arg(std::to_string(r.last()) + "-0");
      reads.push_back(std::move(c));
    }
    const std::uint64_t before = rconn->connects();
    auto replies = pipelined(reads, "XRANGE");
    const bool too_large = std::any_of(replies.begin(), replies.end(), [](const auto& r) {
      return !r && r.err().code == errc::too_large;
    });
    std::vector<redis::reply> got;
    if (!too_large) {
      for (auto& r : replies) {
        if (!r) return r.err();
        got.push_back(std::move(*r));
      }
    } else {
      await_reconnect(before);
      std::size_t n = opts.page;
      for (const log_run& r : want) {
        for (std::int64_t f = r.first; f <= r.last();) {
          auto p = xrange(log_key(r.tenant), f, std::to_string(r.last()) + "-0", n);
          if (!p) return p.err();
          if (p->elements.empty()) break;
          f = offset_of_id(p->elements.back().elements.front().str) + 1;
          const bool last_page = p->elements.size() < n;
          got.push_back(std::move(*p));
          if (last_page) break;
        }
      }
    }
    for (const redis::reply& r : got) {
      for (event_ptr& e : stream_events(r)) out.events.push_back(std::move(e));
      for (carried_record& c : stream_records(r)) out.recs.push_back(std::move(c));
    }
    std::sort(out.events.begin(), out.events.end(),
              [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
    std::size_t k = 0;
    for (const log_run& r : want) {
      for (std::int64_t o = r.first; o <= r.last(); ++o) {
        while (k < out.events.size() && out.events[k]->offset < o) ++k;
        if (k == out.events.size() || out.events[k]->offset != o) out.missing.push_back(o);
      }
    }
    return out;
  }

  // The retained states whose events are at `offs` (ascending; offsets the logs no longer
  // hold): herald:stateoff over their span, then herald:state.
  result<std::vector<event_ptr>> states_at(const std::vector<std::int64_t>& offs) {
    std::vector<event_ptr> out;
    if (offs.empty()) return out;
    status st = states_below(offs.front(), offs.back() + 1, [&](event_ptr& e) {
      if (std::binary_search(offs.begin(), offs.end(), e->offset)) out.push_back(std::move(e));
      return true;
    });
    if (!st) return st.err();
    return out;
  }

  // The tenant-filtered read: every tenant's log from offset `from`, merged in offset order with
  // `below` (the tenants' retained states pruned out of their logs, offset order), handing
  // each event to `take` until it returns false. Each step reads herald:seq (S) and up to
  // `chunk` entries of each tenant's log from `from`, pipelined; it keeps the offsets up to the
  // lowest last offset of a tenant whose reply was full (beyond it that tenant may have more)
  // and up to S. The tenants' reads are separate commands: another node's append can land
  // between two of them, so what one tenant shows past S another may not — every entry up to S
  // was written before S was read (an append writes its entries and herald:seq at once), so
  // the offsets up to S are a snapshot; the next step goes on from there.
  status tenant_walk(const std::set<std::string>& tenants, std::int64_t from, std::size_t chunk,
                     std::deque<event_ptr> below, const std::function<bool(event_ptr&)>& take) {
    int stalls = 0;
    for (;;) {
      std::vector<redis::command> cmds;
      cmds.push_back(redis::command{"GET", k_seq});
      for (const std::string& t : tenants) {
        redis::command x{"XRANGE", log_key(t), std::to_string(from) + "-0", "+", "COUNT"};
        x.arg(static_cast<std::int64_t>(chunk));
        cmds.push_back(std::move(x));
      }
      const std::uint64_t before = rconn->connects();
      auto replies = pipelined(cmds, "XRANGE");
      std::vector<std::size_t> counts(replies.size(), chunk);  // what each reply was asked
      if (std::any_of(replies.begin(), replies.end(),
                      [](const auto& r) { return !r && r.err().code == errc::too_large; })) {
        // Large events: again one tenant at a time, each in a page that fits.
        await_reconnect(before);
        replies[0] = call(cmds[0], "GET");
        std::size_t i = 1;
        for (const std::string& t : tenants) {
          replies[i] = xrange(log_key(t), from, "+", counts[i]);
          ++i;
        }
      }
      if (!replies[0]) return replies[0].err();
      std::int64_t seq = 0;
      if (replies[0]->is_string()) {
        const std::string& v = replies[0]->str;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seq);
        if (ec != std::errc() || p != v.data() + v.size()) {
          return redis_error("read", "herald:seq is not an offset: " + v, errc::internal);
        }
      }
      std::vector<event_ptr> evs;
      std::int64_t bound = std::numeric_limits<std::int64_t>::max();
      for (std::size_t i = 1; i < replies.size(); ++i) {
        if (!replies[i]) return replies[i].err();
        auto got = stream_events(*replies[i]);
        if (replies[i]->elements.size() >= counts[i] && !got.empty()) {
          bound = std::min(bound, got.back()->offset);
        }
        for (event_ptr& e : got) evs.push_back(std::move(e));
      }
      // Past S: appended while the tenants were read, not a snapshot — the next step's.
      for (const event_ptr& e : evs) {
        if (e->offset > seq) bound = std::min(bound, seq);
      }
      std::erase_if(evs, [bound](const event_ptr& e) { return e->offset > bound; });
      for (; !below.empty() && below.front()->offset <= bound; below.pop_front()) {
        evs.push_back(std::move(below.front()));
      }
      std::sort(evs.begin(), evs.end(),
                [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
      for (event_ptr& e : evs) {
        if (!take(e)) return {};
      }
      if (bound == std::numeric_limits<std::int64_t>::max()) return {};
      // Entries past herald:seq step after step: not a race but a store out of order.
      stalls = bound + 1 > from ? 0 : stalls + 1;
      if (stalls > 1000) {
        return redis_error("read", fmt::format("log entries past herald:seq ({}) stay", seq),
                           errc::internal);
      }
      from = std::max(from, bound + 1);
    }
  }

  // One SSCAN page of the set `key` from `cursor` (left at the next one; "0": done).
  result<std::vector<std::string>> sscan(const std::string& key, std::string& cursor) {
    redis::command sc{"SSCAN", key, cursor, "COUNT"};
    sc.arg(static_cast<std::int64_t>(opts.page));
    auto r = call(sc, "SSCAN");
    if (!r) return r.err();
    if (!r->is_array() || r->elements.size() != 2) {
      return redis_error("SSCAN", "unexpected reply " + r->to_string(), errc::internal);
    }
    cursor = r->elements[0].str;
    std::vector<std::string> out;
    for (const auto& m : r->elements[1].elements) out.push_back(m.str);
    return out;
  }

  // Every field and value of a hash, by HSCAN pages (no single huge reply).
  result<std::map<std::string, std::string>> hash_all(const std::string& key) {
    std::map<std::string, std::string> out;
    std::string cursor = "0";
    std::size_t n = opts.page;
    do {
      auto r = paged(
          [&](std::int64_t k) {
            redis::command c{"HSCAN", key, cursor, "COUNT"};
            c.arg(k);
            return c;
          },
          "HSCAN", n);
      if (!r) return r.err();
      if (!r->is_array() || r->elements.size() != 2 || !r->elements[1].is_array()) {
        return redis_error("HSCAN", "unexpected reply " + r->to_string(), errc::internal);
      }
      cursor = r->elements[0].str;
      const auto& kv = r->elements[1].elements;
      for (std::size_t i = 0; i + 1 < kv.size(); i += 2) out[kv[i].str] = kv[i + 1].str;
    } while (cursor != "0");
    return out;
  }
};

// ---- redis_store ----

redis_store::redis_store(std::unique_ptr<impl> p) : p_(std::move(p)) {}

redis_store::~redis_store() { close(); }

result<std::unique_ptr<redis_store>> redis_store::open(redis_store_options opts) {
  // One herald_append call must fit the connection's send buffer.
  opts.max_group_bytes =
      std::max<std::size_t>(1, std::min(opts.max_group_bytes, opts.conn.max_send_buffer_bytes / 2));
  auto p = std::make_unique<impl>(std::move(opts));
  impl& s = *p;
  const std::string where = s.opts.conn.address.to_string();
  s.conn = std::make_unique<redis::connection>(s.io, s.opts.conn);
  redis::options ro = s.opts.conn;
  ro.client_name += "-read";
  s.rconn = std::make_unique<redis::connection>(s.io, ro);
  s.conn->start();
  s.rconn->start();
  for (auto* c : {s.conn.get(), s.rconn.get()}) {
    if (status st = c->wait_connected(s.opts.conn.connect_timeout_ms); !st) {
      return error{errc::unavailable, "redis store: " + where + ": " + st.err().message};
    }
  }
  auto cfg = redis::read_server_config(*s.conn);
  if (!cfg) return error{errc::unavailable, "redis store: " + where + ": " + cfg.err().message};
  s.server = *cfg;
  if (s.server.evicting()) {
    return error{errc::unavailable,
                 fmt::format("redis store: {} has maxmemory-policy={}: an evicting policy would "
                             "drop log entries and records (set maxmemory-policy noeviction)",
                             where, s.server.maxmemory_policy)};
  }
  // A keyspace an earlier layout wrote (one global log, tenant indexes) is not misread.
  for (const char* old : {"herald:log", "herald:tidxfrom"}) {
    auto e = s.call(redis::command{"EXISTS", old}, "EXISTS");
    if (!e) return e.err();
    if (e->integer != 0) {
      return error{errc::unavailable,
                   fmt::format("redis store: {}: {} holds a keyspace of an earlier Herald layout "
                               "(one global log); this version keeps one log per tenant and does "
                               "not read it: flush the database or use another one "
                               "(docs/cluster.md, \"Key layout\")",
                               where, old)};
    }
  }
  if (status st = s.load_functions(); !st) return st.err();
  // A node of an earlier version listens on the one channel herald:ev, where nothing is
  // published any more: it would deliver nothing, silently. Refused while one is live.
  auto older = s.call(redis::command{"PUBSUB", "NUMSUB", "herald:ev"}, "PUBSUB");
  if (!older) return older.err();
  if (older->elements.size() == 2 && older->elements[1].integer > 0) {
    return error{errc::unavailable,
                 fmt::format("redis store: {}: a node of an earlier Herald version is connected "
                             "(subscribed to herald:ev, which this version no longer publishes "
                             "on): every node of a cluster must run the same version",
                             where)};
  }

  redis::options so = s.opts.conn;
  so.client_name += "-feed";
  s.sub = std::make_unique<redis::subscriber>(
      s.io, so, [&s](redis::message&& m) { s.on_message(std::move(m)); },
      [&s](bool up, const std::string& why) { s.on_sub_state(up, why); });
  std::random_device rd;
  s.mark_channel = fmt::format("herald:mk:{:08x}{:08x}", rd(), rd());
  s.sub->subscribe({s.mark_channel});
  if (s.opts.follow_all) {
    s.sub->psubscribe({std::string(impl::ev_pattern)});
    s.follows[""] = impl::follow_entry{impl::follow_state::delivering, false, 0, 0};
  }
  s.sub->start();
  // Confirmed before herald:seq is read: every batch after it arrives on the channels.
  const auto deadline = now_ms() + s.opts.conn.connect_timeout_ms;
  while (s.sub->confirmed() < (s.opts.follow_all ? 2 : 1)) {
    if (now_ms() > deadline) {
      return error{errc::unavailable, "redis store: " + where + ": SUBSCRIBE not confirmed"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  auto r = s.call(redis::command{"MGET", k_seq, k_time}, "MGET");
  if (!r) return r.err();
  if (r->elements.size() == 2) {
    s.known_seq = int_of(r->elements[0]);
    s.known_time = int_of(r->elements[1]);
  }
  s.delivered = s.known_seq;
  s.writer = std::thread([&s] { s.writer_loop(); });
  s.feed = std::thread([&s] { s.feed_loop(); });
  return std::unique_ptr<redis_store>(new redis_store(std::move(p)));
}

void redis_store::set_append_listener(append_listener l) {
  std::lock_guard lk(p_->mu);
  p_->listener = std::move(l);
}

void redis_store::set_follow_listener(follow_listener l) {
  std::lock_guard lk(p_->mu);
  p_->on_follow = std::move(l);
}

void redis_store::follow(const std::string& tenant) {
  std::lock_guard lk(p_->mu);
  if (p_->closed) return;
  p_->items.push_back({impl::feed_item::kind::follow, {}, tenant});
  p_->feed_cv.notify_one();
}

void redis_store::unfollow(const std::string& tenant) {
  std::lock_guard lk(p_->mu);
  if (p_->closed) return;
  p_->items.push_back({impl::feed_item::kind::unfollow, {}, tenant});
  p_->feed_cv.notify_one();
}

bool redis_store::delivering(const std::string& tenant) const {
  std::lock_guard lk(p_->mu);
  return p_->live_locked(tenant);
}

bool redis_store::feeds(const std::string& tenant) const {
  std::lock_guard lk(p_->mu);
  return p_->delivers_locked(tenant);
}

void redis_store::set_record_listener(std::vector<std::string> kinds, record_listener l) {
  std::lock_guard lk(p_->mu);
  p_->carried_kinds = {kinds.begin(), kinds.end()};
  p_->record_listener = std::move(l);
}

result<std::vector<event_ptr>> redis_store::append(std::vector<event_draft> batch,
                                                   append_record with) {
  if (status st = store_detail::check_batch(batch); !st) return st.err();
  auto j = std::make_shared<append_job>();
  {
    std::unique_lock lk(p_->mu);
    if (p_->closed) return error{errc::unavailable, "store is closed"};
    if (batch.empty()) return std::vector<event_ptr>{};
    if (!p_->conn->connected()) {
      return error{errc::unavailable,
                   "redis store: " + p_->opts.conn.address.to_string() + " is unreachable"};
    }
    j->drafts = std::move(batch);
    j->with = std::move(with);
    p_->queue.push_back(j);
    p_->work_cv.notify_one();
    p_->done_cv.wait(lk, [&] { return j->done; });
  }
  if (!j->st) return j->st.err();
  p_->wait_delivered(j->events);
  return std::move(j->events);
}

result<std::vector<event_ptr>> redis_store::read(const log_query& q) {
  std::vector<event_ptr> out;
  if (q.limit == 0) return out;
  // Whether `e` passes the filters; `until` ends the read (time never decreases along offsets).
  bool done = false;
  auto matches = [&](const event_ptr& e) {
    if (q.until_ms && e->time_ms >= *q.until_ms) {
      done = true;
      return false;
    }
    if (q.since_ms && e->time_ms < *q.since_ms) return false;
    if (!q.tenants.empty() &&
        std::find(q.tenants.begin(), q.tenants.end(), e->tenant) == q.tenants.end()) {
      return false;
    }
    return !q.subject || e->subject == *q.subject;
  };
  // Adds `e` when it matches; false once the read is complete (until passed, or limit reached).
  auto take = [&](event_ptr& e) {
    if (!matches(e)) return !done;
    out.push_back(std::move(e));
    done = out.size() >= q.limit;
    return !done;
  };
  std::int64_t from = q.after_offset + 1;
  if (q.since_ms) {
    auto m = p_->first_offset_at(*q.since_ms);
    if (!m) return m.err();
    // None: no event is that recent, only retained states (older offsets) may still match.
    from = m->has_value() ? std::max(from, **m) : no_floor / 2;
  }
  if (q.tenants.empty()) {
    // Retained states pruning took out of the logs below herald:runs come first (their offsets
    // are the lowest), then herald:runs, each run's events from its tenant's log, and the
    // retained states of the offsets the logs no longer hold.
    auto floor = p_->runs_floor();
    if (!floor) return floor.err();
    if (!*floor || q.after_offset + 1 < **floor) {
      if (status st = p_->states_below(q.after_offset + 1, floor->value_or(no_floor), take); !st)
        return st.err();
      if (done || !*floor) return out;
    }
    from = std::max(from, **floor);
    for (;;) {
      auto page = p_->runs_page(from, 0, p_->opts.page);
      if (!page) return page.err();
      auto kept = p_->states_at(page->missing);
      if (!kept) return kept.err();
      std::vector<event_ptr> evs = std::move(page->events);
      for (event_ptr& e : *kept) evs.push_back(std::move(e));
      std::sort(evs.begin(), evs.end(),
                [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
      for (event_ptr& e : evs) {
        if (!take(e)) return out;
      }
      if (!page->more) return out;
      from = page->next;
    }
  }
  // Filtered by tenant: the tenants' own logs, merged, and each tenant's retained states below
  // the first entry its log holds (pruned out of it), from the tenant's own index by offset
  // (herald:tstateoff:<tenant>: the read costs the tenant's states, not the cluster's), at most
  // what the limit can take. herald:seq is read first: a tenant whose log is empty then takes
  // its states up to it, and anything appended later is in the log the walk reads (never both).
  const std::set<std::string> tenants(q.tenants.begin(), q.tenants.end());
  std::vector<redis::command> firsts;
  firsts.push_back(redis::command{"GET", k_seq});
  for (const std::string& t : tenants) {
    firsts.push_back(redis::command{"XRANGE", log_key(t), "-", "+", "COUNT", "1"});
  }
  auto heads = p_->pipelined(firsts, "XRANGE");
  for (auto& h : heads)
    if (!h) return h.err();
  const std::int64_t seq = int_of(*heads[0]);
  std::vector<event_ptr> states;
  std::size_t i = 1;
  for (const std::string& t : tenants) {
    auto evs = stream_events(*heads[i++]);
    const std::int64_t floor = evs.empty() ? seq + 1 : evs.front()->offset;
    if (q.after_offset + 1 >= floor) continue;
    std::size_t got = 0;
    status st = p_->states_below(
        q.after_offset + 1, floor,
        [&](event_ptr& e) {
          if (!matches(e)) return !done;
          states.push_back(std::move(e));
          return ++got < q.limit;
        },
        "herald:tstateoff:" + t);
    if (!st) return st.err();
    done = false;
  }
  std::sort(states.begin(), states.end(),
            [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
  if (states.size() > q.limit) states.resize(q.limit);
  std::deque<event_ptr> below(std::make_move_iterator(states.begin()),
                              std::make_move_iterator(states.end()));
  // Events fetched per step: what the limit still needs (more when filtering by subject).
  const std::size_t chunk = std::clamp<std::size_t>(q.limit, 16, p_->opts.page);
  if (status st = p_->tenant_walk(tenants, from, chunk, std::move(below), take); !st) {
    return st.err();
  }
  return out;
}

std::optional<std::vector<std::string>> redis_store::hole_tenants(std::int64_t first,
                                                                  std::int64_t last) {
  if (first > last) return std::nullopt;  // not a hole: a log out of order, nothing to name
  std::set<std::string> names;
  std::int64_t covered = first - 1;  // every offset up to it is in a run seen
  auto take = [&](const std::vector<log_run>& runs) {
    for (const log_run& r : runs) {
      if (r.last() <= covered || r.first > last) continue;
      if (r.first > covered + 1) return false;  // an offset no run names
      names.insert(r.tenant);
      covered = r.last();
    }
    return true;
  };
  const std::string from = std::to_string(first) + "-0";
  auto holding =
      p_->call(redis::command{"XREVRANGE", k_runs, from, "-", "COUNT", "1"}, "XREVRANGE");
  if (!holding || !take(parse_runs(*holding))) return std::nullopt;
  std::string start = "(" + from;
  for (int pages = 0; covered < last; ++pages) {
    if (pages > 1000) return std::nullopt;  // past a million runs: do not hold the caller
    redis::command x{"XRANGE", k_runs, start, std::to_string(last) + "-0", "COUNT"};
    x.arg(static_cast<std::int64_t>(p_->opts.page));
    auto r = p_->call(x, "XRANGE");
    if (!r) return std::nullopt;
    auto runs = parse_runs(*r);
    if (runs.empty() || !take(runs)) return std::nullopt;
    start = "(" + std::to_string(runs.back().first) + "-0";
  }
  return std::vector<std::string>(names.begin(), names.end());
}

result<std::optional<event_ptr>> redis_store::state(std::string_view tenant,
                                                    std::string_view subject) {
  auto r = p_->call(redis::command{"HGET", k_state, subject_key(tenant, subject)}, "HGET");
  if (!r) return r.err();
  if (r->is_nil()) return std::optional<event_ptr>{};
  event_ptr ev = decode_event(r->str);
  if (!ev) return redis_error("state", "undecodable entry in herald:state", errc::internal);
  return std::optional<event_ptr>{std::move(ev)};
}

result<std::vector<event_ptr>> redis_store::states(const std::vector<std::string>& tenants) {
  std::vector<event_ptr> out;
  auto add = [&out](const std::string& value) {
    if (event_ptr ev = decode_event(value)) out.push_back(std::move(ev));
  };
  if (tenants.empty()) {
    auto all = p_->hash_all(k_state);
    if (!all) return all.err();
    for (const auto& [field, value] : *all) add(value);
  } else {
    // Each tenant's index (herald:tstate:<tenant>), then its states by HMGET, in pages: the
    // cost is the tenants' states, not every state of the cluster.
    std::set<std::string> seen;
    for (const std::string& t : tenants) {
      if (!seen.insert(t).second) continue;
      std::string cursor = "0";
      do {
        auto fields = p_->sscan("herald:tstate:" + t, cursor);
        if (!fields) return fields.err();
        auto values = p_->state_values(*fields);
        if (!values) return values.err();
        for (const auto& v : *values)
          if (v.is_string()) add(v.str);
      } while (cursor != "0");
    }
    // SSCAN may return a member twice.
    std::sort(out.begin(), out.end(),
              [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
    out.erase(
        std::unique(out.begin(), out.end(),
                    [](const event_ptr& a, const event_ptr& b) { return a->offset == b->offset; }),
        out.end());
    return out;
  }
  std::sort(out.begin(), out.end(),
            [](const event_ptr& a, const event_ptr& b) { return a->offset < b->offset; });
  return out;
}

result<bool> redis_store::subject_seen(std::string_view tenant, std::string_view subject) {
  auto r = p_->call(redis::command{"SISMEMBER", k_subj, subject_key(tenant, subject)}, "SISMEMBER");
  if (!r) return r.err();
  return r->integer == 1;
}

status redis_store::put_record(std::string_view kind, std::string_view key, std::string_view json) {
  std::vector<record_write> w;
  w.push_back({std::string(key), std::string(json)});
  return write_records(kind, std::move(w));
}

status redis_store::erase_record(std::string_view kind, std::string_view key) {
  std::vector<record_write> w;
  w.push_back({std::string(key), std::nullopt});
  return write_records(kind, std::move(w));
}

result<std::optional<std::string>> redis_store::get_record(std::string_view kind,
                                                           std::string_view key) {
  auto r = p_->call(redis::command{"HGET", rec_key(kind), key}, "HGET");
  if (!r) return r.err();
  if (r->is_nil()) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(r->str)};
}

result<redis_store::record_at> redis_store::get_record_at(std::string_view kind,
                                                          std::string_view key) {
  auto r =
      p_->fcall(redis::command{"FCALL_RO", "herald_get_record", "2", rec_key(kind), k_seq, key},
                "get_record");
  if (!r) return r.err();
  if (!r->is_array() || r->elements.size() != 2 || !r->elements[1].is_string()) {
    return redis_error("get_record", "unexpected reply " + r->to_string(), errc::internal);
  }
  record_at out;
  const std::string& v = r->elements[1].str;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out.seq);
  if (ec != std::errc() || p != v.data() + v.size()) {
    return redis_error("get_record", "herald:seq is not an offset: " + v, errc::internal);
  }
  if (r->elements[0].is_string()) out.json = std::move(r->elements[0].str);
  return out;
}

result<std::string> redis_store::put_record_if_absent(std::string_view kind, std::string_view key,
                                                      std::string_view json) {
  // HSETNX then HGET: of nodes racing, the first HSETNX wins and every HGET after it reads it.
  // Not indexed in herald:recexp: what is put this way (cluster keys) carries no expires_ms.
  auto r = p_->call(redis::command{"HSETNX", rec_key(kind), key, json}, "HSETNX");
  if (!r) return r.err();
  auto got = get_record(kind, key);
  if (!got) return std::move(got).err();
  if (!*got)
    return error{errc::unavailable, "redis: record " + std::string(kind) + "/" + std::string(key) +
                                        " vanished after HSETNX"};
  return std::move(**got);
}

result<std::vector<stored_record>> redis_store::load_records(std::string_view kind) {
  auto all = p_->hash_all(rec_key(kind));
  if (!all) return all.err();
  std::vector<stored_record> out;
  out.reserve(all->size());
  for (auto& [k, v] : *all) out.push_back(stored_record{k, v});
  return out;
}

status redis_store::write_records(std::string_view kind, std::vector<record_write> writes) {
  auto r = write_records_at(kind, std::move(writes));
  return r ? status{} : status(r.err());
}

result<std::int64_t> redis_store::write_records_at(std::string_view kind,
                                                   std::vector<record_write> writes) {
  if (writes.empty()) return std::int64_t{0};
  redis::command c{"FCALL", "herald_records", "1", rec_key(kind)};
  for (const record_write& w : writes) {
    if (w.json) {
      c.arg("p").arg(w.key).arg(*w.json).arg(expiry_of(*w.json)).arg(owner_of(*w.json));
    } else {
      c.arg("d").arg(w.key);
    }
  }
  auto r = p_->fcall(c, "write_records");
  if (!r) return r.err();
  return r->integer;
}

result<bool> redis_store::claim_once(std::string_view key, std::int64_t expires_ms) {
  const std::string k = "herald:once:" + std::string(key);
  if (expires_ms <= now_ms()) {
    // Already past: there is nothing to guard for any time (Redis would drop it at once).
    // Still false while an earlier, live claim holds the key.
    auto r = p_->call(redis::command{"EXISTS", k}, "EXISTS");
    if (!r) return r.err();
    return r->integer == 0;
  }
  redis::command c{"SET", k, "1", "NX", "PXAT"};
  c.arg(expires_ms);
  auto r = p_->call(c, "SET NX");
  if (!r) return r.err();
  return !r->is_nil();
}

status redis_store::prune(std::int64_t before_ms) {
  auto cut = p_->first_offset_at(before_ms);
  if (!cut) return cut.err();
  auto last = p_->last_run();
  if (!last) return last.err();
  if (!*last) return {};
  const std::int64_t last_offset = (*last)->last();
  std::int64_t keep = cut->value_or(last_offset + 1);  // the first offset every log keeps
  if (p_->opts.log_max_events > 0) {
    keep = std::max(keep, last_offset - p_->opts.log_max_events + 1);
  }
  // Each tenant's log, a page of tenants per herald_prune_log call, each call removing at most
  // a page of entries (Redis is never held long): below `keep`, and the oldest past the
  // tenant's bound. Exact trims (not ~): reads must not see what retention dropped. Retained
  // states stay in herald:state (indexed by offset in herald:stateoff), where read() finds them.
  std::optional<std::int64_t> oldest;  // the lowest offset any log still holds
  std::string cursor = "0";
  do {
    auto tenants = p_->sscan(k_tenants, cursor);
    if (!tenants) return tenants.err();
    if (tenants->empty()) continue;
    for (;;) {
      redis::command f{"FCALL", "herald_prune_log", "2", k_tenants, k_pruned};
      f.arg(keep)
          .arg(p_->opts.log_max_events_per_tenant)
          .arg(static_cast<std::int64_t>(p_->opts.page));
      for (const std::string& t : *tenants) f.arg(t);
      auto pr = p_->fcall(f, "prune");
      if (!pr) return pr.err();
      if (!pr->is_array() || pr->elements.size() != 2) {
        return redis_error("prune", "unexpected reply " + pr->to_string(), errc::internal);
      }
      if (pr->elements[0].integer == 1) continue;  // its budget ran out: the same page again
      if (const std::int64_t o = pr->elements[1].integer; o > 0) {
        oldest = std::min(oldest.value_or(o), o);
      }
      break;
    }
  } while (cursor != "0");
  // herald:runs down to the run holding the oldest offset a log holds (that run stays): the
  // map keeps covering every event still stored. Appends meanwhile only add later runs.
  // SSCAN may miss a tenant added during the scan, whose events are all above last_offset:
  // the floor never passes last_offset + 1, so no run of theirs is cut.
  const std::int64_t floor = std::min(oldest.value_or(last_offset + 1), last_offset + 1);
  auto holding =
      p_->call(redis::command{"XREVRANGE", k_runs, std::to_string(floor) + "-0", "-", "COUNT", "1"},
               "XREVRANGE");
  if (!holding) return holding.err();
  std::int64_t minid = floor;
  for (const log_run& r : parse_runs(*holding))
    if (r.last() >= floor) minid = r.first;
  redis::command t{"XTRIM", k_runs, "MINID", "="};
  t.arg(std::to_string(minid) + "-0");
  if (auto r = p_->call(t, "XTRIM"); !r) return r.err();
  return {};  // replay guards expire by themselves
}

result<std::size_t> redis_store::prune_records(std::string_view kind, std::int64_t now_ms) {
  // In calls of one page each, so Redis is never held long by one call.
  std::size_t gone = 0;
  for (;;) {
    redis::command c{"FCALL", "herald_prune_records", "1", rec_key(kind)};
    c.arg(now_ms).arg(static_cast<std::int64_t>(p_->opts.page));
    auto r = p_->fcall(c, "prune_records");
    if (!r) return r.err();
    if (!r->is_array() || r->elements.size() != 2) {
      return redis_error("prune_records", "unexpected reply " + r->to_string(), errc::internal);
    }
    gone += static_cast<std::size_t>(std::max<std::int64_t>(r->elements[1].integer, 0));
    if (r->elements[0].integer < static_cast<std::int64_t>(p_->opts.page)) return gone;
  }
}

result<store::event_lookup> redis_store::find_event(std::string_view id) {
  // By the offset the id carries (event_id_offset): the run of herald:runs holding it, and
  // the retained state herald:stateoff scores by it (pruned from the log, a state stays), with
  // herald:pruned (has prune removed any event); then one entry of the tenant's log.
  event_lookup out;
  const auto off = event_id_offset(id);
  const std::string at = off ? std::to_string(*off) : "0";
  std::vector<redis::command> cmds;
  cmds.push_back(redis::command{"GET", k_pruned});
  cmds.push_back(redis::command{"XREVRANGE", k_runs, at + "-0", "-", "COUNT", "1"});
  cmds.push_back(redis::command{"ZRANGEBYSCORE", k_state_off, at, at});
  auto r = p_->pipelined(cmds, "find_event");
  for (auto& x : r)
    if (!x) return x.err();
  out.pruned_any = int_of(*r[0]) > 0;
  if (!off) return out;
  auto found = [&](event_ptr ev) {
    if (ev && ev->id == id && ev->offset == *off) out.ev = std::move(ev);
    return out.ev != nullptr;
  };
  const auto runs = parse_runs(*r[1]);
  if (!runs.empty() && runs.front().last() >= *off) {
    const std::string entry = at + "-0";
    auto e =
        p_->call(redis::command{"XRANGE", log_key(runs.front().tenant), entry, entry}, "XRANGE");
    if (!e) return e.err();
    auto evs = stream_events(*e);
    if (!evs.empty() && found(std::move(evs.front()))) return out;
  }
  if (r[2]->is_array() && !r[2]->elements.empty()) {
    auto st = p_->call(redis::command{"HGET", k_state, r[2]->elements.front().str}, "HGET");
    if (!st) return st.err();
    if (st->is_string()) found(decode_event(st->str));
  }
  return out;
}

std::int64_t redis_store::last_offset() const {
  std::lock_guard lk(p_->mu);
  return p_->delivered;
}

status redis_store::ping() {
  {
    std::lock_guard lk(p_->mu);
    if (p_->closed) return {errc::unavailable, "store is closed"};
  }
  auto r = p_->call(redis::command{"PING"}, "PING");
  return r ? status{} : status(r.err());
}

void redis_store::close() {
  {
    std::lock_guard lk(p_->mu);
    if (p_->closed) return;
    p_->closed = true;
    p_->stopping = true;  // the writer drains what is queued first
    p_->work_cv.notify_all();
  }
  if (p_->writer.joinable()) p_->writer.join();
  {
    std::lock_guard lk(p_->mu);
    p_->feed_cv.notify_all();
    p_->done_cv.notify_all();
  }
  if (p_->feed.joinable()) p_->feed.join();
  p_->sub.reset();  // no feed any more; the command connection stays for reads until destroyed
}

std::string redis_store::startup_note() const {
  return "redis " + p_->opts.conn.address.to_string() + ": " + p_->server.durability();
}

const redis::server_config& redis_store::server() const noexcept { return p_->server; }

std::uint64_t redis_store::retries_for_test() const {
  std::lock_guard lk(p_->mu);
  return p_->retries;
}

void redis_store::drop_messages_for_test(bool drop) {
  std::lock_guard lk(p_->mu);
  p_->drop_messages = drop;
}

std::uint64_t redis_store::catchups_for_test() const {
  std::lock_guard lk(p_->mu);
  return p_->catchups;
}

}  // namespace herald
