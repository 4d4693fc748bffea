// The native WebSocket protocol (docs/protocol.md, socket part) for one socket: authentication
// (query, header or in-band), welcome, subscribe/unsubscribe/request/ping, event frames,
// heartbeats and timeouts, resume. The lifecycle (admission, sessions, ordered acks, paced
// output, closing) is dialect_socket's; this class keeps only the native wire.
// Owned by its connection, on the connection's shard; every member runs there.
#pragma once

#include <optional>
#include <string>

#include "dialect/common/dialect_socket.h"
#include "dialect/native/native_codec.h"

namespace herald {

// What the native dialect's sockets share, built once at install.
struct native_context {
  services& svc;
  const router& routes;     // the native REST routes (request-over-socket reaches only these)
  std::size_t render_slot;  // event::rendered() slot of the native event body
};

class native_socket final : public dialect_socket {
 public:
  native_socket(const native_context& cx, ws_connection& conn, const http_request& up);

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;

 private:
  struct auth_request {
    std::string credential;
    bool ws_token = false;  // from the query string or in-band: a ws token or an access token
    std::string resume;
    std::uint64_t last_seq = 0;
  };

  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  void write_delivery(const delivery_ref& d) override;

  void start_auth(const auth_request& r);
  void authenticated(result<principal> p, const auth_request& r);
  void send_welcome(const resume_outcome* recovered, recovery_error failed);
  void handle(const native_msg& msg);
  void handle_subscribe(const native_msg& msg);
  void handle_unsubscribe(const native_msg& msg);
  void handle_request(const native_msg& msg);
  bool take_request_slot(const std::string& id);
  void send_error(const std::string& id, errc code, const std::string& message);

  const native_context& cx_;
  const live<native_limits>& limits_;  // read once per operation
  std::int64_t last_activity_ms_ = 0;  // a request or an event, either way (idle timeout)
  std::int64_t last_ping_ms_ = 0;      // last heartbeat ping sent
  std::string query_resume_;           // resume/last_seq from the upgrade's query, kept for
  std::uint64_t query_last_seq_ = 0;   // an in-band auth that names none itself
  // The event frame's head, reused: the subscription part is rendered once per subscription.
  const std::string* quoted_sub_for_ = nullptr;
  std::string head_tail_;  // ,"subscription":ID,"event":
  std::string head_;
};

}  // namespace herald
