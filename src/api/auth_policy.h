// The one failed-authentication policy every dialect's credential checks use (issue 13 item 3):
// failures are counted per client address and per login, in token buckets of the native
// auth_fail_rate / auth_fail_burst; the client address is the connection's peer, or the
// X-Forwarded-For client when (and only when) the peer is listed in core.trusted_proxies.
//
// How a check uses it:
//   - a guessable secret (a password; a client secret): refused before it is checked while
//     may_try(address, login) is false, and each failure is failed(address, login);
//   - an unguessable bearer credential (an API key, a signed token): always checked, so a valid
//     one is never refused for others' failures from the same address; a failure is
//     failed(address) and, past the limit, answers the dialect's "too many requests".
// Thread-safe (the limiters lock; the proxy list is immutable).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/rate_limit.h"
#include "transport/http_types.h"

namespace herald {

class auth_policy {
 public:
  // trusted_proxies: comma-separated IP addresses (IPv6 with or without brackets).
  auth_policy(double rate, double burst, std::string_view trusted_proxies);

  // The address failures are counted against (see the header comment).
  std::string client_address(const http_request& req) const;
  std::string client_address(const std::string& remote, const std::string* forwarded_for) const;

  // Neither the address nor the login (empty: none) is past its limit.
  bool may_try(const std::string& address, std::string_view login, std::int64_t now_ms);
  // One failed check, against the address and the login (empty: none).
  void failed(const std::string& address, std::string_view login, std::int64_t now_ms);
  // Whole seconds (>= 1) until both may try again, for Retry-After.
  std::int64_t retry_after_s(const std::string& address, std::string_view login,
                             std::int64_t now_ms);
  // New rate and burst for both counts from now on (SIGHUP).
  void set_rates(double rate, double burst) {
    by_address_.set_rates(rate, burst);
    by_login_.set_rates(rate, burst);
  }

 private:
  bool trusted(std::string_view ip) const;
  rate_limiter by_address_, by_login_;
  std::vector<std::string> trusted_;
};

}  // namespace herald
