#include "dialect/tracker/tracker_socket.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "api/json_util.h"
#include "core/time_zone.h"

namespace herald {
namespace {

using tracker::action;

// No resume on this dialect (§5.6): a detached session is dropped at once, so it keeps no ring.
session_options no_recovery() {
  session_options o;
  o.ring_capacity = 1;
  o.recovery_window_ms = 1;
  o.log_replay = false;
  return o;
}

constexpr std::size_t subjects_per_filter = 1000;

// The text of a query parameter or header of the upgrade ("" when absent).
std::string upgrade_param(const http_request& up, std::string_view name) {
  if (auto v = query_param(up.query, name)) return *v;
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (const auto* h = up.header(lower)) return *h;
  return {};
}

}  // namespace

tracker_socket::tracker_socket(tracker_context& cx, ws_connection& conn, const http_request& up)
    : dialect_socket(cx.svc, conn, up, "tracker"),
      cx_(cx),
      heartbeat_interval_ms_(cx.cfg->heartbeat_interval_ms),
      heartbeat_timeout_ms_(cx.cfg->heartbeat_timeout_ms) {}

// ---- the close table (§3, §7)

wire_close tracker_socket::close_table(close_reason why, const std::string& detail) const {
  switch (why) {
    case close_reason::replaced:
    case close_reason::admin:
    case close_reason::revoked:
    case close_reason::absolute:
    case close_reason::seq_exhausted:
    case close_reason::auth_timeout:
      return {1000, detail, {}};
    case close_reason::drain:
      return {1012, "service restart", {}};
    case close_reason::slow_consumer:
      return {4010, "slow consumer", {}};
    case close_reason::heartbeat:
    case close_reason::idle:
      return {4008, "heartbeat timeout", {}};
    case close_reason::auth_failed:
    case close_reason::forbidden:
    case close_reason::too_many:
    case close_reason::protocol:
      return {1008, detail, {}};
  }
  return {1011, "internal error", {}};
}

// ---- open: admission, tracking id, handshake

void tracker_socket::on_open() {
  track_size_ = upgrade_param(upgrade_, "X-Atmosphere-TrackMessageSize") == "true";
  const std::string asked = upgrade_param(upgrade_, "X-Atmosphere-tracking-id");
  upgrade_.keep_origin_only();
  // A placeholder principal with a connection slot of its own (its login_session is this
  // socket's), so that it is listed and closable before a subscribe binds it to a user.
  principal p;
  p.kind = principal_kind::user;
  p.login_session = "trk_" + con_id_;
  p.scopes = scope_subscribe;
  if (!admit(std::move(p), admit_options{1, false})) return;
  // The asked tracking id when well-formed and held by no open socket (§3), else a new one.
  if (tracker::valid_uuid(asked) && cx_.sockets.claim(asked, self_ref())) {
    uuid_ = asked;
  } else {
    do uuid_ = tracker::new_uuid();
    while (!cx_.sockets.claim(uuid_, self_ref()));
  }
  claimed_ = true;
  send_payload(tracker::handshake(uuid_, heartbeat_interval_ms_));
}

void tracker_socket::on_closed(int close_code) {
  if (claimed_) cx_.sockets.release(uuid_);
  claimed_ = false;
  dialect_socket::on_closed(close_code);
}

connection_info tracker_socket::info() const {
  connection_info c = dialect_socket::info();
  c.login = user_login_;  // null in the listing until bound
  c.extras_json = "{\"tracking_id\":" + json_quote(uuid_) + "}";
  return c;
}

// ---- output

void tracker_socket::send_payload(std::string_view payload) {
  send_text(tracker::frame(payload, track_size_));
}

void tracker_socket::send_error(action a, int code, std::string_view data_json) {
  send_payload(tracker::error_frame(a, code, data_json));
}

// ---- client frames (§8: size is transport's 1009; then rate, format, hash, user, shape, counts)

bool tracker_socket::take_frame_token(std::int64_t now) {
  const std::int64_t second = now / 1000;
  if (second != rate_second_) {
    rate_second_ = second;
    rate_count_ = 0;
  }
  return ++rate_count_ <= cx_.cfg->max_frames_per_second;
}

void tracker_socket::on_frame(std::string_view text, bool binary) {
  if (closed()) return;
  const std::int64_t now = dialect_socket::now();
  if (!take_frame_token(now)) {
    if (now - last_rate_error_ms_ >= 1000) {
      last_rate_error_ms_ = now;
      send_error(action::none, tracker::rate_limited,
                 "\"more than max_frames_per_second frames; dropped\"");
    }
    return;
  }
  if (binary) return send_error(action::none, tracker::wrong_format, "\"binary frame\"");
  if (tracker::is_heartbeat(text)) return;  // proves life only
  handle(tracker::decode(text, cx_.cfg->max_trackers_per_request), now);
}

void tracker_socket::handle(const tracker::request& r, std::int64_t now) {
  if (r.error == tracker::wrong_format)
    return send_error(action::none, r.error, json_quote(r.detail));
  if (r.error != 0) return send_error(r.act, r.error, r.echo);
  auto checked = tracker::check_hash(svc_, r.hash, now);
  if (const int* code = std::get_if<int>(&checked)) return send_error(r.act, *code, r.echo);
  auto& live = std::get<tracker::live_login>(checked);
  if (!user_id_.empty() && live.user.id != user_id_)
    return send_error(r.act, tracker::not_permitted, r.echo);
  if (r.late_error != 0) return send_error(r.act, r.late_error, r.echo);
  if (tracker::touch_due(cx_, live.login, now)) {
    conn_.offload([cx = &cx_, l = live.login, now] { tracker::touch(*cx, l, now); }, [] {});
  }
  if (r.act == action::subscribe) return subscribe(r, live);
  unsubscribe(r, live.login.id);
}

void tracker_socket::bind(const tracker::live_login& live) {
  principal p = tracker::principal_of(live.user);
  p.login_session = who_.login_session;  // the slot admit() took is released under this key
  who_ = std::move(p);
  user_id_ = live.user.id;
  user_login_ = live.user.login;
  cx_.sockets.bind_user(uuid_, user_id_);
  open_session(no_recovery());
}

void tracker_socket::subscribe(const tracker::request& r, const tracker::live_login& live) {
  std::vector<std::pair<std::int64_t, tracker::tstatus>> statuses;
  statuses.reserve(r.trackers.size());
  std::size_t added = 0;
  for (std::int64_t id : r.trackers) {
    const tracker::tstatus st = tracker::status_of(svc_.dir, live.user, id);
    statuses.emplace_back(id, st);
    if ((st == tracker::tstatus::normal || st == tracker::tstatus::blocked) &&
        held_.count(std::to_string(id)) == 0)
      ++added;
  }
  if (held_.size() + added > cx_.cfg->max_trackers_per_socket)
    return send_error(r.act, tracker::too_large, r.echo);
  if (user_id_.empty()) bind(live);
  time_zone_ = live.user.time_zone;
  allow_ = live.user.trackers;
  logins_[live.login.id] = live.login;
  std::vector<std::string> snapshot;
  for (const auto& [id, st] : statuses) {
    if (st != tracker::tstatus::normal && st != tracker::tstatus::blocked) continue;
    std::string key = std::to_string(id);
    held_[key] = live.login.id;
    if (st == tracker::tstatus::normal) snapshot.push_back(std::move(key));
  }
  resubscribe(std::move(snapshot), tracker::subscribe_reply(statuses));
}

void tracker_socket::unsubscribe(const tracker::request& r, const std::string& login_id) {
  if (user_id_.empty()) {  // never bound: nothing held, but the reply and the logout binding
    return send_payload(tracker::unsubscribe_reply(r.trackers));
  }
  (void)login_id;
  for (std::int64_t id : r.trackers) held_.erase(std::to_string(id));
  resubscribe(std::nullopt, tracker::unsubscribe_reply(r.trackers));
}

void tracker_socket::resubscribe(std::optional<std::vector<std::string>> snapshot,
                                 std::string ack) {
  if (closed() || session_.id.empty()) return;
  subscription sub;
  sub.id = "sub_" + uuid_;
  sub.snapshot = true;  // an unblocked tracker's state follows its `unblock` (§5.4)
  filter_limits limits;
  limits.max_subjects_per_filter = subjects_per_filter;
  std::vector<std::string> chunk;
  auto flush = [&] {
    filter_spec spec;
    spec.topic = "/**";
    spec.types = std::vector<std::string>{"state", "lifecycle"};
    spec.subjects = std::move(chunk);
    chunk.clear();
    if (auto f = filter::compile(spec, who_.tenant, limits)) sub.filters.push_back(std::move(*f));
  };
  for (const auto& [id, login] : held_) {
    chunk.push_back(id);
    if (chunk.size() == subjects_per_filter) flush();
  }
  if (!chunk.empty()) flush();
  const bool with_snapshot = snapshot.has_value();
  install_subscription(
      std::move(sub), with_snapshot,
      [this, ack = std::move(ack)](const session&) -> hub::task {
        if (ack.empty()) return {};
        return [this, ack] { send_payload(ack); };
      },
      {}, std::move(snapshot));
}

// ---- deliveries

bool tracker_socket::accept_delivery(const delivery_ref& d) {
  // Only what is held now: a tracker unsubscribed, dropped or logged out while its events were
  // on their way is not written (§4: nothing about them after the reply).
  return d.ev != nullptr && held_.count(d.ev->subject) != 0;
}

void tracker_socket::write_delivery(const delivery_ref& d) {
  const event& e = *d.ev;
  std::string head;
  if (e.type == "state") {
    head = tracker::state_head(format_local_time(coarse_now(), time_zone_));
  } else if (e.type == "lifecycle") {
    head = std::string(tracker::lifecycle_head);
  } else {
    return;
  }
  if (track_size_) {
    // The data's UTF-16 length is counted once per event (shared by every socket).
    const std::string& units = e.rendered(cx_.render_slot, [](const event& ev) {
      return std::to_string(tracker::utf16_units(ev.data));
    });
    const std::size_t n = head.size() + std::stoull(units) + tracker::event_tail.size();
    head = std::to_string(n) + "|" + head;
  }
  struct owner {
    const event_ptr& ev;
  } own{d.ev};
  const frame_parts parts{head, e.data, tracker::event_tail,
                          [](const frame_parts& p, const void* ctx) {
                            const auto& o = *static_cast<const owner*>(ctx);
                            return out_frame{std::string(p.head),
                                             std::shared_ptr<const std::string>(o.ev, &o.ev->data),
                                             std::string(p.tail)};
                          },
                          &own};
  last_out_ms_ = coarse_now();
  send_parts(parts);
  // After `corrupt` the socket drops the tracker (§5.4): nothing of it follows.
  if (e.type == "lifecycle" && e.data.find("\"corrupt\"") != std::string::npos &&
      held_.erase(e.subject) != 0)
    resubscribe(std::nullopt, {});
}

// ---- the core's and the context's calls

bool tracker_socket::kept_open_on(const kick& k) {
  if (k.why != close_reason::revoked || user_id_.empty()) return false;
  logout({});  // every login session of the user ended (password, block, deletion)
  return true;
}

void tracker_socket::logout(const std::string& login_id) {
  if (closed()) return;
  bool dropped = false;
  for (auto it = logins_.begin(); it != logins_.end();) {
    if (!login_id.empty() && it->first != login_id) {
      ++it;
      continue;
    }
    send_payload(tracker::logout_frame);
    for (auto h = held_.begin(); h != held_.end();) {
      if (h->second == it->first) {
        h = held_.erase(h);
        dropped = true;
      } else {
        ++h;
      }
    }
    it = logins_.erase(it);
  }
  if (dropped) resubscribe(std::nullopt, {});
}

void tracker_socket::on_rights(const std::optional<principal>& now) {
  (void)now;  // the core's view of the user; the dialect re-reads the record it needs
  if (closed() || user_id_.empty()) return;
  if (auto u = svc_.dir.user(user_id_)) user_changed(*u);
}

void tracker_socket::user_changed(const user_record& u) {
  if (closed() || u.id != user_id_) return;
  time_zone_ = u.time_zone;
  allow_ = u.trackers;
  if (!allow_) return;
  bool dropped = false;
  for (auto it = held_.begin(); it != held_.end();) {
    if (std::find(allow_->begin(), allow_->end(), it->first) == allow_->end()) {
      it = held_.erase(it);
      dropped = true;
    } else {
      ++it;
    }
  }
  if (dropped) resubscribe(std::nullopt, {});
}

void tracker_socket::close_requested() {
  held_.clear();
  logins_.clear();
  close_with(close_reason::admin, "closed by the client's close request");
}

// ---- timers

void tracker_socket::touch_logins(std::int64_t now, bool force) {
  if (!force && now - last_touch_ms_ < 60000) return;
  last_touch_ms_ = now;
  std::vector<std::string> ids;
  for (const auto& [id, l] : logins_) ids.push_back(id);
  if (ids.empty()) return;
  // An open socket holding subscriptions under a hash keeps it alive (§2).
  conn_.offload(
      [cx = &cx_, ids = std::move(ids), now] {
        for (const auto& id : ids)
          if (auto l = cx->svc.dir.login(id)) tracker::touch(*cx, *l, now);
      },
      [] {});
}

std::int64_t tracker_socket::on_tick(std::int64_t now) {
  if (closed()) return 0;
  deadlines d(now);
  d.expire_at(last_in_ms_ + heartbeat_timeout_ms_, close_reason::heartbeat);
  if (d.expired()) return finish_tick(d);
  const std::int64_t interval = heartbeat_interval_ms_;
  if (now >= last_out_ms_ + interval) send_now(tracker::frame(tracker::heartbeat, track_size_));
  d.wake_at(last_out_ms_ + interval);
  touch_logins(now, false);
  d.wake_at(last_touch_ms_ + 60000);
  return finish_tick(d);
}

}  // namespace herald
