// The native WebSocket protocol (native.md §3) for one socket: authentication (query, header
// or in-band), welcome, subscribe/unsubscribe/request/ping, event frames, heartbeats and
// timeouts, resume. A ws_handler for transport and a session_sink for the hub. Owned by its
// connection, on the connection's shard; every member runs there.
#pragma once

#include <deque>

#include <boost/json/fwd.hpp>

#include "core/lazy_deque.h"
#include "api/router.h"
#include "api/services.h"
#include "core/hub.h"
#include "dialect/native/native_codec.h"
#include "transport/ws_types.h"

namespace herald {

class native_socket final : public ws_handler, public session_sink {
 public:
  native_socket(services& svc, const router& routes, ws_connection& conn, const http_request& up);
  ~native_socket() override;

  // ws_handler
  void on_open() override;
  void on_message(std::string_view text, bool binary) override;
  void on_traffic() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_drain() override;
  void on_closed(int close_code) override;

  // session_sink
  void on_deliver(const delivery_ref& d) override;
  void on_batch_end() override;
  void on_kick(int close_code, const std::string& reason, bool resumable) override;
  const principal& who() const override { return who_; }
  connection_info info() const override;

 private:
  enum class phase { awaiting_auth, authenticating, open, closed };
  struct auth_request {
    std::string credential;
    bool ws_token = false;   // from the query string: a ws token or an access token
    std::string resume;
    std::optional<std::uint64_t> last_seq;
  };

  void start_auth(auth_request r);
  void authenticated(result<principal> p, const auth_request& r);
  void send_welcome(const resume_outcome* recovered, recovery_error failed);
  void handle(const native_msg& msg);
  void handle_subscribe(const native_msg& msg);
  void handle_unsubscribe(const native_msg& msg);
  void handle_request(const native_msg& msg);
  void send_text(std::string text);
  void send_error(const std::string& id, errc code, const std::string& message);
  void fail(errc code, const std::string& message, int close_code);
  void slow_consumer();
  bool begin_request(const std::string& id);
  void end_request();

  services& svc_;
  const router& routes_;
  ws_connection& conn_;
  http_request upgrade_;
  std::string con_id_;
  phase phase_ = phase::awaiting_auth;
  principal who_;
  bool counted_ = false;
  std::uint64_t sink_id_ = 0;
  session_ref session_;
  std::string resume_token_;
  std::size_t inflight_ = 0;
  std::int64_t opened_ms_ = 0, last_in_ms_ = 0, last_out_ms_ = 0, last_activity_ms_ = 0;
  std::int64_t last_ping_ms_ = 0;  // last heartbeat ping sent (on_tick)
  bool slow_ = false;

  // Paced replay: a resume's missed events are written as the socket drains, not all at once
  // (they may far exceed the send-queue bound). Live events that arrive meanwhile queue behind
  // them and do count against the bound.
  void write_delivery(const delivery_ref& d);
  void pump_backlog();
  lazy_deque<delivery> backlog_;
  std::size_t backlog_live_bytes_ = 0;
  bool in_replay_ = false;   // between a resume's welcome and the end of its replay batch
  bool pump_armed_ = false;
  // The subscription id as JSON, rendered once per subscription rather than per event.
  const std::string* quoted_sub_for_ = nullptr;
  std::string head_tail_;  // ,"subscription":ID,"event":
  std::string head_;       // the event frame's head, reused
};

}  // namespace herald
