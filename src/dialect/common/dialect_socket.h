// The socket core every dialect builds on: one WebSocket from upgrade to close, as the hub and
// transport see it. It owns the lifecycle rules each dialect used to re-derive:
//   - admission: the auth-failure limit, the subscribe scope, the connection slot, then the
//     sink (in that order, so a refused socket never holds a slot);
//   - sessions: open or resume with the dialect's options; a socket that went away during a
//     shard hop is never called back (hub::with_session_then);
//   - ordered subscription acks: install_subscription() sends its acknowledgement before any
//     event of the new subscription, and gathers the snapshot when asked;
//   - output: one held/paced queue for everything written (a resume's replay is paced as the
//     socket drains; a dialect's pause holds frames; held live output counts against the
//     send-queue bound, past which the socket closes as a slow consumer);
//   - request-over-socket: in-flight accounting and one dispatch path to the dialect's router;
//   - closing: one typed close_reason, mapped to wire codes by the dialect's close table, and
//     "revoked is not resumable" decided here, not from close-code numbers.
// A dialect derives from dialect_socket and keeps only its protocol: decoding frames, rendering
// replies and events, its handshake and its close table.
//
// Owned by its ws_connection (transport) on the connection's shard; every member runs on that
// shard's thread. Work handed to the blocking pool never touches `this` (the socket may be gone
// when it runs): it captures values and continues through conn().offload().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/router.h"
#include "api/services.h"
#include "core/close_reason.h"
#include "core/hub.h"
#include "core/lazy_deque.h"
#include "core/op_events.h"
#include "transport/ws_types.h"

namespace herald {

// How a dialect puts a close reason on its wire: the close code and text, and optionally a
// final frame sent before the close (an error message). One table per dialect, in its folder.
struct wire_close {
  int code = 1000;
  std::string text;
  std::string final_frame;  // empty: none
};

class dialect_socket : public ws_handler, public session_sink {
 public:
  ~dialect_socket() override;

  // ws_handler: transport's calls. A dialect overrides on_open/on_message/on_tick; the rest is
  // the core's.
  void on_message(std::string_view text, bool binary) final;
  void on_traffic() override;
  void on_drain() override;
  // Transport's queue passed its bound through bytes it queued itself (pongs, pings): the
  // dialect's slow-consumer close, like any other overflow.
  void on_send_overflow() final { slow_consumer(); }
  // Until a principal is admitted (a sink registered) transport holds the socket to the
  // small unauthenticated queue bound: a stranger's pings may not hold megabytes.
  bool admitted() const final { return sink_id_ != 0; }
  void on_closed(int close_code) override;

  // session_sink: the hub's calls.
  void on_deliver(const delivery_ref& d) final;
  void on_batch_end() final;
  // Closes through the close table, unless the dialect keeps the socket open (kept_open_on).
  void on_kick(const kick& k) final;
  // New rights (an admin edit): the socket and its session act with them at once; a socket
  // that lost the subscribe scope, or whose subscription they no longer allow, closes as
  // revoked (the dialect's close table). A dialect with rules of its own may override it and
  // call this one.
  void on_rights(const std::optional<principal>& now) override;
  const principal& who() const final { return who_; }
  connection_info info() const override;

  // The clock every socket reads (ms since the epoch); tests install a manual one. Not
  // thread-safe to change while sockets run.
  static std::int64_t now();
  static void set_clock_for_test(std::int64_t (*clock)());

 protected:
  enum class phase { awaiting_auth, authenticating, recovering, open, closed };

  dialect_socket(services& svc, ws_connection& conn, const http_request& upgrade,
                 std::string dialect);

  // ---- what a dialect supplies
  // One client frame (text, or binary=true), in order. Frames that arrive while a resume is
  // being handed over are kept (bounded) and passed here after it.
  virtual void on_frame(std::string_view text, bool binary) = 0;
  // Its close table: how `why` (with the detail text) goes on this dialect's wire.
  virtual wire_close close_table(close_reason why, const std::string& detail) const = 0;
  // Called when a delivery arrives, in order, before it is queued or written: update the
  // dialect's own counters (a sequence) and say whether to keep it (false: drop it).
  virtual bool accept_delivery(const delivery_ref& d) { return d.ev != nullptr; }
  // Renders one delivery and writes it with send_parts()/send_frame(). Called now, or later
  // from the paced queue (then with an owned delivery).
  virtual void write_delivery(const delivery_ref& d) = 0;
  // A kick the dialect answers in-band and survives (a login session that ends under a socket
  // holding several: a logout frame, the socket stays open). True: handled, not closed.
  virtual bool kept_open_on(const kick& k) {
    (void)k;
    return false;
  }

  // ---- admission
  struct admit_options {
    std::size_t max_connections_per_session = 0;  // 0: no per-login limit
    bool count_failures = true;  // a failed credential counts against the address's limit
  };
  // Whether the client's address may still try to authenticate (services::auth_failures), and
  // one failed credential counted against it.
  bool auth_allowed() const;
  void auth_failed_here();
  // Admits a principal (or refuses: auth_failed, forbidden or too_many, then closes). On
  // success the socket holds a connection slot and a sink; the phase becomes `open` (the caller
  // opens or resumes a session next).
  bool admit(result<principal> p, const admit_options& opts);

  // ---- sessions (after admit)
  // A new session for this socket, on this shard.
  void open_session(const session_options& opts);
  // Hands the session behind `token` to this socket. `done` runs on this shard only if the
  // socket is still open; on success the missed events follow it (paced), then live ones. While
  // the hand-over runs the phase is `recovering`.
  void resume_session(const std::string& token, std::uint64_t last_seq,
                      std::function<void(const resume_outcome&)> done);
  // Ends the session this socket holds (not resumable) and forgets it; deliveries of it still
  // on their way are the dialect's to drop (accept_delivery).
  void drop_session();

  // Installs `sub` on the session (replacing any). `on_home` runs on the session's home shard
  // right after the install and may read the session (e.g. its from_offset); the task it returns
  // runs on this socket's shard, if the socket is still alive, before any event of the new
  // subscription: that is where the acknowledgement is sent. With `snapshot`, the retained
  // states the subscription matches (and the principal may see) are delivered first; with
  // `only` as well, just the retained states of those subjects, in that order (a dialect whose
  // subscribe names subjects and snapshots only what it named).
  // `settled` (optional) runs on this socket's shard once the request is over: after the ack,
  // or with a snapshot after its copies went out (where a dialect gives back its in-flight
  // slot: a snapshot read counts as a request until it is delivered).
  // In cluster mode following tenants, it first waits until this node delivers the
  // subscription's tenants (hub::when_delivering), after any earlier install still waiting:
  // the frames arriving meanwhile wait too, in order (at most max_deferred_), as during a
  // resume's hand-over; live deliveries of the current subscription go on.
  void install_subscription(subscription sub, bool snapshot,
                            std::function<hub::task(const session&)> on_home,
                            hub::task settled = {},
                            std::optional<std::vector<std::string>> only = std::nullopt);
  // The frames deferred while recovering, handled in order (until one closes the socket).
  void replay_deferred();
  // install_subscription once the tenants deliver.
  void install_now(subscription sub, bool snapshot,
                   std::function<hub::task(const session&)> on_home, hub::task settled,
                   std::optional<std::vector<std::string>> only);
  // Removes the subscription (forget_id: a later resume reports none); `done` runs here after.
  void clear_subscription(bool forget_id, hub::task done);
  // Runs `fn` with the session on its home shard; the task it returns continues here if the
  // socket is still alive.
  void with_session(std::function<hub::task(session*)> fn);

  // ---- output (everything a dialect writes goes through these, in order)
  // A text frame. pause_after: once it is written, nothing else is for `pause_ms` (frames
  // wait, counted against the bound). Returns false when the socket is closing or too slow.
  bool send_text(std::string text, bool pause_after = false);
  bool send_frame(out_frame f, bool pause_after = false);
  // For write_delivery() only (it is called when the delivery's turn has come): a delivery's
  // frame in borrowed parts (the hot path: written straight into the socket's batch), or owned.
  bool send_parts(const frame_parts& parts);
  bool write_frame(out_frame f);
  // Writes ahead of anything held (control-like replies: heartbeats). False when too slow.
  bool send_now(std::string text);
  void set_pause_ms(std::int64_t ms) { pause_ms_ = ms; }

  // ---- request-over-socket
  // Takes an in-flight slot; false when `limit` are already in flight (the dialect refuses in
  // its own words).
  bool begin_request(std::size_t limit);
  // Dispatches `req` to `routes` on the blocking pool as this socket's principal (a short-lived
  // access token of audience `aud` is set by the dialect in `req`), then runs `done` here with
  // the response if the socket is still open. Gives the in-flight slot back.
  void dispatch_request(const router& routes, http_request req,
                        std::function<http_response(const router&, const http_request&)> call,
                        std::function<void(http_response)> done);
  void end_request();
  std::size_t inflight() const { return inflight_; }

  // ---- closing
  // Closes with `why` through the dialect's close table (its final frame first, if any).
  // `cause`: the class of an auth_failed or too_many close for the log and metrics labels.
  void close_with(close_reason why, const std::string& detail,
                  error_cause cause = error_cause::unspecified);
  bool closed() const { return phase_ == phase::closed; }

  // ---- timers: a dialect's on_tick collects its deadlines here.
  class deadlines {
   public:
    explicit deadlines(std::int64_t now) : now_(now) {}
    // The socket ends with `why` once `at` has passed.
    void expire_at(std::int64_t at, close_reason why) {
      if (!expired_ && now_ > at) expired_ = why;
      wake_at(at + 1);
    }
    // The socket wants a tick at `at` (a ping, a look again).
    void wake_at(std::int64_t at) {
      if (next_ == 0 || at < next_) next_ = at;
    }
    std::optional<close_reason> expired() const { return expired_; }
    std::int64_t next() const { return next_; }

   private:
    std::int64_t now_;
    std::int64_t next_ = 0;
    std::optional<close_reason> expired_;
  };
  // Closes on an expired deadline (returning 0) or returns the next tick time.
  std::int64_t finish_tick(const deadlines& d);

  // Where this socket is in the hub (its shard and sink id; conn 0 before admit): lets a
  // dialect reach one socket later through hub::on_socket_shard, which runs nothing once the
  // sink is gone.
  sink_ref self_ref() const { return sink_ref{conn_.shard(), sink_id_}; }

  // The bearer credential of an Authorization header value ("Bearer x" / "bearer x"), or empty.
  static std::string_view bearer_of(std::string_view header_value);

  services& svc_;
  ws_connection& conn_;
  http_request upgrade_;
  const std::string con_id_;
  const std::string dialect_;
  const std::string client_addr_;  // failed auths count here (X-Forwarded-For when trusted)
  phase phase_ = phase::awaiting_auth;
  principal who_;
  std::int64_t opened_ms_ = 0;
  std::int64_t last_in_ms_ = 0;   // any inbound frame (control frames too)
  std::int64_t last_out_ms_ = 0;  // anything written
  session_ref session_;
  std::string resume_token_;
  std::size_t max_deferred_ = 16;  // frames kept while recovering; more are dropped

  // The socket's clock for per-delivery stamps (a coarse per-shard clock; the test clock when
  // one is installed).
  static std::int64_t coarse_now();

 private:
  struct held_item {
    std::optional<out_frame> frame;  // a frame, or else a delivery to render when its turn comes
    delivery d;
    bool pause_after = false;
    std::size_t counted = 0;  // bytes it holds against the send-queue bound (0: a replay)
  };
  void slow_consumer();
  // Who this socket is, for its log lines (views of members: use at once).
  op_events::socket_note note() const;
  bool write_now(out_frame f, bool pause_after);
  void hold(held_item item);
  void pump();
  void start_pause();
  bool queue_over_bound(std::size_t more) const;

  bool counted_ = false;
  std::uint64_t sink_id_ = 0;
  std::size_t inflight_ = 0;
  std::vector<std::pair<std::string, bool>> deferred_;
  // install_subscription()s waiting for their tenants (cluster mode following tenants), in
  // call order: each runs once it and every one before it may.
  struct pending_install {
    std::uint64_t id = 0;
    bool ready = false;
    std::function<void()> run;
  };
  std::deque<pending_install> installs_;
  std::uint64_t install_ids_ = 0;
  std::optional<close_reason> closed_by_;  // the server's reason, when it closed the socket
  std::string close_detail_;               // its text, for the close line
  bool slow_ = false;

  lazy_deque<held_item> held_;
  std::size_t held_bytes_ = 0;   // counted bytes of held_
  std::uint64_t delivered_ = 0;  // deliveries accepted (admin connections listing, close line)
  bool in_replay_ = false;       // a resume's missed events are arriving (until on_batch_end)
  bool paused_ = false;          // a pause_after frame's pause runs
  bool pump_armed_ = false;      // pump() waits for the socket to drain
  std::int64_t pause_ms_ = 0;
};

}  // namespace herald
