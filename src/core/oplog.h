// Operational log events (issue #14): one call per event site, with structured fields, feeding
// the line and (at the caller) its metric together. Core formats nothing: the sink app/ installs
// (app/logging.h) writes each line as JSON or `k=v` text. Floods are summarised: past
// `flood_lines` lines per second of one (kind, reason), lines are counted, and one "suppressed
// K similar lines" line follows (at the next line of that pair or flush_suppressed(), which the
// server calls every tick). Thread-safe: atomics, the flood table behind a mutex.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace herald::oplog {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3 };

// One structured field: a key and its value as text; `number` values are written unquoted in
// JSON (integers, durations and booleans).
struct field {
  field(std::string_view k, std::string_view v) : key(k), value(v) {}
  field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  field(std::string_view k, const std::string& v) : key(k), value(v) {}
  field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), number(true) {}
  template <class Int>
  requires std::is_integral_v<Int> field(std::string_view k, Int v)
      : key(k), value(std::to_string(v)), number(true) {}
  field(std::string_view k, double v);
  std::string_view key;
  std::string value;
  bool number = false;
};

using sink_fn = void (*)(level, std::string_view msg, std::span<const field> fields);

// Installs the writer (nullptr: lines are dropped). Start-up; later calls replace it.
void set_sink(sink_fn sink);
// Lines below `min` are dropped (before any formatting).
void set_level(level min);
bool enabled(level l);
// Lines per second per (kind, reason) before the rest are summarised; 0: no limit.
void set_flood_lines(std::uint64_t per_s);

// One line, always written when its level is enabled (start, drain, reload, admin changes).
void write(level l, std::string_view msg, std::initializer_list<field> fields);
// One line of a kind that can flood (socket closes, authentication failures, refusals):
// past the flood limit of (kind, reason) it is counted instead.
void write_limited(level l, std::string_view kind, std::string_view reason, std::string_view msg,
                   std::initializer_list<field> fields);
// Writes the summary of every (kind, reason) whose one-second window has passed with lines
// suppressed. `now_ms` is the wall clock.
void flush_suppressed(std::int64_t now_ms);

}  // namespace herald::oplog
