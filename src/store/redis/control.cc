#include "store/redis/control.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "core/clock.h"

namespace herald::redis {

// What the io_thread's handlers share with the object; outlives it while a reply is in flight.
struct control::state {
  control_options opts;
  handler on_message;
  connection* cmd = nullptr;            // null once stopping: no further read is issued
  std::string last = "0-0";             // io_thread: the last entry handled
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
  // Start after the stream's current end.
  auto tail = cmd_->call(command{"XREVRANGE", state_->stream(), "+", "-", "COUNT", "1"});
  if (!tail) return tail.err();
  if (tail->is_error()) return error{errc::unavailable, "redis: XREVRANGE: " + tail->str};
  if (tail->is_array() && !tail->elements.empty() && tail->elements[0].is_array() &&
      !tail->elements[0].elements.empty()) {
    const std::string last = tail->elements[0].elements[0].str;
    std::promise<void> set;
    io_.post([s = state_, last, &set] {
      s->last = last;
      set.set_value();
    });
    set.get_future().wait();
  }
  if (auto st = renew(); !st) return st;
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

status control::renew() {
  const std::string key = opts_.prefix + "node:" + opts_.node_id;
  command hset{"HSET", key, "node", opts_.node_id, "pid"};
  hset.arg(static_cast<std::int64_t>(::getpid())).arg("renewed_ms").arg(now_ms());
  auto r = cmd_->call(hset);
  if (!r) return r.err();
  if (r->is_error()) return error{errc::unavailable, "redis: HSET " + key + ": " + r->str};
  command exp{"PEXPIRE", key};
  exp.arg(opts_.lease_ms);
  r = cmd_->call(exp);
  if (!r) return r.err();
  // In the set again if a peer dropped it while the lease had lapsed (Redis was away).
  r = cmd_->call(command{"SADD", opts_.prefix + "nodes", opts_.node_id});
  if (!r) return r.err();
  return {};
}

void control::renew_loop() {
  std::unique_lock l(mu_);
  while (!stopping_) {
    cv_.wait_for(l, std::chrono::milliseconds(opts_.renew_ms), [&] { return stopping_; });
    if (stopping_) break;
    l.unlock();
    (void)renew();  // down: the lease lapses, and is taken again once Redis is back
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
    (void)cmd_->call(command{"DEL", opts_.prefix + "node:" + opts_.node_id}, 1000);
    (void)cmd_->call(command{"SREM", opts_.prefix + "nodes", opts_.node_id}, 1000);
  }
}

status control::publish(std::string_view kind, std::string_view arg) {
  if (stopped_) return error{errc::unavailable, "control channel stopped"};
  command add{"XADD", state_->stream(), "MAXLEN", "~"};
  add.arg(static_cast<std::int64_t>(opts_.max_len)).arg("*");
  add.arg("n").arg(opts_.node_id).arg("k").arg(kind).arg("a").arg(arg);
  auto r = cmd_->call(add);
  if (!r) return r.err();
  if (r->is_error()) return error{errc::unavailable, "redis: XADD control: " + r->str};
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
    if (ex->integer == 1)
      live.push_back(m.str);
    else  // its lease lapsed: it left the cluster (it registers again if it comes back)
      cmd_->exec(command{"SREM", opts_.prefix + "nodes", m.str}, [](const result<reply>&) {});
  }
  std::sort(live.begin(), live.end());
  return live;
}

}  // namespace herald::redis
