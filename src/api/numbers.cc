#include "api/numbers.h"

#include <charconv>
#include <string>

namespace herald {
namespace {

bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (const char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// The sent text as an error message may quote it: at most 32 bytes, and bytes outside
// printable ASCII as \xNN, so that a hostile parameter cannot make the body long or invalid UTF-8.
std::string echo(std::string_view s) {
  constexpr std::size_t max_echo = 32;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < max_echo; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  if (s.size() > max_echo) out += "...";
  out += '\'';
  return out;
}

}  // namespace

std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
  // from_chars alone would take a prefix ("10abc") and, for unsigned types, nothing else
  // lenient; checking the characters first also keeps "-0" out.
  if (!all_digits(s)) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_i64(std::string_view s) noexcept {
  const std::string_view digits = !s.empty() && s.front() == '-' ? s.substr(1) : s;
  if (!all_digits(digits)) return std::nullopt;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

result<std::uint64_t> number_param(std::string_view name, std::string_view text, std::uint64_t lo,
                                   std::uint64_t hi) {
  const auto v = parse_u64(text);
  const std::string n(name);
  if (!v && all_digits(text))  // only digits, yet refused: past 2^64-1
    return error{errc::bad_message, n + ": out of range: " + echo(text)};
  if (!v) return error{errc::bad_message, n + ": not a number: " + echo(text)};
  if (*v < lo || *v > hi)
    return error{errc::bad_message, n + ": must be from " + std::to_string(lo) + " to " +
                                        std::to_string(hi) + ", got " + echo(text)};
  return *v;
}

}  // namespace herald
