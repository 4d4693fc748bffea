#include "app/cluster.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include "api/authn.h"
#include "api/records.h"
#include "api/services.h"
#include "core/clock.h"
#include "core/hub.h"
#include "core/metrics.h"
#include "store/redis/control.h"
#include "store/redis/io_thread.h"
#include "store/redis/record_order.h"
#include "store/redis/redis_store.h"
#include "store/redis/url.h"

namespace herald {
namespace json = boost::json;

cluster_node::~cluster_node() = default;

namespace {

constexpr std::int64_t reply_ttl_ms = 30000;  // answers are kept this long (past any ask)
constexpr const char* gap_kind = "gap";       // queued by control's on_gap, never sent

// A record's string member `k`; empty when absent or not a string.
std::string string_member(const json::object& o, const char* k) {
  const auto* f = o.if_contains(k);
  return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
}

bool directory_kind(std::string_view kind) {
  for (std::string_view k : directory_kinds)
    if (k == kind) return true;
  return false;
}

// The directory kinds whose records are ever appended with events (a subject's block, unblock,
// corrupt: subject_append_record), so that they reach a node two ways — carried by the feed
// and read after a control message — and need record_order between the two. The other kinds
// are applied as read; record_order then holds an entry per subject only, not one per login,
// JWT or user ever written.
constexpr std::string_view carried_kinds[] = {"subject"};
bool carried_kind(std::string_view kind) {
  for (std::string_view k : carried_kinds)
    if (k == kind) return true;
  return false;
}

// The store as the services see it: `db`, announcing each directory record written so that
// the other nodes re-read it — but a record appended with events when `carried` (the store
// hands it to every node's feed with its batch: redis_store::set_record_listener). Everything
// else passes through unchanged.
class announcing_store final : public store {
 public:
  // `wrote` (with a carrier): a directory record this node wrote (its JSON; none: erased), and
  // herald:seq at the write.
  using wrote_fn = std::function<void(std::string_view, std::string_view,
                                      const std::optional<std::string>&, std::int64_t)>;
  // announce(kind, key, carried): carried, the record also travels with its batch.
  announcing_store(store& db,
                   std::function<void(std::string_view, std::string_view, bool)> announce,
                   redis_store* carrier, wrote_fn wrote)
      : db_(db),
        announce_(std::move(announce)),
        carried_(carrier != nullptr),
        carrier_(carrier),
        wrote_(std::move(wrote)) {}
  using store::append;
  void set_append_listener(append_listener l) override { db_.set_append_listener(std::move(l)); }
  result<std::vector<event_ptr>> append(std::vector<event_draft> batch,
                                        append_record with) override {
    const std::string kind = with.kind, key = with.key;
    auto r = db_.append(std::move(batch), std::move(with));
    // Carried: announced all the same for the nodes not following its tenant, which the batch
    // does not reach (the others skip it: on_control).
    if (r && with_record(kind)) announce_(kind, key, carried_ && carried_kind(kind));
    return r;
  }
  result<std::vector<event_ptr>> read(const log_query& q) override { return db_.read(q); }
  std::optional<std::vector<std::string>> hole_tenants(std::int64_t first,
                                                       std::int64_t last) override {
    return db_.hole_tenants(first, last);
  }
  result<std::optional<event_ptr>> state(std::string_view t, std::string_view s) override {
    return db_.state(t, s);
  }
  result<std::vector<event_ptr>> states(const std::vector<std::string>& t) override {
    return db_.states(t);
  }
  result<bool> subject_seen(std::string_view t, std::string_view s) override {
    return db_.subject_seen(t, s);
  }
  status put_record(std::string_view kind, std::string_view key, std::string_view j) override {
    if (carrier_ != nullptr && directory_kind(kind))
      return write_records(kind, {record_write{std::string(key), std::string(j)}});
    status st = db_.put_record(kind, key, j);
    if (st && directory_kind(kind)) announce_(kind, key, false);
    return st;
  }
  status erase_record(std::string_view kind, std::string_view key) override {
    if (carrier_ != nullptr && directory_kind(kind))
      return write_records(kind, {record_write{std::string(key), std::nullopt}});
    status st = db_.erase_record(kind, key);
    if (st && directory_kind(kind)) announce_(kind, key, false);
    return st;
  }
  result<std::optional<std::string>> get_record(std::string_view kind,
                                                std::string_view key) override {
    return db_.get_record(kind, key);
  }
  result<std::vector<stored_record>> load_records(std::string_view kind) override {
    return db_.load_records(kind);
  }
  status write_records(std::string_view kind, std::vector<record_write> writes) override {
    std::vector<std::string> keys;
    if (directory_kind(kind))
      for (const auto& w : writes) keys.push_back(w.key);
    if (carrier_ != nullptr && !keys.empty()) {
      // herald:seq at the write: this node's feed, lagging, skips older carried copies.
      const std::vector<record_write> written = writes;
      auto at = carrier_->write_records_at(kind, std::move(writes));
      if (!at) return at.err();
      for (const auto& w : written) {
        wrote_(kind, w.key, w.json, *at);
        announce_(kind, w.key, false);
      }
      return {};
    }
    status st = db_.write_records(kind, std::move(writes));
    if (st)
      for (const auto& k : keys) announce_(kind, k, false);
    return st;
  }
  result<bool> claim_once(std::string_view key, std::int64_t expires_ms) override {
    return db_.claim_once(key, expires_ms);
  }
  status prune(std::int64_t before_ms) override { return db_.prune(before_ms); }
  result<std::size_t> prune_records(std::string_view kind, std::int64_t now_ms) override {
    return db_.prune_records(kind, now_ms);  // expiry: every node prunes its own directory
  }
  result<event_lookup> find_event(std::string_view id) override { return db_.find_event(id); }
  std::int64_t last_offset() const override { return db_.last_offset(); }
  status ping() override { return db_.ping(); }
  void close() override { db_.close(); }
  const char* name() const noexcept override { return db_.name(); }

 private:
  static bool with_record(const std::string& kind) { return directory_kind(kind); }
  store& db_;
  std::function<void(std::string_view, std::string_view, bool)> announce_;
  bool carried_;
  redis_store* carrier_;
  wrote_fn wrote_;
};

class redis_cluster final : public cluster_node {
 public:
  redis_cluster(redis::options conn, const config::cluster_bounds& bounds, store& db)
      : db_(db),
        conn_(std::move(conn)),
        bounds_(bounds),
        carrier_(dynamic_cast<redis_store*>(&db)),
        announcing_(
            db,
            [this](std::string_view kind, std::string_view key, bool carried) {
              publish(carried ? "carried" : "record", std::string(kind) + "\n" + std::string(key));
            },
            carrier_,
            [this](std::string_view kind, std::string_view key,
                   const std::optional<std::string>& json, std::int64_t seq) {
              if (!carried_kind(kind)) return;
              // The directory takes the written copy again, under the order's lock: unless
              // the feed delivered a newer one meanwhile (record_order::wrote), which the
              // route's own update, made before the write, must not override either.
              services* svc = feed_svc_.load(std::memory_order_acquire);
              order_.wrote(kind, key, seq, [&] {
                if (svc != nullptr)
                  apply_change(*svc, std::string(kind), std::string(key), json, nullptr);
              });
            }) {
    // A directory record appended with events (a subject's change) reaches every node's feed
    // with its batch, right before it: applied there, without a read (deliver()).
    if (carrier_ != nullptr) {
      carrier_->set_record_listener({std::begin(carried_kinds), std::end(carried_kinds)},
                                    [this](const std::string& kind, const std::string& key,
                                           const std::string& json, std::int64_t offset) {
                                      services* svc = feed_svc_.load(std::memory_order_acquire);
                                      if (svc == nullptr) return;
                                      // Skipped when a newer copy was read meanwhile (the feed
                                      // lagging: record_order).
                                      order_.carried(kind, key, offset, [&] {
                                        apply_change(*svc, kind, key, json, &unblocked_);
                                      });
                                    });
    }
  }

  void start(const std::string& node_id, std::int64_t recovery_window_ms) override {
    node_ = node_id;
    redis::control_options co;
    co.node_id = node_;
    co.lease_ms = bounds_.node_lease_ms;
    co.renew_ms = bounds_.node_renew_ms;
    co.max_len = static_cast<std::size_t>(bounds_.control_max_len);
    co.held_window_ms = recovery_window_ms;
    // A gap is handled in stream order with the messages, on the worker.
    co.on_gap = [this](std::uint64_t missed) {
      {
        std::lock_guard l(mu_);
        queue_.push_back(redis::control_message{"", "", gap_kind, std::to_string(missed)});
      }
      cv_.notify_one();
    };
    co.on_note = [](const std::string& line) { spdlog::info("cluster: {}", line); };
    conn_.client_name = "herald:" + node_;
    ctl_ =
        std::make_unique<redis::control>(io_, conn_, co, [this](const redis::control_message& m) {
          {
            std::lock_guard l(mu_);
            queue_.push_back(m);
          }
          cv_.notify_one();
        });
    if (status st = ctl_->start(5000); !st)
      throw std::runtime_error("cluster control channel: " + st.err().message);
    worker_ = std::thread([this] { work(); });
    started_ = true;
  }
  ~redis_cluster() override { stop(); }

  const std::string& node_id() const override { return node_; }
  store& announcing() override { return announcing_; }

  void wire_hub(hub_options& ho) override {
    ho.adopt = [this](const std::string& id) -> std::optional<session_state> {
      auto rec = db_.get_record("session", id);
      if (!rec) {
        spdlog::warn("cluster: reading session {}: {}", id, rec.err().message);
        return std::nullopt;
      }
      if (!*rec) return std::nullopt;
      boost::system::error_code ec;
      auto v = json::parse(**rec, ec);
      if (ec || !v.is_object()) return std::nullopt;
      // A dead node's record past its window, not pruned yet: gone, as on one node.
      if (const auto* exp = v.as_object().if_contains("expires_ms");
          exp != nullptr && exp->is_int64() && exp->as_int64() <= now_ms())
        return std::nullopt;
      return parse_session_state(v.as_object());
    };
    // On the new socket's shard: the message goes out from the worker (it blocks on Redis).
    ho.adopted = [this](const std::string& id) { post([this, id] { publish("taken", id); }); };
    // One message per event per interested node: the feed follows the tenants this node's
    // sessions need (hub_follow.cc), the store answering through the follow listener (attach).
    if (carrier_ != nullptr && bounds_.follow_tenants) {
      ho.follow = [this](const std::string& t) { carrier_->follow(t); };
      ho.unfollow = [this](const std::string& t) { carrier_->unfollow(t); };
      ho.unfollow_after_ms = bounds_.unfollow_after_ms;
    }
  }

  void attach(services& svc) override {
    if (carrier_ != nullptr) {
      carrier_->set_follow_listener(
          [h = &svc.h](const std::string& t, std::int64_t from) { h->tenant_delivering(t, from); });
    }
    std::lock_guard l(mu_);
    svc_ = &svc;
    feed_svc_.store(&svc, std::memory_order_release);
    cv_.notify_one();
  }

  void deliver(hub& h, std::vector<event_ptr> batch) override {
    // The batch's record, if any, was applied just before (the record listener, same thread).
    h.publish(std::move(batch));
    for (const auto& state : std::exchange(unblocked_, {})) h.subject_unblocked(state);
  }

  void stop() override {
    {
      std::lock_guard l(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (ctl_) ctl_->stop();
  }

  bool kick_elsewhere(const std::string& con_id) override {
    bool kicked = false;
    ask("kick", con_id, [&](const std::map<std::string, std::string>& answers) {
      for (const auto& [node, a] : answers)
        if (a == "1") kicked = true;
      return kicked;
    });
    return kicked;
  }

  std::vector<json::object> others_connections() override {
    std::vector<json::object> rows;
    auto answers = ask("conns", "", nullptr);
    for (const auto& [node, a] : answers) {
      boost::system::error_code ec;
      auto v = json::parse(a, ec);
      if (ec || !v.is_array()) continue;
      for (auto& row : v.as_array())
        if (row.is_object()) rows.push_back(std::move(row.as_object()));
    }
    return rows;
  }

  void broadcast(const std::string& kind, std::string arg) override {
    post([this, kind, arg = std::move(arg)] { publish(kind, arg); });
  }

  void on_broadcast(const std::string& kind,
                    std::function<void(const std::string& arg)> handler) override {
    std::lock_guard l(mu_);
    handlers_[kind] = std::move(handler);
  }

 private:
  void publish(const std::string& kind, const std::string& arg) {
    if (!started_) return;  // before the listener: no other node can have heard of it
    if (status st = ctl_->publish(kind, arg); !st)
      spdlog::warn("cluster: publishing {} {}: {}", kind, arg, st.err().message);
  }

  // Runs `t` on the worker, after the messages queued before it.
  void post(std::function<void()> t) {
    {
      std::lock_guard l(mu_);
      tasks_.push_back(std::move(t));
    }
    cv_.notify_one();
  }

  // Asks every other live node (`kind`, "<request> <arg>") and collects their answers until
  // each answered, `enough` says so, or ask_timeout_ms passed.
  std::map<std::string, std::string> ask(
      const std::string& kind, const std::string& arg,
      const std::function<bool(const std::map<std::string, std::string>&)>& enough) {
    std::map<std::string, std::string> answers;
    if (!started_) return answers;
    auto live = ctl_->live_nodes();
    if (!live) {
      spdlog::warn("cluster: listing nodes: {}", live.err().message);
      return answers;
    }
    std::erase(*live, node_);
    if (live->empty()) return answers;
    const std::string req = random_token(9);
    if (status st = ctl_->publish(kind, req + " " + arg); !st) {
      spdlog::warn("cluster: asking {}: {}", kind, st.err().message);
      return answers;
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(bounds_.ask_timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      auto r = ctl_->commands().call(redis::command{"HGETALL", "herald:reply:" + req});
      if (!r || !r->is_array()) continue;
      answers.clear();
      for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2)
        answers[r->elements[i].str] = r->elements[i + 1].str;
      if (enough && enough(answers)) break;
      bool all = true;
      for (const auto& n : *live) all = all && answers.contains(n);
      if (all) break;
    }
    return answers;
  }

  void answer(const std::string& req, const std::string& text) {
    redis::command set{"HSET", "herald:reply:" + req, node_, text};
    ctl_->commands().exec(set, [](const result<redis::reply>&) {});
    redis::command exp{"PEXPIRE", "herald:reply:" + req};
    exp.arg(reply_ttl_ms);
    ctl_->commands().exec(exp, [](const result<redis::reply>&) {});
  }

  void work() {
    std::unique_lock l(mu_);
    for (;;) {
      cv_.wait(
          l, [&] { return stopping_ || !tasks_.empty() || (svc_ != nullptr && !queue_.empty()); });
      if (stopping_) return;
      if (!tasks_.empty()) {
        auto t = std::move(tasks_.front());
        tasks_.pop_front();
        l.unlock();
        t();
        l.lock();
        continue;
      }
      redis::control_message m = std::move(queue_.front());
      queue_.pop_front();
      services& svc = *svc_;
      l.unlock();
      try {
        handle(svc, m);
      } catch (const std::exception& e) {
        spdlog::warn("cluster: control message {} {}: {}", m.kind, m.id, e.what());
      }
      l.lock();
    }
  }

  void handle(services& svc, const redis::control_message& m) {
    const auto sp = m.arg.find(' ');
    const std::string req = m.arg.substr(0, sp);
    const std::string rest = sp == std::string::npos ? std::string() : m.arg.substr(sp + 1);
    if (m.kind == gap_kind && m.node.empty()) {
      resync(svc, m.arg);
    } else if (m.kind == "taken") {
      svc.h.let_go(m.arg);
    } else if (m.kind == "kick") {
      answer(req,
             svc.h.kick_connection(rest, kick{close_reason::admin, "closed by admin"}) ? "1" : "0");
    } else if (m.kind == "conns") {
      json::array rows;
      for (const auto& c : svc.h.connections()) rows.push_back(connection_json(c, node_));
      answer(req, json::serialize(rows));
    } else if (m.kind == "record" || m.kind == "carried") {
      const auto nl = m.arg.find('\n');
      if (nl == std::string::npos) return;
      const std::string kind = m.arg.substr(0, nl), key = m.arg.substr(nl + 1);
      // A record carried by a batch (a subject's change with its events): a node whose feed
      // delivers the tenant gets it there, right before the batch's events; read here, it could
      // apply before earlier events of the subject were fanned out. The others read it.
      if (m.kind == "carried" && carrier_ != nullptr &&
          carrier_->feeds(key.substr(0, key.find('/'))))
        return;
      on_record(svc, kind, key);
    } else {
      std::function<void(const std::string&)> h;
      {
        std::lock_guard l(mu_);
        if (auto it = handlers_.find(m.kind); it != handlers_.end()) h = it->second;
      }
      if (h) h(m.arg);  // a dialect's message (broadcast); unknown kinds are ignored
    }
  }

  // Control messages were trimmed before this node read them (control.h): what they would have
  // done is done now, by the same handlers — every directory record that differs from the
  // store's goes through on_record (apps, users and JWTs gone from the store too), and every
  // session whose record another node now holds is let go as a `taken` would.
  void resync(services& svc, const std::string& missed) {
    spdlog::warn(
        "cluster: {} control messages were trimmed before this node read them "
        "(redis.control_max_len): re-reading the directory and re-checking every session",
        missed);
    global_metrics().cluster_control_gaps.fetch_add(1, std::memory_order_relaxed);
    directory& dir = svc.dir;
    std::size_t changed = 0, taken = 0;
    for (std::string_view kind : directory_kinds) {
      auto recs = db_.load_records(kind);
      if (!recs) {
        spdlog::warn("cluster: resync: loading {} records: {}", kind, recs.err().message);
        continue;
      }
      std::set<std::string> stored;
      for (const auto& r : *recs) {
        stored.insert(r.key);
        if (held_json(dir, kind, r.json) != r.json) {
          ++changed;
          on_record(svc, std::string(kind), r.key);
        }
      }
      std::vector<std::string> gone;  // in the directory, no longer in the store
      if (kind == "app")
        for (const auto& a : dir.apps("")) gone.push_back(a.id);
      if (kind == "user")
        for (const auto& u : dir.users("")) gone.push_back(u.id);
      if (kind == "jwt")
        for (const auto& u : dir.users(""))
          for (const auto& j : dir.jwts_of(u.id)) gone.push_back(j.jti);
      for (const auto& key : gone)
        if (!stored.contains(key)) {
          ++changed;
          on_record(svc, std::string(kind), key);
        }
    }
    const std::vector<std::string> ids = svc.h.session_ids();
    for (std::size_t i = 0; i < ids.size(); i += 1000) {
      redis::command c{"HMGET", "herald:recnode:session"};
      const std::size_t end = std::min(ids.size(), i + 1000);
      for (std::size_t k = i; k < end; ++k) c.arg(ids[k]);
      auto r = ctl_->commands().call(c);
      if (!r || !r->is_array() || r->elements.size() != end - i) {
        spdlog::warn("cluster: resync: reading session holders failed");
        break;
      }
      for (std::size_t k = i; k < end; ++k) {
        const redis::reply& holder = r->elements[k - i];
        if (holder.is_string() && !holder.str.empty() && holder.str != node_) {
          ++taken;
          svc.h.let_go(ids[k]);
        }
      }
    }
    spdlog::info("cluster: resync done: {} directory records re-read, {} sessions let go", changed,
                 taken);
  }

  // The stored form of the directory's current copy of the record `json` (of `kind`): equal to
  // `json` when the directory already has what the store holds.
  static std::string held_json(const directory& dir, std::string_view kind,
                               const std::string& json) {
    boost::system::error_code ec;
    auto v = json::parse(json, ec);
    if (ec || !v.is_object()) return {};
    const json::object& o = v.as_object();
    auto text = [&o](const char* k) { return string_member(o, k); };
    auto form = [](const auto& rec) {
      return rec ? json::serialize(stored_json(*rec)) : std::string();
    };
    if (kind == "tenant") return form(dir.tenant(text("id")));
    if (kind == "app") return form(dir.app(text("id")));
    if (kind == "user") return form(dir.user(text("id")));
    if (kind == "login") return form(dir.login(text("id")));
    if (kind == "subject") return form(dir.subject(text("tenant"), text("id")));
    if (kind == "jwt") return form(dir.jwt(text("jti")));
    return {};
  }

  // Another node wrote record (kind, key): read it into the directory (apply_change). With the
  // records carried by batches, read with herald:seq: a batch's record the feed hands over
  // later is applied only when newer (record_order).
  void on_record(services& svc, const std::string& kind, const std::string& key) {
    if (carrier_ != nullptr && carried_kind(kind)) {
      // What the feed has delivered counts too: after Redis lost writes herald:seq can be below
      // what this node already saw, and the read (the current record) must still apply.
      const std::int64_t delivered = carrier_->last_offset();
      auto at = carrier_->get_record_at(kind, key);
      if (!at) {
        spdlog::warn("cluster: reading {} {}: {}", kind, key, at.err().message);
        return;
      }
      order_.read(kind, key, std::max(at->seq, delivered),
                  [&] { apply_change(svc, kind, key, at->json, nullptr); });
      return;
    }
    auto rec = db_.get_record(kind, key);
    if (!rec) {
      spdlog::warn("cluster: reading {} {}: {}", kind, key, rec.err().message);
      return;
    }
    apply_change(svc, kind, key, *rec, nullptr);
  }

  // Record (kind, key) is now `rec` (none: erased): into the directory, then do here what the
  // change means for this node's sockets. A subject unblocked here hands its retained state to
  // `unblocked` when given (the feed delivers it after the unblock event), else to the hub.
  void apply_change(services& svc, const std::string& kind, const std::string& key,
                    const std::optional<std::string>& rec, std::vector<event_ptr>* unblocked) {
    directory& dir = svc.dir;
    auto revoke = [&](std::function<bool(const session_sink&)> pred, const char* why) {
      svc.h.kick_where(std::move(pred), kick{close_reason::revoked, why});
    };
    if (!rec) {  // erased
      if (kind == "app" && dir.remove_app(key))
        revoke([key](const session_sink& k) { return k.who().app_id == key; },
               "credential revoked");
      if (kind == "user" && dir.remove_user(key))
        revoke([key](const session_sink& k) { return k.who().user_id == key; },
               "credential revoked");
      if (kind == "jwt") dir.remove_jwt(key);
      return;
    }
    boost::system::error_code ec;
    auto v = json::parse(*rec, ec);
    if (ec || !v.is_object()) return;
    const json::object& o = v.as_object();
    if (kind == "login") {
      const auto before = dir.login(key);
      apply_record(dir, kind, o);
      const auto after = dir.login(key);
      if (after && after->ended && !(before && before->ended))
        revoke([key](const session_sink& k) { return k.who().login_session == key; },
               "login session revoked");
    } else if (kind == "user") {
      const auto before = dir.user(key);
      apply_record(dir, kind, o);
      const auto after = dir.user(key);
      if (after && after->blocked && !(before && before->blocked))
        revoke([key](const session_sink& k) { return k.who().user_id == key; },
               "credential revoked");
      else if (before)
        apply_rights_change(svc, key, "");
    } else if (kind == "app") {
      const auto before = dir.app(key);
      apply_record(dir, kind, o);
      const auto after = dir.app(key);
      if (before && after && before->api_key_hash != after->api_key_hash)
        revoke(
            [key](const session_sink& k) { return k.who().app_id == key && k.who().via_api_key; },
            "credential revoked");
      if (before && after &&
          (before->app_role != after->app_role || before->scopes != after->scopes))
        apply_rights_change(svc, "", key);
    } else if (kind == "subject") {
      auto text = [&o](const char* k) { return string_member(o, k); };
      const std::string tenant = text("tenant"), id = text("id");
      // The feed (a record with its batch) and the control worker (a change without events, a
      // resync) may both apply one subject: one at a time, so that only one of them sees the
      // change.
      std::lock_guard l(subject_mu_);
      const auto before = dir.subject(tenant, id);
      apply_record(dir, kind, o);
      const auto after = dir.subject(tenant, id);
      // Unblocked (native.md §3.3): snapshot sessions here get the state again too.
      if (before && after && before->blocked && !after->blocked && !after->corrupted) {
        if (auto state = db_.state(tenant, id); state && *state) {
          if (unblocked != nullptr)
            unblocked->push_back(**state);
          else
            svc.h.subject_unblocked(**state);
        }
      }
    } else {
      apply_record(dir, kind, o);
    }
  }

  store& db_;
  redis::options conn_;
  config::cluster_bounds bounds_;
  std::string node_;
  std::atomic<bool> started_{false};
  redis_store* carrier_;       // &db_ when it carries records with their batches
  redis::record_order order_;  // the feed's records against the ones read (on_record)
  announcing_store announcing_;
  redis::io_thread io_;
  std::unique_ptr<redis::control> ctl_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<redis::control_message> queue_;
  std::deque<std::function<void()>> tasks_;
  std::map<std::string, std::function<void(const std::string&)>> handlers_;
  services* svc_ = nullptr;
  std::atomic<services*> feed_svc_{nullptr};  // svc_, for deliver() on the store's feed thread
  std::vector<event_ptr> unblocked_;          // states to follow the next batch (feed thread)
  std::mutex subject_mu_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace

std::unique_ptr<cluster_node> cluster_node::make_if_redis(const std::string& store_spec,
                                                          const redis::options& conn,
                                                          const config::cluster_bounds& bounds,
                                                          store& db) {
  if (store_spec.rfind("redis://", 0) != 0) return nullptr;
  auto u = redis::parse_url(store_spec);
  if (!u) throw std::runtime_error("cluster: " + u.err().message);
  redis::options o = conn;
  o.address = *u;
  return std::make_unique<redis_cluster>(std::move(o), bounds, db);
}

}  // namespace herald
