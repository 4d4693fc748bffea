#include "dialect/tracker/tracker_context.h"

#include <algorithm>

#include <boost/json.hpp>

#include "api/records.h"
#include "auth/crypto.h"
#include "dialect/tracker/tracker_socket.h"

namespace herald {

bool tracker_registry::claim(const std::string& uuid, sink_ref ref) {
  std::lock_guard g(mu_);
  return by_uuid_.emplace(uuid, entry{ref, {}}).second;
}

void tracker_registry::bind_user(const std::string& uuid, const std::string& user_id) {
  std::lock_guard g(mu_);
  if (auto it = by_uuid_.find(uuid); it != by_uuid_.end()) it->second.user_id = user_id;
}

void tracker_registry::release(const std::string& uuid) {
  std::lock_guard g(mu_);
  by_uuid_.erase(uuid);
}

std::optional<sink_ref> tracker_registry::find(const std::string& uuid) const {
  std::lock_guard g(mu_);
  auto it = by_uuid_.find(uuid);
  if (it == by_uuid_.end()) return std::nullopt;
  return it->second.ref;
}

std::vector<sink_ref> tracker_registry::of_user(const std::string& user_id) const {
  std::vector<sink_ref> out;
  std::lock_guard g(mu_);
  for (const auto& [uuid, e] : by_uuid_)
    if (e.user_id == user_id) out.push_back(e.ref);
  return out;
}

void tracker_context::on_socket(sink_ref ref, std::function<void(tracker_socket&)> fn) {
  hub* h = &svc.h;
  h->on_socket_shard(ref, [h, ref, fn = std::move(fn)] {
    if (auto* s = dynamic_cast<tracker_socket*>(h->find_sink(ref.conn))) fn(*s);
  });
}

namespace tracker {

std::string login_id_of(std::string_view hash) { return "lgn_" + sha256_hex(hash); }

std::variant<live_login, int> check_hash(const services& s, std::string_view hash,
                                         std::int64_t now_ms) {
  if (!valid_hash(hash)) return wrong_hash;
  auto l = s.dir.login(login_id_of(hash));
  if (!l || l->ended || l->dialect != "tracker" || (l->expires_ms != 0 && l->expires_ms <= now_ms))
    return session_ended;
  auto u = s.dir.user(l->user_id);
  if (!u || u->blocked) return session_ended;
  return live_login{std::move(*l), std::move(*u)};
}

bool touch_due(const tracker_context& cx, const login_record& l, std::int64_t now_ms) {
  const std::int64_t last_use = l.expires_ms - cx.cfg->hash_ttl_s * 1000;
  return now_ms - last_use >= 60000;
}

void touch(tracker_context& cx, const login_record& l, std::int64_t now_ms) {
  if (!touch_due(cx, l, now_ms)) return;
  const std::int64_t until = now_ms + cx.cfg->hash_ttl_s * 1000;
  auto updated = cx.svc.dir.update_login(l.id, [until](login_record& r) {
    if (!r.ended) r.expires_ms = std::max(r.expires_ms, until);
  });
  if (updated && !updated->ended) (void)persist(cx.svc.st, *updated);
}

tstatus status_of(const directory& d, const user_record& user, std::int64_t id) {
  const std::string key = std::to_string(id);
  auto r = d.subject(user.tenant, key);
  if (!r || r->kind != "tracker" || r->corrupted) return tstatus::unknown;
  if (user.trackers &&
      std::find(user.trackers->begin(), user.trackers->end(), key) == user.trackers->end())
    return tstatus::disallowed;
  return r->blocked ? tstatus::blocked : tstatus::normal;
}

std::int64_t source_id_of(const subject_record& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.attrs, ec);
  if (!ec && v.is_object()) {
    if (const auto* s = v.get_object().if_contains("source_id"); s != nullptr && s->is_int64())
      return s->get_int64();
  }
  return parse_tracker_id(r.id).value_or(0);
}

principal principal_of(const user_record& u) {
  principal p;
  p.kind = principal_kind::user;
  p.tenant = u.tenant;
  p.user_id = u.id;
  p.scopes = scope_subscribe;
  return p;
}

}  // namespace tracker
}  // namespace herald
