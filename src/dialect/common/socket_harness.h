// Test-only: drives a dialect socket without a network, a thread or a wall clock.
//   - fake_connection: a ws_connection that records every frame and the close, and can refuse
//     writes (a full send queue) or stall (nothing is ever written: after_written waits);
//   - socket_harness: one shard on the test's own thread (posted tasks wait in a FIFO until
//     run() drains it), a memory store, a directory with one tenant and app, a hub, services,
//     and a manual clock installed as dialect_socket's clock.
// Everything runs on the test thread, in an order the test chooses, so the state-machine tests
// (auth ordering, ack before events, resume, held output, exact timer deadlines, 4010) are
// deterministic. Not thread-safe; one harness per test.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/authn.h"
#include "api/services.h"
#include "auth/tokens.h"
#include "core/directory.h"
#include "core/hub.h"
#include "dialect/common/dialect_socket.h"
#include "store/memory/memory_store.h"
#include "transport/ws_types.h"

namespace herald::testing {

inline std::int64_t manual_now_ms = 1'700'000'000'000;
inline std::int64_t manual_clock() { return manual_now_ms; }

class fake_connection final : public ws_connection {
 public:
  explicit fake_connection(std::function<void(std::function<void()>)> post)
      : post_(std::move(post)) {}

  // What was written, in order (a frame's parts joined).
  std::vector<std::string> frames;
  int close_code = 0;
  std::string close_text;
  bool close_discarded = false;
  int pings = 0;
  // Knobs: refuse every send (a full queue); stall: writes never complete (queued_bytes grows,
  // after_written waits until complete_writes()).
  bool refuse = false;
  bool stall = false;
  std::size_t queued = 0;

  bool send(out_frame f) override {
    if (refuse || close_code != 0) return false;
    std::string text = f.head + (f.shared ? *f.shared : std::string()) + f.tail;
    if (stall) queued += text.size();
    frames.push_back(std::move(text));
    if (!stall) complete_writes();
    return true;
  }
  bool send(const frame_parts& p) override {
    return send(out_frame{std::string(p.head), std::make_shared<const std::string>(p.body),
                          std::string(p.tail)});
  }
  void close(int code, std::string reason, bool discard_queue) override {
    if (close_code != 0) return;
    close_code = code;
    close_text = std::move(reason);
    close_discarded = discard_queue;
  }
  void hold(bool) override {}
  void ping() override { ++pings; }
  void after_written(std::function<void()> done) override {
    written_waiters_.push_back(std::move(done));
    if (!stall) complete_writes();
  }
  std::size_t queued_bytes() const override { return queued; }
  bool closing() const override { return close_code != 0; }
  std::size_t shard() const override { return 0; }
  const std::string& remote() const override { return remote_; }
  void offload(std::function<void()> work, std::function<void()> then) override {
    work();  // the "blocking pool" runs at once; the continuation is posted to the shard
    post_(std::move(then));
  }
  void after(std::int64_t delay_ms, std::function<void()> fn) override {
    timers_.emplace_back(manual_now_ms + delay_ms, std::move(fn));
  }

  // Everything queued is written: after_written callbacks run.
  void complete_writes() {
    queued = 0;
    auto waiting = std::exchange(written_waiters_, {});
    for (auto& w : waiting) w();
  }
  // Runs the after() timers due at the manual clock.
  void fire_timers() {
    auto pending = std::exchange(timers_, {});
    for (auto& [at, fn] : pending) {
      if (at <= manual_now_ms)
        fn();
      else
        timers_.emplace_back(at, std::move(fn));
    }
  }
  std::string last() const { return frames.empty() ? std::string() : frames.back(); }

 private:
  std::function<void(std::function<void()>)> post_;
  std::vector<std::function<void()>> written_waiters_;
  std::vector<std::pair<std::int64_t, std::function<void()>>> timers_;
  std::string remote_ = "127.0.0.1:40000";
};

class socket_harness {
 public:
  socket_harness()
      : hub_({[this](hub::task t) { tasks_.push_back(std::move(t)); }}, &dir_, hub_opts()),
        signer_(std::string(32, 'k')),
        svc_{.core = {},
             .native = {},
             .dir = dir_,
             .st = store_,
             .h = hub_,
             .signer = signer_,
             .admin_key = "admin",
             .token_key = std::string(32, 'k'),
             .public_url = ""} {
    hub::bind_thread(0);
    dialect_socket::set_clock_for_test(&manual_clock);
    dir_.add_tenant(tenant_record{"acme", ""});
    app_record a;
    a.id = "app_1";
    a.tenant = "acme";
    a.name = "probe";
    a.app_role = role::app;
    a.scopes = scope_subscribe | scope_publish;
    dir_.put_app(a);
    a.id = "app_mute";
    a.scopes = scope_publish;  // no subscribe scope
    dir_.put_app(a);
  }
  ~socket_harness() {
    run();
    dialect_socket::set_clock_for_test(nullptr);
    hub::bind_thread(hub::npos);
  }

  services& svc() { return svc_; }
  hub& h() { return hub_; }
  directory& dir() { return dir_; }

  // A connection whose offload continuations run on this harness's shard.
  std::unique_ptr<fake_connection> connection() {
    return std::make_unique<fake_connection>(
        [this](std::function<void()> t) { tasks_.push_back(std::move(t)); });
  }
  // An access token of app `app_id` (audience native).
  std::string access_token(const std::string& app_id = "app_1") {
    return signer_.issue(
        claims_for(principal_of_app(*dir_.app(app_id), false), "native", "access", 600000));
  }
  // Runs every posted task, including those the tasks post.
  void run() {
    while (!tasks_.empty()) {
      auto t = std::move(tasks_.front());
      tasks_.pop_front();
      t();
    }
  }
  // Publishes one event on `topic` (next offset) and runs the fan-out. `shape` (optional)
  // adjusts it before it is published (a dialect's type, subject, app, retain).
  event_ptr publish(const std::string& topic, const std::string& data = "{}",
                    const std::function<void(event&)>& shape = {}) {
    auto e = std::make_shared<event>();
    e->id = "evt_" + std::to_string(++offset_);
    e->offset = offset_;
    e->topic = topic;
    e->type = "probe";
    e->tenant = "acme";
    e->time_ms = manual_now_ms;
    e->data = data;
    if (shape) shape(*e);
    hub_.publish({e});
    run();
    return e;
  }
  void advance(std::int64_t ms) { manual_now_ms += ms; }

 private:
  static hub_options hub_opts() {
    hub_options o;
    o.blocking = [](std::function<void()> f) { f(); };
    return o;
  }

  std::deque<hub::task> tasks_;
  directory dir_;
  memory_store store_;
  hub hub_;
  token_signer signer_;
  services svc_;
  std::int64_t offset_ = 0;
};

}  // namespace herald::testing
