// The tracker socket (tracker.md §3-§5) for one Atmosphere WebSocket: the handshake frame, `X`
// heartbeats both ways, subscribe/unsubscribe with per-tracker statuses and snapshots, state and
// lifecycle events, logout frames when a hash ends, error frames. The lifecycle (admission,
// sessions, ordered acks, held output, closing) is dialect_socket's.
//
// Admission: the socket is admitted at open with a placeholder principal (no tenant, no user)
// holding a connection slot of its own, so that it is listed and can be closed before it binds;
// its first successful subscribe binds it to that hash's user and opens its session.
// Owned by its connection, on the connection's shard; every member runs there. The context
// outlives every socket.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dialect/common/dialect_socket.h"
#include "dialect/tracker/tracker_context.h"

namespace herald {

class tracker_socket final : public dialect_socket {
 public:
  tracker_socket(tracker_context& cx, ws_connection& conn, const http_request& up);

  void on_open() override;
  std::int64_t on_tick(std::int64_t now_ms) override;
  void on_closed(int close_code) override;
  connection_info info() const override;
  // An admin edit of the bound user (allow-list, time zone): re-read from the directory; newly
  // excluded trackers are dropped (§6). The socket's own principal and session stay.
  void on_rights(const std::optional<principal>& now) override;

  // Called through tracker_context::on_socket.
  // The login session `login_id` ended (or, empty, every one of the bound user's): one logout
  // frame per such hash held, and its subscriptions go.
  void logout(const std::string& login_id);
  // The bound user's record as it is now (allow-list, time zone): newly excluded trackers go.
  void user_changed(const user_record& u);
  // A close request named this socket's tracking id: subscriptions go, close 1000.
  void close_requested();

  const std::string& tracking_id() const { return uuid_; }

 private:
  void on_frame(std::string_view text, bool binary) override;
  wire_close close_table(close_reason why, const std::string& detail) const override;
  bool accept_delivery(const delivery_ref& d) override;
  void write_delivery(const delivery_ref& d) override;
  bool kept_open_on(const kick& k) override;

  void send_payload(std::string_view payload);
  void send_error(tracker::action a, int code, std::string_view data_json);
  bool take_frame_token(std::int64_t now);
  void handle(const tracker::request& r, std::int64_t now);
  void subscribe(const tracker::request& r, const tracker::live_login& live);
  void unsubscribe(const tracker::request& r, const std::string& login_id);
  void bind(const tracker::live_login& live);
  // Installs the subscription for the held trackers; `snapshot` names the trackers whose
  // retained states go first, `ack` is sent before any event of it.
  void resubscribe(std::optional<std::vector<std::string>> snapshot, std::string ack);
  void touch_logins(std::int64_t now, bool force);

  tracker_context& cx_;
  std::string uuid_;
  bool track_size_ = false;
  bool claimed_ = false;
  // Bound user (empty until the first successful subscribe).
  std::string user_id_, user_login_, time_zone_ = "UTC";
  std::optional<std::vector<std::string>> allow_;
  // Held trackers (normal and blocked) -> the login session they are held under.
  std::map<std::string, std::string> held_;
  // Login sessions with a logout subscription on this socket -> their last known record.
  std::map<std::string, login_record> logins_;
  std::int64_t last_touch_ms_ = 0;
  std::int64_t rate_second_ = 0;
  std::size_t rate_count_ = 0;
  std::int64_t last_rate_error_ms_ = 0;
  // The heartbeat the handshake announced, and its timeout: a socket keeps them for life (a
  // SIGHUP's new values apply to sockets opened after it).
  const std::int64_t heartbeat_interval_ms_, heartbeat_timeout_ms_;
};

}  // namespace herald
