// One RingCentral WebSocket (ringcentral.md §3-§4, §7-§8): ws-token handshake, wsc recovery
// through hub::resume(), ConnectionDetails, ClientRequests (subscriptions locally, everything
// else through the dialect's router), ServerNotifications, Heartbeat replies, Error frames,
// the §8.4 notify pause and the §6 timers. A ws_handler for transport and a session_sink for
// the hub. Owned by its connection, on the connection's shard; every member runs there.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/lazy_deque.h"
#include "core/hub.h"
#include "dialect/ringcentral/rc_context.h"
#include "transport/ws_types.h"

namespace herald {

class rc_socket final : public ws_handler, public session_sink {
 public:
  rc_socket(std::shared_ptr<rc_context> cx, ws_connection& conn, const http_request& up);
  ~rc_socket() override;

  // ws_handler
  void on_open() override;
  void on_message(std::string_view text, bool binary) override;
  void on_traffic() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_drain() override;
  void on_closed(int close_code) override;

  // session_sink
  void on_deliver(const delivery_ref& d) override;
  void on_batch_end() override {}
  void on_kick(int close_code, const std::string& reason, bool resumable) override;
  const principal& who() const override { return who_; }
  connection_info info() const override;

 private:
  enum class phase { opening, recovering, open, closed };

  void resumed(const resume_outcome& o, std::uint64_t presented);
  void start_fresh(const std::string& recovery_error, std::uint64_t presented);
  void send_details(std::uint64_t seq, const std::string& recovery_state,
                    const std::string& recovery_error);
  rc::wsc_value wsc_at(std::uint64_t seq) const;

  void handle_frame(std::string_view text);
  void handle_request(rc::client_frame f);
  void handle_subscription(const rc::client_frame& f, const rc::sub_path& sp);
  void install_subscription(const std::string& message_id, rc::subscription_record rec,
                            subscription sub);
  void reply(const std::string& message_id, int status, const std::string& body,
             bool pause = false);

  // Every frame but Heartbeat replies and Error frames goes out through emit(): in order, and
  // while a notify pause runs it waits in held_ (counted against the send-queue bound).
  void send_text(std::string text, bool pause = false);
  void emit(out_frame f, bool pause_after);
  void write_now(out_frame f, bool pause_after);
  void release_pause();
  void refuse(int status, const std::string& code, const std::string& message, int close_code);
  void slow_consumer();

  std::shared_ptr<rc_context> cx_;
  services& svc_;
  ws_connection& conn_;
  http_request upgrade_;
  std::string con_id_;
  phase phase_ = phase::opening;
  principal who_;
  bool counted_ = false;
  std::uint64_t sink_id_ = 0;

  session_ref session_;
  std::string resume_token_;
  std::uint64_t base_ = 0;
  std::int64_t last_sequence_ = 0;  // highest wsc.sequence written on this socket

  bool has_sub_ = false;
  rc::subscription_record sub_;  // the current subscription as the client sees it

  std::size_t inflight_ = 0;
  std::vector<std::string> deferred_;  // frames received while recovering
  // §8.4: after ConnectionDetails or a subscription POST/PUT reply is written, nothing else is
  // written for notify_pause_ms; frames wait here meanwhile.
  struct held_frame {
    out_frame frame;
    bool pause_after = false;
  };
  lazy_deque<held_frame> held_;
  std::size_t held_bytes_ = 0;
  bool paused_ = false;
  bool slow_ = false;
  std::int64_t opened_ms_ = 0, last_in_ms_ = 0, last_text_in_ms_ = 0, last_out_ms_ = 0;
  std::int64_t last_notify_ms_ = 0;
};

}  // namespace herald
