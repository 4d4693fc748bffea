#include "api/auth_policy.h"

#include <algorithm>

#include "api/services.h"

namespace herald {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "[::1]" and "::1" name the same address.
std::string_view unbracket(std::string_view ip) {
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') return ip.substr(1, ip.size() - 2);
  return ip;
}

std::string login_key(std::string_view login) { return "l:" + std::string(login); }

}  // namespace

auth_policy::auth_policy(double rate, double burst, std::string_view trusted_proxies)
    : by_address_(rate, burst), by_login_(rate, burst) {
  std::size_t pos = 0;
  while (pos <= trusted_proxies.size()) {
    const std::size_t end = std::min(trusted_proxies.find(',', pos), trusted_proxies.size());
    const std::string_view one = unbracket(trim(trusted_proxies.substr(pos, end - pos)));
    if (!one.empty()) trusted_.emplace_back(one);
    pos = end + 1;
  }
}

bool auth_policy::trusted(std::string_view ip) const {
  ip = unbracket(ip);
  return std::find(trusted_.begin(), trusted_.end(), ip) != trusted_.end();
}

std::string auth_policy::client_address(const std::string& remote,
                                        const std::string* forwarded_for) const {
  std::string peer = remote_address(remote);
  if (forwarded_for == nullptr || !trusted(peer)) return peer;
  // Right to left: each trusted proxy names the hop before it; the first address no trusted
  // proxy stands for is the client (the entries left of it are the client's to invent).
  std::string_view list = *forwarded_for;
  while (!list.empty()) {
    const std::size_t comma = list.rfind(',');
    const std::string_view hop =
        unbracket(trim(comma == std::string_view::npos ? list : list.substr(comma + 1)));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
    if (hop.empty()) continue;
    if (!trusted(hop)) return std::string(hop);
    peer = std::string(hop);
  }
  return peer;
}

std::string auth_policy::client_address(const http_request& req) const {
  return client_address(req.remote, req.header("x-forwarded-for"));
}

bool auth_policy::may_try(const std::string& address, std::string_view login, std::int64_t now) {
  if (!address.empty() && !by_address_.allows(address, now)) return false;
  return login.empty() || by_login_.allows(login_key(login), now);
}

void auth_policy::failed(const std::string& address, std::string_view login, std::int64_t now) {
  if (!address.empty()) (void)by_address_.take(address, 1, now);
  if (!login.empty()) (void)by_login_.take(login_key(login), 1, now);
}

std::int64_t auth_policy::retry_after_s(const std::string& address, std::string_view login,
                                        std::int64_t now) {
  std::int64_t s = address.empty() ? 1 : by_address_.retry_after_s(address, 1, now);
  if (!login.empty()) s = std::max(s, by_login_.retry_after_s(login_key(login), 1, now));
  return s;
}

}  // namespace herald
