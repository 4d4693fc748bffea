// The router framework: routes by method and path pattern ("/v1/admin/apps/{id}"), used by
// native REST, the admin API, each dialect's REST companions and request-over-socket (which
// reaches only the routes of the socket's own dialect: each dialect has its own router).
// Thread-safe after set-up: dispatch() is const.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "transport/http_types.h"

namespace herald {

// The non-empty '/'-separated segments of a path ("//a/b/" → {"a", "b"}).
std::vector<std::string_view> split_path(std::string_view path);

struct route_match {
  const http_request& req;
  std::vector<std::string> params;  // the {…} segments, in order, percent-decoded
};

using route_fn = std::function<http_response(route_match&)>;

class router {
 public:
  void add(std::string method, std::string pattern, route_fn fn);
  // 404 when no pattern matches the path, 405 when one does for another method.
  // Paths match with or without a trailing '/'.
  http_response dispatch(const http_request& req) const;
  bool has_path(std::string_view path) const;
  // Every route as added, in order: {method, pattern} (`herald routes`, the OpenAPI test).
  std::vector<std::pair<std::string, std::string>> list() const;

 private:
  struct route {
    std::string method;
    std::string pattern;                // as added
    std::vector<std::string> segments;  // "{}" for a parameter
    route_fn fn;
  };
  static bool match(const route& r, std::string_view path, std::vector<std::string>& params);
  std::vector<route> routes_;
};

}  // namespace herald
