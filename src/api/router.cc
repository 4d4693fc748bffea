#include "api/router.h"

#include "api/json_util.h"

namespace herald {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    const std::size_t end = std::min(path.find('/', pos), path.size());
    out.push_back(path.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

void router::add(std::string method, std::string pattern, route_fn fn) {
  route r{std::move(method), std::move(pattern), {}, std::move(fn)};
  for (auto seg : split_path(r.pattern))
    r.segments.emplace_back(seg.size() > 1 && seg.front() == '{' ? "{}" : std::string(seg));
  routes_.push_back(std::move(r));
}

bool router::match(const route& r, std::string_view path, std::vector<std::string>& params) {
  const auto segs = split_path(path);
  if (segs.size() != r.segments.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < segs.size(); ++i) {
    if (r.segments[i] == "{}")
      params.emplace_back(segs[i]);
    else if (r.segments[i] != segs[i])
      return false;
  }
  return true;
}

bool router::has_path(std::string_view path) const {
  std::vector<std::string> params;
  for (const auto& r : routes_)
    if (match(r, path, params)) return true;
  return false;
}

std::vector<std::pair<std::string, std::string>> router::list() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

http_response router::dispatch(const http_request& req) const {
  std::vector<std::string> params;
  bool path_known = false;
  for (const auto& r : routes_) {
    if (!match(r, req.path, params)) continue;
    path_known = true;
    if (r.method != req.method) continue;
    route_match m{req, std::move(params)};
    return r.fn(m);
  }
  if (path_known) {
    auto res = error_response(errc::bad_message, "method " + req.method + " not allowed here");
    res.status = 405;
    return res;
  }
  return error_response(errc::not_found, "no such path: " + req.path);
}

}  // namespace herald
