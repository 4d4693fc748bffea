#include "api/records.h"

#include <set>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/filter_json.h"
#include "core/clock.h"

namespace herald {
namespace json = boost::json;
namespace {

std::string str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}
bool flag(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_bool() && v->get_bool();
}
std::int64_t num(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v != nullptr && v->is_int64() ? v->get_int64() : 0;
}
json::value opt_list(const std::optional<std::vector<std::string>>& l) {
  if (!l) return nullptr;
  json::array a;
  for (const auto& s : *l) a.emplace_back(s);
  return a;
}
std::optional<std::vector<std::string>> read_list(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  if (v == nullptr || !v->is_array()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : v->get_array())
    if (e.is_string()) out.emplace_back(e.get_string());
  return out;
}
std::string key2(std::string_view a, std::string_view b) {
  return std::string(a) + "/" + std::string(b);
}
status put(store& st, std::string_view kind, std::string_view key, const json::object& o) {
  return st.put_record(kind, key, json::serialize(o));
}

}  // namespace

json::object stored_json(const tenant_record& r) {
  return {{"id", r.id},
          {"parent", r.parent.empty() ? json::value(nullptr) : json::value(r.parent)},
          {"created_ms", r.created_ms}};
}
json::object admin_json(const tenant_record& r) {
  return {{"id", r.id},
          {"parent", r.parent.empty() ? json::value(nullptr) : json::value(r.parent)},
          {"created_at", format_rfc3339_ms(r.created_ms)}};
}

json::object stored_json(const app_record& r) {
  json::object o = admin_json(r);  // the admin view plus the secrets' hashes, time in ms
  o.erase("created_at");
  o["secret_hash"] = r.secret_hash;
  o["api_key_hash"] = r.api_key_hash;
  o["created_ms"] = r.created_ms;
  return o;
}
json::object admin_json(const app_record& r) {
  json::array scopes;
  for (auto& s : scope_names(r.scopes)) scopes.emplace_back(s);
  return {{"id", r.id},
          {"tenant", r.tenant},
          {"name", r.name},
          {"role", role_name(r.app_role)},
          {"scopes", scopes},
          {"client_id", r.client_id},
          {"api_key_format", r.api_key_format},
          {"created_at", format_rfc3339_ms(r.created_ms)}};
}

json::object stored_json(const user_record& r) {
  json::object o = admin_json(r);
  o["password_hash"] = r.password_hash;
  o["created_ms"] = r.created_ms;
  return o;
}
json::object admin_json(const user_record& r) {
  return {{"id", r.id},
          {"tenant", r.tenant},
          {"login", r.login},
          {"name", r.name},
          {"blocked", r.blocked},
          {"extension_id", r.extension_id},
          {"extension_number", r.extension_number},
          {"admin", r.admin},
          {"time_zone", r.time_zone},
          {"trackers", opt_list(r.trackers)},
          {"password_set", !r.password_hash.empty()},
          {"created_at", format_rfc3339_ms(r.created_ms)}};
}

json::object stored_json(const login_record& r) {
  return {{"id", r.id},
          {"tenant", r.tenant},
          {"user_id", r.user_id},
          {"app_id", r.app_id},
          {"dialect", r.dialect},
          {"created_ms", r.created_ms},
          {"expires_ms", r.expires_ms},
          {"ended", r.ended},
          {"counter", r.counter}};
}

json::object stored_json(const subject_record& r) {
  json::object o = admin_json(r);
  o["created_ms"] = r.created_ms;
  return o;
}
json::object admin_json(const subject_record& r) {
  boost::system::error_code ec;
  json::value attrs = json::parse(r.attrs, ec);
  if (ec) attrs = json::object{};
  return {{"id", r.id},
          {"tenant", r.tenant},
          {"kind", r.kind},
          {"label", r.label},
          {"attrs", attrs},
          {"blocked", r.blocked},
          {"corrupted", r.corrupted},
          {"created_at", format_rfc3339_ms(r.created_ms)}};
}

json::object stored_json(const jwt_record& r) {
  return {{"jti", r.jti},
          {"user_id", r.user_id},
          {"client_id", r.client_id},
          {"created_ms", r.created_ms},
          {"expires_ms", r.expires_ms ? json::value(*r.expires_ms) : json::value(nullptr)}};
}

status persist(store& st, const tenant_record& r) {
  return put(st, "tenant", r.id, stored_json(r));
}
status persist(store& st, const app_record& r) { return put(st, "app", r.id, stored_json(r)); }
status persist(store& st, const user_record& r) { return put(st, "user", r.id, stored_json(r)); }
status persist(store& st, const login_record& r) { return put(st, "login", r.id, stored_json(r)); }
status persist(store& st, const subject_record& r) {
  return put(st, "subject", key2(r.tenant, r.id), stored_json(r));
}
status persist(store& st, const jwt_record& r) { return put(st, "jwt", r.jti, stored_json(r)); }

std::string subject_record_key(std::string_view tenant, std::string_view id) {
  return key2(tenant, id);
}

append_record subject_append_record(const subject_record& r) {
  return append_record{
      "subject", key2(r.tenant, r.id),
      [json = json::serialize(stored_json(r))](const std::vector<event_ptr>&) { return json; }};
}

json::object stored_json(const session_state& s) {
  const principal& p = s.who;
  json::object who{{"kind", p.kind == principal_kind::app ? "app" : "user"},
                   {"tenant", p.tenant},
                   {"app_id", p.app_id},
                   {"role", role_name(p.app_role)},
                   {"scopes", p.scopes},
                   {"via_api_key", p.via_api_key},
                   {"user_id", p.user_id},
                   {"login_session", p.login_session},
                   {"extension_id", p.extension_id},
                   {"user_admin", p.user_admin},
                   {"trackers", opt_list(p.trackers)}};
  json::object o{{"id", s.id},
                 {"resume_token", s.resume_token},
                 {"resume_hash", s.resume_hash},
                 {"exact", s.exact},
                 {"dialect", s.dialect},
                 {"who", who},
                 {"seq", s.seq},
                 {"seq_base", s.seq_base},
                 {"anchor_valid", s.anchor_valid},
                 {"anchor_seq", s.anchor_seq},
                 {"anchor_offset", s.anchor_offset},
                 {"processed_offset", s.processed_offset},
                 {"ring_capacity", s.ring_capacity},
                 {"recovery_window_ms", s.recovery_window_ms},
                 {"log_replay", s.log_replay}};
  if (s.has_sub) {
    json::array filters;
    for (const auto& f : s.filters) filters.push_back(filter_json(f));
    o["sub"] = json::object{{"id", s.sub_id},
                            {"filters", filters},
                            {"snapshot", s.snapshot},
                            {"tenant_root", s.tenants.root},
                            {"subtree", s.tenants.subtree}};
  }
  return o;
}

std::optional<session_state> parse_session_state(const json::object& o) {
  session_state s;
  s.id = str(o, "id");
  s.resume_token = str(o, "resume_token");
  s.resume_hash = str(o, "resume_hash");
  s.exact = !o.contains("exact") || flag(o, "exact");
  s.dialect = str(o, "dialect");
  const auto* who = o.if_contains("who");
  if (s.id.empty() || (s.resume_token.empty() && s.resume_hash.empty()) || who == nullptr ||
      !who->is_object())
    return std::nullopt;
  const auto& w = who->as_object();
  principal& p = s.who;
  p.kind = str(w, "kind") == "user" ? principal_kind::user : principal_kind::app;
  p.tenant = str(w, "tenant");
  p.app_id = str(w, "app_id");
  p.app_role = parse_role(str(w, "role")).value_or(role::app);
  p.scopes = static_cast<std::uint32_t>(num(w, "scopes"));
  p.via_api_key = flag(w, "via_api_key");
  p.user_id = str(w, "user_id");
  p.login_session = str(w, "login_session");
  p.extension_id = str(w, "extension_id");
  p.user_admin = flag(w, "user_admin");
  p.trackers = read_list(w, "trackers");
  auto u64 = [&](std::string_view k) {
    const auto* v = o.if_contains(k);
    if (v == nullptr) return std::uint64_t{0};
    if (v->is_uint64()) return v->get_uint64();
    return v->is_int64() && v->get_int64() >= 0 ? static_cast<std::uint64_t>(v->get_int64()) : 0;
  };
  s.seq = u64("seq");
  s.seq_base = u64("seq_base");
  s.anchor_valid = flag(o, "anchor_valid");
  s.anchor_seq = u64("anchor_seq");
  s.anchor_offset = num(o, "anchor_offset");
  s.processed_offset = num(o, "processed_offset");
  s.ring_capacity = static_cast<std::size_t>(u64("ring_capacity"));
  s.recovery_window_ms = num(o, "recovery_window_ms");
  s.log_replay = !o.contains("log_replay") || flag(o, "log_replay");
  if (const auto* sub = o.if_contains("sub"); sub != nullptr && sub->is_object()) {
    const auto& so = sub->as_object();
    s.has_sub = true;
    s.sub_id = str(so, "id");
    s.snapshot = flag(so, "snapshot");
    s.tenants.root = str(so, "tenant_root");
    s.tenants.subtree = flag(so, "subtree");
    if (const auto* fl = so.if_contains("filters"); fl != nullptr && fl->is_array()) {
      for (const auto& f : fl->get_array()) {
        auto spec = parse_filter_json(f, "filter");
        if (!spec) return std::nullopt;
        s.filters.push_back(std::move(*spec));
      }
    }
  }
  return s;
}

session_record_writer::session_record_writer(store& st,
                                             std::function<void(const std::string&)> on_error,
                                             std::string node)
    : st_(st), on_error_(std::move(on_error)), node_(std::move(node)), thread_([this] { run(); }) {}

session_record_writer::~session_record_writer() { stop(); }

void session_record_writer::write(const std::string& id, std::optional<session_state> state,
                                  std::function<void()> done) {
  {
    std::lock_guard l(mu_);
    queue_.push_back(item{id, std::move(state), std::move(done)});
  }
  cv_.notify_one();
}

void session_record_writer::stop() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void session_record_writer::run() {
  for (;;) {
    std::vector<item> batch;
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is written
      batch.swap(queue_);
    }
    std::vector<record_write> writes;
    writes.reserve(batch.size());
    for (const item& it : batch) {
      if (!it.state) {
        writes.push_back({it.id, std::nullopt});
        continue;
      }
      json::object o = stored_json(*it.state);
      if (!node_.empty()) o["node"] = node_;
      writes.push_back({it.id, json::serialize(o)});
    }
    if (status r = st_.write_records("session", std::move(writes)); !r && on_error_)
      on_error_(std::to_string(batch.size()) + " session records not stored: " + r.err().message);
    for (const item& it : batch)
      if (it.done) it.done();  // the acks go out either way; a failure is logged
  }
}

status persist_sessions(store& st, const std::vector<session_state>& sessions) {
  std::set<std::string, std::less<>> live;
  for (const auto& s : sessions) live.insert(s.id);
  auto old = st.load_records("session");
  if (!old) return old.err();
  // One transaction: a drain with many sessions costs one commit, not one per session.
  std::vector<record_write> writes;
  for (const auto& r : *old)
    if (!live.contains(r.key)) writes.push_back({r.key, std::nullopt});
  for (const auto& s : sessions) writes.push_back({s.id, json::serialize(stored_json(s))});
  return st.write_records("session", std::move(writes));
}

std::vector<session_state> load_sessions(store& st) {
  std::vector<session_state> out;
  auto recs = st.load_records("session");
  if (!recs) throw std::runtime_error("loading sessions: " + recs.err().message);
  for (const auto& r : *recs) {
    boost::system::error_code ec;
    auto v = json::parse(r.json, ec);
    if (!ec && v.is_object())
      if (auto s = parse_session_state(v.as_object())) out.push_back(std::move(*s));
  }
  return out;
}

bool apply_record(directory& dir, std::string_view kind, const json::object& o) {
  if (kind == "tenant") {
    dir.add_tenant({str(o, "id"), str(o, "parent"), num(o, "created_ms")});
    return true;
  }
  if (kind == "app") {
    app_record a;
    a.id = str(o, "id");
    a.tenant = str(o, "tenant");
    a.name = str(o, "name");
    a.app_role = parse_role(str(o, "role")).value_or(role::app);
    a.scopes = 0;
    if (auto l = read_list(o, "scopes"))
      for (const auto& s : *l) a.scopes |= parse_scope(s).value_or(0);
    a.client_id = str(o, "client_id");
    a.secret_hash = str(o, "secret_hash");
    a.api_key_hash = str(o, "api_key_hash");
    a.api_key_format = str(o, "api_key_format");
    a.created_ms = num(o, "created_ms");
    dir.put_app(a);
    return true;
  }
  if (kind == "user") {
    user_record u;
    u.id = str(o, "id");
    u.tenant = str(o, "tenant");
    u.login = str(o, "login");
    u.name = str(o, "name");
    u.password_hash = str(o, "password_hash");
    u.blocked = flag(o, "blocked");
    u.extension_id = str(o, "extension_id");
    u.extension_number = str(o, "extension_number");
    u.admin = flag(o, "admin");
    u.time_zone = str(o, "time_zone");
    u.trackers = read_list(o, "trackers");
    u.created_ms = num(o, "created_ms");
    dir.put_user(u);
    return true;
  }
  if (kind == "login") {
    login_record l;
    l.id = str(o, "id");
    l.tenant = str(o, "tenant");
    l.user_id = str(o, "user_id");
    l.app_id = str(o, "app_id");
    l.dialect = str(o, "dialect");
    l.created_ms = num(o, "created_ms");
    l.expires_ms = num(o, "expires_ms");
    l.ended = flag(o, "ended");
    l.counter = num(o, "counter");
    dir.put_login(l);
    return true;
  }
  if (kind == "subject") {
    subject_record s;
    s.id = str(o, "id");
    s.tenant = str(o, "tenant");
    s.kind = str(o, "kind");
    s.label = str(o, "label");
    if (const auto* a = o.if_contains("attrs")) s.attrs = json::serialize(*a);
    s.blocked = flag(o, "blocked");
    s.corrupted = flag(o, "corrupted");
    s.created_ms = num(o, "created_ms");
    dir.put_subject(s);
    return true;
  }
  if (kind == "jwt") {
    jwt_record j;
    j.jti = str(o, "jti");
    j.user_id = str(o, "user_id");
    j.client_id = str(o, "client_id");
    j.created_ms = num(o, "created_ms");
    if (const auto* e = o.if_contains("expires_ms"); e != nullptr && e->is_int64())
      j.expires_ms = e->get_int64();
    dir.put_jwt(j);
    return true;
  }
  return false;
}

void load_directory(store& st, directory& dir) {
  for (std::string_view kind : directory_kinds) {
    auto recs = st.load_records(kind);
    if (!recs) throw std::runtime_error("loading " + std::string(kind) + ": " + recs.err().message);
    for (const auto& r : *recs) {
      boost::system::error_code ec;
      auto v = json::parse(r.json, ec);
      if (ec || !v.is_object()) continue;
      apply_record(dir, kind, v.as_object());
    }
  }
}

}  // namespace herald
