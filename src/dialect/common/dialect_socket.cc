#include "dialect/common/dialect_socket.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/op_events.h"
#include "core/subscription_index.h"

namespace herald {
namespace {

std::int64_t (*test_clock)() = nullptr;

// What a held live delivery is counted as against the send-queue bound before it is rendered:
// its payload and topic plus a frame head's worth of bytes (no dialect's head passes 160).
std::size_t estimated_frame_bytes(const delivery_ref& d) {
  return d.ev->data.size() + d.ev->topic.size() + 160;
}

}  // namespace

std::int64_t dialect_socket::now() { return test_clock != nullptr ? test_clock() : now_ms(); }

void dialect_socket::set_clock_for_test(std::int64_t (*clock)()) { test_clock = clock; }

std::int64_t dialect_socket::coarse_now() {
  return test_clock != nullptr ? test_clock() : coarse_now_ms();
}

dialect_socket::dialect_socket(services& svc, ws_connection& conn, const http_request& upgrade,
                               std::string dialect)
    : svc_(svc),
      conn_(conn),
      upgrade_(upgrade),
      con_id_(new_id("con_")),
      dialect_(std::move(dialect)),
      client_addr_(svc.auth_failures.client_address(upgrade)) {
  opened_ms_ = last_in_ms_ = last_out_ms_ = now();
}

dialect_socket::~dialect_socket() = default;

// ---- transport's calls

void dialect_socket::on_traffic() { last_in_ms_ = now(); }

void dialect_socket::on_drain() { close_with(close_reason::drain, "service restart"); }

void dialect_socket::on_closed(int close_code) {
  // The reason is ours (closed_by_), never read back from a number: the code is only logged.
  op_events::socket_closed(note(), close_code,
                           closed_by_ ? close_reason_name(*closed_by_) : "client", close_detail_,
                           now() - opened_ms_, delivered_);
  phase_ = phase::closed;
  held_.clear();
  held_bytes_ = 0;
  // A socket the server closed as revoked (or never let in) ends its session; any other end,
  // the client's included, leaves it resumable for its window.
  const bool resumable = !closed_by_ || is_resumable(*closed_by_);
  release_socket(svc_, sink_id_, counted_, who_, session_, resumable, closed_by_);
  counted_ = false;
  sink_id_ = 0;
}

// ---- the hub's calls

void dialect_socket::on_deliver(const delivery_ref& d) {
  if (phase_ != phase::open || slow_) return;
  if (!accept_delivery(d)) return;
  // Publish-to-delivery latency, sampled: the 1st live delivery of a socket, then every 64th.
  if ((++delivered_ & 63U) == 1 && !d.snapshot && !in_replay_)
    global_metrics().publish_delivery_ms.observe(
        static_cast<double>(std::max<std::int64_t>(0, coarse_now() - d.ev->time_ms)));
  if (in_replay_ || paused_ || !held_.empty()) {
    // Behind a replay or a pause: a replayed event waits uncounted (a resume may miss far more
    // than the bound; it is paced out as the socket drains), a live one counts.
    hold(held_item{std::nullopt, d.own(), false, in_replay_ ? 0 : estimated_frame_bytes(d)});
    return;
  }
  write_delivery(d);
}

void dialect_socket::on_batch_end() {
  if (!in_replay_) return;
  in_replay_ = false;  // the resume's missed events are all held now
  pump();
}

void dialect_socket::on_kick(const kick& k) {
  if (phase_ == phase::closed || kept_open_on(k)) return;
  close_with(k.why, k.detail);
}

void dialect_socket::on_rights(const std::optional<principal>& now) {
  if (phase_ == phase::closed || sink_id_ == 0) return;
  if (!now) return close_with(close_reason::revoked, "credential revoked");
  if (!now->has(scope_subscribe))
    return close_with(close_reason::revoked, "the subscribe scope was withdrawn");
  who_ = *now;
  if (session_.id.empty()) return;
  hub* h = &svc_.h;
  with_session([this, h, me = self_ref(), who = *now](session* s) -> hub::task {
    if (s == nullptr) return {};
    // Wider rights than this node delivers (cluster mode following tenants: an app made
    // admin): live delivery would miss the new tenants' events until they come. The node asks
    // for them, and the socket closes: its next session starts once they deliver.
    auto need = hub::tenants_needed(who, s->sub ? &s->sub->tenants : nullptr);
    if (!h->delivers(need)) {
      h->when_delivering(std::move(need), me, [] {});
      return [this] { close_with(close_reason::revoked, "rights changed: reconnect"); };
    }
    h->set_principal(*s, who);
    if (!s->sub || subscription_allowed(who, *s->sub)) return {};
    // Runs on this socket's shard, and only while it lives (with_session_then).
    return [this] { close_with(close_reason::revoked, "the subscription is no longer allowed"); };
  });
}

op_events::socket_note dialect_socket::note() const {
  return {dialect_, con_id_, client_addr_, who_.tenant, who_.app_id, who_.user_id, admitted()};
}

connection_info dialect_socket::info() const {
  connection_info c =
      describe_socket(con_id_, dialect_, who_, session_, conn_.remote(), opened_ms_);
  c.delivered = delivered_;
  c.queued_bytes = conn_.queued_bytes() + held_bytes_;
  c.last_activity_ms = std::max(last_in_ms_, opened_ms_);
  return c;
}

// ---- admission

bool dialect_socket::auth_allowed() const {
  return svc_.auth_failures.may_try(client_addr_, "", now());
}

void dialect_socket::auth_failed_here() { svc_.auth_failures.failed(client_addr_, "", now()); }

bool dialect_socket::admit(result<principal> p, const admit_options& opts) {
  if (phase_ == phase::closed) return false;
  if (!p) {
    if (opts.count_failures) auth_failed_here();
    close_with(close_reason::auth_failed, p.err().message, p.err().cause);
    return false;
  }
  if (!p->has(scope_subscribe)) {
    close_with(close_reason::forbidden, "the subscribe scope is required");
    return false;
  }
  // The slot before the sink: a socket refused here was never visible to the hub.
  if (status st = svc_.connections.acquire(*p, opts.max_connections_per_session, svc_.core); !st) {
    close_with(close_reason::too_many, st.err().message, st.err().cause);
    return false;
  }
  counted_ = true;
  who_ = std::move(*p);
  sink_id_ = svc_.h.register_sink(this);
  phase_ = phase::open;
  op_events::socket_opened(note());
  return true;
}

// ---- sessions

void dialect_socket::open_session(const session_options& opts) {
  session_ = svc_.h.open_session(who_, dialect_, sink_ref{conn_.shard(), sink_id_}, opts);
  // Homed on this shard: with_session runs inline, so the token is known before we return.
  svc_.h.with_session(session_, [this](session* s) {
    if (s != nullptr) resume_token_ = s->resume_token;
  });
}

void dialect_socket::resume_session(const std::string& token, std::uint64_t last_seq,
                                    std::function<void(const resume_outcome&)> done) {
  phase_ = phase::recovering;
  hub* h = &svc_.h;
  const std::uint64_t me = sink_id_;
  h->resume(token, last_seq, who_, sink_ref{conn_.shard(), me},
            [this, h, me, done = std::move(done)](const resume_outcome& o) {
              // Compared, not dereferenced: `this` may be gone when the hand-over completes.
              if (h->find_sink(me) != this || phase_ == phase::closed) {
                // The socket went away during the hand-over: let the session wait again.
                if (o.error == recovery_error::none)
                  h->with_session(o.ref, [h, me](session* s) {
                    if (s != nullptr) h->detach(*s, me, true);
                  });
                return;
              }
              phase_ = phase::open;
              if (o.error == recovery_error::none) {
                session_ = o.ref;
                resume_token_ = o.resume_token;
                // The missed events follow in this same task, then on_batch_end() ends the
                // replay: until then they are held, and paced out as the socket drains.
                in_replay_ = true;
              }
              done(o);
              replay_deferred();
            });
}

void dialect_socket::replay_deferred() {
  // One at a time: a frame that makes the socket wait again (a resume, an install) leaves the
  // rest deferred, in order.
  while (!deferred_.empty() && phase_ == phase::open && installs_.empty()) {
    auto [text, binary] = std::move(deferred_.front());
    deferred_.erase(deferred_.begin());
    on_frame(text, binary);
  }
}

void dialect_socket::drop_session() {
  const session_ref ref = std::exchange(session_, session_ref{});
  resume_token_.clear();
  hub* h = &svc_.h;
  const std::uint64_t me = sink_id_;
  h->with_session(ref, [h, me](session* s) {
    if (s != nullptr) h->detach(*s, me, false);
  });
}

void dialect_socket::with_session(std::function<hub::task(session*)> fn) {
  svc_.h.with_session_then(session_, sink_ref{conn_.shard(), sink_id_}, std::move(fn));
}

void dialect_socket::install_subscription(subscription sub, bool snapshot,
                                          std::function<hub::task(const session&)> on_home,
                                          hub::task settled,
                                          std::optional<std::vector<std::string>> only) {
  auto need = hub::tenants_needed(who_, &sub.tenants);
  if (installs_.empty() && svc_.h.delivers(need)) {
    return install_now(std::move(sub), snapshot, std::move(on_home), std::move(settled),
                       std::move(only));
  }
  // Not yet (or behind one that waits: installs keep their order): this node asks for the
  // tenants' events; until they come, frames wait too, in order (on_message).
  const std::uint64_t id = ++install_ids_;
  installs_.push_back(
      pending_install{id, false,
                      [this, sub = std::move(sub), snapshot, on_home = std::move(on_home),
                       settled = std::move(settled), only = std::move(only)]() mutable {
                        install_now(std::move(sub), snapshot, std::move(on_home),
                                    std::move(settled), std::move(only));
                      }});
  svc_.h.when_delivering(std::move(need), self_ref(), [this, id] {
    for (auto& p : installs_)
      if (p.id == id) p.ready = true;
    while (!installs_.empty() && installs_.front().ready && phase_ != phase::closed) {
      auto run = std::move(installs_.front().run);
      installs_.pop_front();
      run();
    }
    replay_deferred();
  });
}

void dialect_socket::install_now(subscription sub, bool snapshot,
                                 std::function<hub::task(const session&)> on_home,
                                 hub::task settled, std::optional<std::vector<std::string>> only) {
  hub* h = &svc_.h;
  services* svc = &svc_;
  const sink_ref me = self_ref();
  std::vector<filter> filters;
  if (snapshot) filters = sub.filters;
  with_session([this, h, svc, me, snapshot, filters = std::move(filters), sub = std::move(sub),
                on_home = std::move(on_home), settled = std::move(settled),
                only = std::move(only)](session* s) mutable -> hub::task {
    if (s == nullptr) return {};
    h->set_subscription(*s, std::move(sub), snapshot);
    hub::task ack = on_home(*s);
    if (!snapshot) {
      if (!settled) return ack;
      return [ack = std::move(ack), settled = std::move(settled)] {
        if (ack) ack();
        settled();
      };
    }
    // Matches wait (gathering) until the retained states are read and delivered first. The
    // copies are released under this subscription's id (a newer one may replace it meanwhile).
    const session_ref ref{s->home_shard, s->id};
    // The continuation runs only while this socket lives (with_session_then checks the sink).
    return [this, h, svc, me, ref, who = s->who, sub_id = s->sub_id, filters = std::move(filters),
            ack = std::move(ack), settled = std::move(settled), only = std::move(only)] {
      if (ack) ack();
      auto copies = std::make_shared<std::vector<event_ptr>>();
      conn_.offload(
          // The blocking pool: values only, never the socket.
          [svc, copies, filters, who, only] {
            if (only) {  // the named subjects' states, in the order named
              for (const auto& subject : *only) {
                auto st = svc->st.state(who.tenant, subject);
                if (st && *st && may_see(who, ***st, &svc->dir) && any_matches(filters, ***st))
                  copies->push_back(**st);
              }
              return;
            }
            std::vector<std::string> tenants;
            if (!who.is_admin_app()) tenants.push_back(who.tenant);
            auto states = svc->st.states(tenants);
            if (!states) return;
            for (const auto& e : *states)
              if (may_see(who, *e, &svc->dir) && any_matches(filters, *e)) copies->push_back(e);
          },
          [h, me, ref, sub_id, copies, settled] {
            h->with_session(ref, [h, me, sub_id, copies, settled](session* s2) {
              if (s2 != nullptr) h->release_snapshot(*s2, *copies, sub_id);
              // After the copies (FIFO on the socket's shard): the request is over.
              if (settled) h->on_socket_shard(me, settled);
            });
          });
    };
  });
}

void dialect_socket::clear_subscription(bool forget_id, hub::task done) {
  hub* h = &svc_.h;
  with_session([h, forget_id, done = std::move(done)](session* s) -> hub::task {
    if (s != nullptr) h->clear_subscription(*s, forget_id);
    return done;
  });
}

// ---- output

bool dialect_socket::queue_over_bound(std::size_t more) const {
  return conn_.queued_bytes() + held_bytes_ + more > svc_.core.send_queue_bytes;
}

bool dialect_socket::send_text(std::string text, bool pause_after) {
  return send_frame(out_frame{std::move(text), nullptr, {}}, pause_after);
}

bool dialect_socket::send_frame(out_frame f, bool pause_after) {
  if (slow_ || phase_ == phase::closed) return false;
  if (held_.empty() && !paused_) return write_now(std::move(f), pause_after);
  const std::size_t size = f.size();
  hold(held_item{std::move(f), delivery{}, pause_after, size});
  return !slow_;
}

bool dialect_socket::send_parts(const frame_parts& parts) {
  if (slow_) return false;
  if (!conn_.send(parts)) {
    slow_consumer();
    return false;
  }
  return true;
}

bool dialect_socket::write_frame(out_frame f) {
  if (slow_) return false;
  return write_now(std::move(f), false);
}

bool dialect_socket::send_now(std::string text) {
  if (slow_ || phase_ == phase::closed) return false;
  last_out_ms_ = now();
  if (!conn_.send(out_frame{std::move(text), nullptr, {}})) {
    slow_consumer();
    return false;
  }
  return true;
}

bool dialect_socket::write_now(out_frame f, bool pause_after) {
  last_out_ms_ = now();
  if (!conn_.send(std::move(f))) {
    slow_consumer();
    return false;
  }
  if (pause_after) start_pause();
  return true;
}

void dialect_socket::start_pause() {
  // The frame goes in a write of its own (nothing is queued behind it until the pause ends),
  // and the pause counts from when that write completed.
  paused_ = true;
  conn_.after_written([this] {
    conn_.after(pause_ms_, [this] {
      paused_ = false;
      pump();
    });
  });
}

void dialect_socket::hold(held_item item) {
  if (item.counted > 0 && queue_over_bound(item.counted)) return slow_consumer();
  held_bytes_ += item.counted;
  held_.push_back(std::move(item));
}

void dialect_socket::pump() {
  pump_armed_ = false;
  // Half the bound: enough queued to keep the socket busy, room left for live traffic.
  const std::size_t high_water = svc_.core.send_queue_bytes / 2;
  while (!held_.empty() && !paused_ && !slow_ && !in_replay_ && phase_ == phase::open &&
         conn_.queued_bytes() < high_water) {
    held_item item = std::move(held_.front());
    held_.pop_front();
    held_bytes_ -= item.counted;
    if (item.frame) {
      write_now(std::move(*item.frame), item.pause_after);
    } else {
      write_delivery(item.d);
    }
  }
  if (held_.empty() || paused_ || slow_ || in_replay_ || phase_ != phase::open || pump_armed_)
    return;
  pump_armed_ = true;
  conn_.after_written([this] { pump(); });
}

void dialect_socket::slow_consumer() {
  if (slow_) return;
  slow_ = true;
  close_with(close_reason::slow_consumer, "send queue over its bound");
}

// ---- request-over-socket

bool dialect_socket::begin_request(std::size_t limit) {
  if (inflight_ >= limit) return false;
  ++inflight_;
  return true;
}

void dialect_socket::end_request() {
  if (inflight_ > 0) --inflight_;
}

void dialect_socket::dispatch_request(
    const router& routes, http_request req,
    std::function<http_response(const router&, const http_request&)> call,
    std::function<void(http_response)> done) {
  req.remote = conn_.remote();
  auto res = std::make_shared<http_response>();
  conn_.offload(
      [routes = &routes, call = std::move(call), res, req = std::move(req)] {
        *res = call(*routes, req);
        collect_body(*res);  // a streamed reply is one ack's body here
      },
      [this, res, done = std::move(done)] {
        end_request();
        if (phase_ == phase::closed) return;
        done(std::move(*res));
      });
}

// ---- closing and timers

void dialect_socket::close_with(close_reason why, const std::string& detail, error_cause cause) {
  if (phase_ == phase::closed) return;
  phase_ = phase::closed;
  closed_by_ = why;
  close_detail_ = detail;
  held_.clear();
  held_bytes_ = 0;
  wire_close w = close_table(why, detail);
  if (why == close_reason::auth_failed)
    op_events::auth_failed(dialect_, op_events::auth_failure_reason(cause), client_addr_, detail);
  else if (why == close_reason::too_many || why == close_reason::slow_consumer)
    op_events::refused(dialect_,
                       why == close_reason::slow_consumer ? std::string_view("send_queue")
                                                          : op_events::refusal_limit(cause),
                       who_.tenant, client_addr_, w.code, detail);
  // A slow consumer's queue is dropped (it is what overflowed), unless the dialect has a last
  // frame to say why: then the queue is written first, the frame after it.
  const bool discard = why == close_reason::slow_consumer && w.final_frame.empty();
  if (!w.final_frame.empty()) (void)conn_.send(out_frame{std::move(w.final_frame), nullptr, {}});
  conn_.close(w.code, std::move(w.text), discard);
}

std::int64_t dialect_socket::finish_tick(const deadlines& d) {
  if (const auto why = d.expired()) {
    close_with(*why, close_reason_name(*why));
    return 0;
  }
  return d.next();
}

void dialect_socket::on_message(std::string_view text, bool binary) {
  if (phase_ == phase::closed) return;
  if (phase_ == phase::recovering || !installs_.empty()) {
    // Frames sent during a resume's hand-over are handled after it, in order (bounded).
    if (deferred_.size() < max_deferred_) deferred_.emplace_back(std::string(text), binary);
    return;
  }
  on_frame(text, binary);
}

std::string_view dialect_socket::bearer_of(std::string_view v) {
  if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer "))
    return v.substr(7);
  return {};
}

}  // namespace herald
