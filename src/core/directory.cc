#include "core/directory.h"

#include <mutex>

namespace herald {

using rlock = std::shared_lock<std::shared_mutex>;
using wlock = std::unique_lock<std::shared_mutex>;

std::string directory::key2(std::string_view a, std::string_view b) {
  std::string k(a);
  k.push_back('\x1f');
  k.append(b);
  return k;
}

template <class M>
static auto find_copy(const M& m, std::string_view k) -> std::optional<typename M::mapped_type> {
  auto it = m.find(k);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

bool directory::add_tenant(const tenant_record& t) {
  wlock l(mu_);
  return tenants_.emplace(t.id, t).second;
}
std::optional<tenant_record> directory::tenant(std::string_view id) const {
  rlock l(mu_);
  return find_copy(tenants_, id);
}
bool directory::tenant_exists(std::string_view id) const {
  rlock l(mu_);
  return tenants_.find(id) != tenants_.end();
}
bool directory::in_subtree(std::string_view t, std::string_view root) const {
  rlock l(mu_);
  std::string cur(t);
  for (int depth = 0; depth < 64 && !cur.empty(); ++depth) {
    if (cur == root) return true;
    auto it = tenants_.find(cur);
    if (it == tenants_.end()) return false;
    cur = it->second.parent;
  }
  return false;
}
std::vector<tenant_record> directory::tenants() const {
  rlock l(mu_);
  std::vector<tenant_record> out;
  for (const auto& [k, v] : tenants_) out.push_back(v);
  return out;
}

void directory::put_app(const app_record& a) {
  wlock l(mu_);
  if (auto it = apps_.find(a.id); it != apps_.end()) {
    app_by_client_.erase(it->second.client_id);
    app_by_key_.erase(it->second.api_key_hash);
    // A role or scope change alters what the app may see: retire log anchors taken before.
    if (it->second.app_role != a.app_role || it->second.scopes != a.scopes) bump();
  }
  apps_[a.id] = a;
  app_by_client_[a.client_id] = a.id;
  app_by_key_[a.api_key_hash] = a.id;
}
std::optional<app_record> directory::app(std::string_view id) const {
  rlock l(mu_);
  return find_copy(apps_, id);
}
std::optional<app_record> directory::app_by_client_id(std::string_view client_id) const {
  rlock l(mu_);
  auto it = app_by_client_.find(std::string(client_id));
  return it == app_by_client_.end() ? std::nullopt : find_copy(apps_, it->second);
}
std::optional<app_record> directory::app_by_key_hash(std::string_view key_hash) const {
  rlock l(mu_);
  auto it = app_by_key_.find(std::string(key_hash));
  return it == app_by_key_.end() ? std::nullopt : find_copy(apps_, it->second);
}
bool directory::remove_app(std::string_view id) {
  wlock l(mu_);
  auto it = apps_.find(id);
  if (it == apps_.end()) return false;
  app_by_client_.erase(it->second.client_id);
  app_by_key_.erase(it->second.api_key_hash);
  apps_.erase(it);
  return true;
}
std::vector<app_record> directory::apps(std::string_view tenant) const {
  rlock l(mu_);
  std::vector<app_record> out;
  for (const auto& [k, v] : apps_)
    if (tenant.empty() || v.tenant == tenant) out.push_back(v);
  return out;
}

bool directory::user_conflicts(const user_record& u) const {
  rlock l(mu_);
  for (const auto& [k, v] : users_) {
    if (v.id == u.id || v.tenant != u.tenant) continue;
    if (v.login == u.login || v.extension_id == u.extension_id) return true;
  }
  return false;
}
void directory::put_user(const user_record& u) {
  bump();
  wlock l(mu_);
  users_[u.id] = u;
}
std::optional<user_record> directory::user(std::string_view id) const {
  rlock l(mu_);
  return find_copy(users_, id);
}
std::vector<user_record> directory::users_by_login(std::string_view login) const {
  rlock l(mu_);
  std::vector<user_record> out;
  for (const auto& [k, v] : users_)
    if (v.login == login) out.push_back(v);
  return out;
}
bool directory::remove_user(std::string_view id) {
  bump();
  wlock l(mu_);
  auto it = users_.find(id);
  if (it == users_.end()) return false;
  users_.erase(it);
  return true;
}
std::vector<user_record> directory::users(std::string_view tenant) const {
  rlock l(mu_);
  std::vector<user_record> out;
  for (const auto& [k, v] : users_)
    if (tenant.empty() || v.tenant == tenant) out.push_back(v);
  return out;
}

void directory::put_login(const login_record& lg) {
  wlock l(mu_);
  logins_[lg.id] = lg;
}
std::optional<login_record> directory::login(std::string_view id) const {
  rlock l(mu_);
  return find_copy(logins_, id);
}
std::optional<login_record> directory::update_login(std::string_view id,
                                                    const std::function<void(login_record&)>& fn) {
  wlock l(mu_);
  auto it = logins_.find(id);
  if (it == logins_.end()) return std::nullopt;
  fn(it->second);
  return it->second;
}
std::size_t directory::drop_expired_logins(std::int64_t now_ms) {
  wlock l(mu_);
  return static_cast<std::size_t>(std::erase_if(logins_, [now_ms](const auto& kv) {
    return kv.second.expires_ms != 0 && kv.second.expires_ms <= now_ms;
  }));
}

std::size_t directory::live_logins_of(std::string_view user_id, std::int64_t now_ms) const {
  std::shared_lock lk(mu_);
  std::size_t n = 0;
  for (const auto& [id, l] : logins_)
    if (l.user_id == user_id && !l.ended && (l.expires_ms == 0 || l.expires_ms > now_ms)) ++n;
  return n;
}

std::vector<std::string> directory::end_logins_of(std::string_view user_id,
                                                  std::string_view app_id) {
  wlock l(mu_);
  std::vector<std::string> ended;
  for (auto& [k, v] : logins_) {
    if (v.ended) continue;
    if ((!user_id.empty() && v.user_id == user_id) || (!app_id.empty() && v.app_id == app_id)) {
      v.ended = true;
      ended.push_back(v.id);
    }
  }
  return ended;
}

void directory::put_subject(const subject_record& s) {
  bump();
  wlock l(mu_);
  subjects_[key2(s.tenant, s.id)] = s;
}
void directory::remove_subject(std::string_view tenant, std::string_view id) {
  bump();
  wlock l(mu_);
  if (auto it = subjects_.find(key2(tenant, id)); it != subjects_.end()) subjects_.erase(it);
}
std::optional<subject_record> directory::subject(std::string_view tenant,
                                                 std::string_view id) const {
  rlock l(mu_);
  return find_copy(subjects_, key2(tenant, id));
}
std::vector<subject_record> directory::subjects_with_id(std::string_view id) const {
  rlock l(mu_);
  std::vector<subject_record> out;
  for (const auto& [k, v] : subjects_)
    if (v.id == id) out.push_back(v);
  return out;
}
std::vector<subject_record> directory::subjects(std::string_view tenant,
                                                std::string_view kind) const {
  rlock l(mu_);
  std::vector<subject_record> out;
  for (const auto& [k, v] : subjects_)
    if ((tenant.empty() || v.tenant == tenant) && (kind.empty() || v.kind == kind))
      out.push_back(v);
  return out;
}
std::optional<subject_flags> directory::flags(std::string_view tenant,
                                              std::string_view subject) const {
  rlock l(mu_);
  if (subjects_.empty()) return std::nullopt;
  auto it = subjects_.find(key2(tenant, subject));
  if (it == subjects_.end()) return std::nullopt;
  return subject_flags{it->second.kind, it->second.blocked, it->second.corrupted};
}

void directory::put_jwt(const jwt_record& j) {
  wlock l(mu_);
  jwts_[j.jti] = j;
}
std::optional<jwt_record> directory::jwt(std::string_view jti) const {
  rlock l(mu_);
  return find_copy(jwts_, jti);
}
std::vector<jwt_record> directory::jwts_of(std::string_view user_id) const {
  rlock l(mu_);
  std::vector<jwt_record> out;
  for (const auto& [k, v] : jwts_)
    if (v.user_id == user_id) out.push_back(v);
  return out;
}
bool directory::remove_jwt(std::string_view jti) {
  wlock l(mu_);
  return jwts_.erase(std::string(jti)) > 0;
}

}  // namespace herald
