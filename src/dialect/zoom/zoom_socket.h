// One Zoom-style event socket (zoom.md §3): `GET {prefix}/ws?subscriptionId=…&access_token=…`,
// always upgraded; the token, the stored subscription and the limits are checked after the
// upgrade and a failure is reported in-band (build_connection success:false) before the close.
// On success the socket is a core session of the token's app with the subscription's filter
// and tenant set, registered before the success frame; heartbeats are answered, event frames
// carry the Zoom webhook body as a string; a newer socket of the same subscription replaces
// this one. Lifecycle (admission, sessions, ordered acks, output, closing) is dialect_socket's.
// Owned by its connection, on the connection's shard; every member runs there (apply() too:
// the admin calls reach it through hub::on_socket_shard).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "dialect/common/dialect_socket.h"
#include "dialect/zoom/zoom_context.h"

namespace herald {

class zoom_socket final : public dialect_socket {
 public:
  zoom_socket(std::shared_ptr<zoom_context> cx, ws_connection& conn, const http_request& up);
  ~zoom_socket() override;

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_closed(int close_code) override;
  connection_info info() const override;

  // An admin PATCH changed the subscription: its new filter and tenant set apply at once.
  void apply(const zoom_subscription& rec);

 private:
  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  bool accept_delivery(const delivery_ref& d) override;
  void write_delivery(const delivery_ref& d) override;

  // The stored subscription was read (or the store failed): the remaining checks of §3.2.
  void validated(principal who, const result<std::optional<zoom_subscription>>& rec);
  // Opens the session with `sub` and sends the success frame once it is installed.
  void start_fresh(subscription sub, recovery_error failed);
  void send_success(std::uint64_t seq, bool recovered, recovery_error failed);
  // The frame-rate bucket (client_frames_per_second over rate_window_s): false when empty.
  bool take_frame_token();

  std::shared_ptr<zoom_context> cx_;
  std::string sub_id_;
  bool herald_ = false;  // herald=1: extras in `header` (§3.7)
  std::string resume_;   // herald=1&resume=…
  std::uint64_t last_seq_ = 0;
  bool built_ = false;                // the success frame is on its way: no failure frame after it
  std::size_t early_heartbeats_ = 0;  // heartbeats that came during validation
  std::shared_ptr<std::atomic<bool>> superseded_;  // set by the socket that replaces this one
  bool registered_ = false;                        // in cx_->sockets under sub_id_
  std::int64_t token_exp_ms_ = 0;
  double frame_tokens_ = 0;
  std::int64_t frame_tokens_at_ = 0;
};

}  // namespace herald
