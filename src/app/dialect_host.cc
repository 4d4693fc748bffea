#include "app/dialect_host.h"

#include "api/json_util.h"
#include "auth/crypto.h"

namespace herald {

dialect_host::dialect_host(services& svc, const std::vector<std::unique_ptr<dialect>>& dialects)
    : svc_(svc) {
  if (!dialects.empty()) first_ = dialects.front().get();
  dialect_admin a{svc, admin_};
  for (const auto& d : dialects) d->install_admin(a);
  for (std::size_t slot = 0; slot < dialects.size(); ++slot) {
    dialect& d = *dialects[slot];
    if (!d.enabled()) continue;
    auto routes = std::make_unique<router>();
    dialect_install in{svc, *routes, mounts_, d.prefix(), slot};
    d.install(in);
    served_.push_back(served{&d, std::move(routes)});
  }
}

const dialect_host::served* dialect_host::find(std::string_view path) const {
  const served* best = nullptr;
  for (const auto& s : served_) {
    const std::string& p = s.d->prefix();
    const bool under = path.substr(0, p.size()) == p &&
                       (path.size() == p.size() || path[p.size()] == '/' || p.empty());
    if (under && (best == nullptr || p.size() > best->d->prefix().size())) best = &s;
  }
  return best;
}

const dialect* dialect_host::owner(std::string_view path) const {
  const served* s = find(path);
  return s ? s->d : nullptr;
}

bool dialect_host::counts_auth_failures(std::string_view path) const {
  const dialect* d = owner(path);
  return d == nullptr || d->counts_auth_failures();
}

http_response dialect_host::serve(const http_request& req) const {
  const served* s = find(req.path);
  if (s == nullptr) return error_response(errc::not_found, "no route for " + req.path);
  const std::string& prefix = s->d->prefix();
  if (prefix.empty()) return s->d->serve(*s->routes, req);
  // The dialect's router sees paths relative to its prefix ("//" after it tolerated).
  http_request sub = req;
  sub.path = req.path.substr(prefix.size());
  while (sub.path.size() > 1 && sub.path[0] == '/' && sub.path[1] == '/') sub.path.erase(0, 1);
  if (sub.path.empty()) sub.path = "/";
  sub.target = sub.path + (req.query.empty() ? "" : "?" + req.query);
  return s->d->serve(*s->routes, sub);
}

http_response dialect_host::render_error(const http_request& req, int status,
                                         std::string message) const {
  const dialect* d = owner(req.path);
  if (d == nullptr) d = first_;
  if (d == nullptr) return json_response(status, error_body(errc::bad_message, message));
  return d->render_error(req, status, std::move(message));
}

http_response dialect_host::serve_admin(const http_request& req) const {
  // The generic admin routes check the key per route (api/admin_routes.cc); dialects' admin
  // calls get the same check here, so none can forget it.
  const auto* auth = req.header("authorization");
  const std::string_view v = auth ? std::string_view(*auth) : std::string_view();
  if (v.size() < 8 || (v.substr(0, 7) != "Bearer " && v.substr(0, 7) != "bearer ") ||
      !constant_time_equal(v.substr(7), svc_.admin_key))
    return error_response(error{errc::auth_failed, "admin key required (Authorization: Bearer)",
                                auth == nullptr ? error_cause::missing : error_cause::unspecified});
  return admin_.dispatch(req);
}

std::vector<std::pair<std::string, std::string>> dialect_host::routes() const {
  auto out = admin_.list();
  for (const auto& s : served_)
    for (auto& [method, pattern] : s.routes->list())
      out.emplace_back(method, pattern == "/" ? s.d->prefix() : s.d->prefix() + pattern);
  return out;
}

}  // namespace herald
