#include "store/redis/url.h"

#include <optional>

#include <fmt/format.h>

namespace herald::redis {
namespace {

constexpr std::string_view scheme = "redis://";

// Decimal digits only, the whole string, at most `hi`. (store/ may not include api/numbers.h;
// this is the same rule: no sign, no space, no empty string, overflow refused.)
std::optional<std::uint64_t> digits(std::string_view s, std::uint64_t hi) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > hi) return std::nullopt;
  return v;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

}  // namespace

std::string url::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("redis://{}{}{}:{}/{}", v6 ? "[" : "", host, v6 ? "]" : "", port, db);
}

result<url> parse_url(std::string_view text) {
  auto fail = [&](std::string_view what) -> result<url> {
    return error{errc::bad_message, fmt::format("redis url '{}': {}", text, what)};
  };
  if (text.substr(0, scheme.size()) != scheme) return fail("must start with redis://");
  std::string_view rest = text.substr(scheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) return fail("no query or fragment");
  if (rest.find('@') != std::string_view::npos) return fail("credentials are not supported");
  std::string_view authority = rest, path;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  url u;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("host: unclosed '['");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("host: junk after ']'");
      port = after.substr(1);
      has_port = true;
    }
    for (char c : u.host) {
      bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') return fail("host: not an IPv6 address");
    }
  } else {
    auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    for (char c : u.host) {
      if (!host_char(c)) return fail("host: invalid character");
    }
  }
  if (u.host.empty()) return fail("host: empty");
  if (has_port) {
    auto p = digits(port, 65535);
    if (!p || *p == 0) return fail("port: must be a number from 1 to 65535");
    u.port = static_cast<std::uint16_t>(*p);
  }
  if (rest.find('/') != std::string_view::npos) {
    auto d = digits(path, 2147483647);
    if (!d) return fail("db: must be a number from 0 to 2147483647 (the path is /DB)");
    u.db = static_cast<std::uint32_t>(*d);
  }
  return u;
}

}  // namespace herald::redis
