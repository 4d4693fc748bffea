// The echo dialect's socket, on the shared socket core: the smallest complete dialect, to prove
// that a new protocol needs only its wire. Its protocol (text lines):
//   upgrade with `Authorization: Bearer <native API key or access token>` -> "welcome <session>"
//   "sub <topic>"  -> "ack <topic>", then "event <seq> <topic>" for each matching event
//   "ping"         -> "pong";  anything else is echoed back as it came
// Close codes: the native ones (4001 revoked/auth, 4010 slow consumer, 1012 drain, ...).
// Test-only. Owned by its connection's shard; called only on its thread.
#pragma once

#include "dialect/common/dialect_socket.h"

namespace herald::echo {

class echo_socket final : public dialect_socket {
 public:
  echo_socket(services& svc, ws_connection& conn, const http_request& up, std::int64_t heartbeat_s)
      : dialect_socket(svc, conn, up, "echo"), heartbeat_ms_(heartbeat_s * 1000) {}

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;

 private:
  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  void write_delivery(const delivery_ref& d) override;

  std::int64_t heartbeat_ms_;
};

}  // namespace herald::echo
