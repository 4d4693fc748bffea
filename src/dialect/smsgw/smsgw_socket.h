// The smsgw WebSocket (smsgw.md §2) for one socket: in-band auth by the first frame (API key or
// ws token), auth_ok after the implicit subscription is installed, sms_status / sms_inbound
// frames, ping/pong, the heartbeat and its timeouts. The lifecycle (admission, sessions,
// ordered acks, held output, closing) is dialect_socket's; this class keeps only the smsgw wire.
// Owned by its connection, on the connection's shard; every member runs there. The context
// (smsgw_context) outlives every socket.
#pragma once

#include <cstdint>
#include <string>

#include "dialect/common/dialect_socket.h"
#include "dialect/smsgw/smsgw_context.h"

namespace herald {

class smsgw_socket final : public dialect_socket {
 public:
  smsgw_socket(smsgw_context& cx, ws_connection& conn, const http_request& up);

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_closed(int close_code) override;

  // The implicit subscription every smsgw socket holds (§4.1), compiled for `tenant`.
  static filter_spec implicit_filter();

 private:
  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  void write_delivery(const delivery_ref& d) override;

  void authenticate(std::string credential, bool ws_token);
  void authenticated(result<principal> p);
  // Refuses the first frame: auth_error `text` then close 1008 (counted when `count` is set).
  void refuse(close_reason why, std::string_view text, bool count,
              error_cause cause = error_cause::unspecified);
  bool take_message_token();

  smsgw_context& cx_;
  std::string addr_;               // the client's address (the failed-auth block's key)
  std::string slot_key_;           // the key whose socket slot this socket holds, if any
  std::int64_t authed_ms_ = 0;     // when auth_ok was queued (the heartbeat counts from it)
  std::int64_t last_ping_ms_ = 0;  // the last heartbeat sent
  double msg_tokens_ = 0;          // client_msg_rate bucket
  std::int64_t msg_tokens_at_ = 0;
};

}  // namespace herald
