// One RingCentral WebSocket (ringcentral.md §3-§4, §7-§8): ws-token handshake, wsc recovery,
// ConnectionDetails, ClientRequests (subscriptions locally, everything else through the
// dialect's router), ServerNotifications, Heartbeat replies, Error frames, the §8.4 notify pause
// and the §6 timers. The lifecycle (admission, sessions, ordered replies, held output during a
// pause, closing) is dialect_socket's; this class keeps only RingCentral's wire.
// Owned by its connection, on the connection's shard; every member runs there.
#pragma once

#include <memory>
#include <string>

#include "dialect/common/dialect_socket.h"
#include "dialect/ringcentral/rc_context.h"

namespace herald {

class rc_socket final : public dialect_socket {
 public:
  rc_socket(std::shared_ptr<rc_context> cx, ws_connection& conn, const http_request& up);

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_closed(int close_code) override;
  connection_info info() const override;

 private:
  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  bool accept_delivery(const delivery_ref& d) override;
  void write_delivery(const delivery_ref& d) override;

  void resumed(const resume_outcome& o, std::uint64_t presented);
  void start_fresh(const std::string& recovery_error, std::uint64_t presented);
  void send_details(std::uint64_t seq, const std::string& recovery_state,
                    const std::string& recovery_error);
  rc::wsc_value wsc_at(std::uint64_t seq) const;

  void handle_request(rc::client_frame f);
  void handle_subscription(const rc::client_frame& f, const rc::sub_path& sp);
  void install(const std::string& message_id, rc::subscription_record rec, subscription sub);
  // A ClientResponse (with the current wsc once a sequence was sent). answer() also gives the
  // request's in-flight slot back (for requests handled here rather than dispatched).
  void reply(const std::string& message_id, int status, const std::string& body,
             bool pause = false);
  void answer(const std::string& message_id, int status, const std::string& body,
              bool pause = false);

  std::shared_ptr<rc_context> cx_;
  std::uint64_t base_ = 0;          // the wsc sequence of seq 0 (§4.3)
  std::int64_t last_sequence_ = 0;  // highest wsc.sequence written on this socket
  bool has_sub_ = false;
  rc::subscription_record sub_;  // the current subscription as the client sees it
  std::int64_t last_text_in_ms_ = 0, last_notify_ms_ = 0;
};

}  // namespace herald
