// Wall-clock helpers: milliseconds since the Unix epoch and RFC 3339 UTC with milliseconds,
// the only time format on Herald's wires. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

// Milliseconds since the Unix epoch, from the system clock.
std::int64_t now_ms() noexcept;

// A clock for hot paths whose timers need about a second's resolution: the value a thread last
// stored with set_coarse_now_ms (each shard stores it once a tick), or now_ms() on a thread
// that never stored one.
std::int64_t coarse_now_ms() noexcept;
void set_coarse_now_ms(std::int64_t ms) noexcept;

// "2026-03-01T10:00:01.000Z".
std::string format_rfc3339_ms(std::int64_t ms);

// Parses an RFC 3339 time ("2026-03-01T10:00:01Z", "...01.5+02:00"); nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view s);

}  // namespace herald
