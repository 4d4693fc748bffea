// Strict integers from request text (query parameters, path segments, cursors): decimal
// digits only, the whole string consumed, no space, no '+', no empty string, overflow refused.
// std::stoll and friends accept "10abc" as 10, " 7" as 7 and throw on the rest, which on a
// request path means a wrong answer or an exception; these return nullopt instead.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "core/errc.h"

namespace herald {

// "0" ... "18446744073709551615". No sign at all.
std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept;

// "-9223372036854775808" ... "9223372036854775807": a leading '-' is the only sign accepted
// (the one thing a signed value adds); "-" alone, "+1" and "-0x1" are refused.
std::optional<std::int64_t> parse_i64(std::string_view s) noexcept;

// A request's number parameter `name` from `text`, within [lo, hi]; otherwise bad_message
// naming the parameter and echoing (shortened, printable) what was sent:
//   "limit: not a number: '10abc'", "limit: must be from 1 to 1000, got '5000'".
result<std::uint64_t> number_param(std::string_view name, std::string_view text,
                                   std::uint64_t lo = 0,
                                   std::uint64_t hi = std::numeric_limits<std::uint64_t>::max());

}  // namespace herald
