// The registered dialects once installed, and the rules app/ applies to them all: which one owns
// a path (longest prefix wins, at a '/' boundary), dispatch to it with the path made relative to
// its prefix, its rendering of refusals, its auth-failure rule, and their admin routes.
// Built once by `herald serve` before the listener starts; const methods are thread-safe.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "dialect/dialect.h"

namespace herald {

class dialect_host {
 public:
  // Installs every dialect's admin routes and validators, then each enabled dialect's routes
  // and sockets, dialect i getting render slot i. `dialects` must outlive the host.
  dialect_host(services& svc, const std::vector<std::unique_ptr<dialect>>& dialects);

  // Socket endpoints of the served dialects, for server::mount.
  const std::vector<ws_mount>& mounts() const { return mounts_; }
  // The enabled dialect owning `path`, or nullptr when none does.
  const dialect* owner(std::string_view path) const;
  // Whether a 401 on `path` counts against the per-address auth-failure limiter.
  bool counts_auth_failures(std::string_view path) const;
  // Serves `req` by its owner (native-shaped 404 when no dialect is served there).
  http_response serve(const http_request& req) const;
  // Renders a refusal of `req` as its owner does (paths no enabled dialect owns: the first
  // registered dialect, native). Shard threads: no blocking.
  http_response render_error(const http_request& req, int status, std::string message) const;
  // Dialects' admin calls under /v1/admin/ (install_admin), reached with the admin key only.
  bool has_admin_path(std::string_view path) const { return admin_.has_path(path); }
  http_response serve_admin(const http_request& req) const;
  // Every route the dialects registered, {method, full path pattern}: their admin calls, then
  // each served dialect's routes with its prefix (`herald routes`).
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  struct served {
    const dialect* d;
    std::unique_ptr<router> routes;  // stable: sockets keep pointers to it
  };
  const served* find(std::string_view path) const;

  services& svc_;
  const dialect* first_ = nullptr;
  std::vector<served> served_;
  std::vector<ws_mount> mounts_;
  router admin_;
};

}  // namespace herald
