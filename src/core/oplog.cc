#include "core/oplog.h"

#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "core/clock.h"

namespace herald::oplog {
namespace {

std::atomic<sink_fn> g_sink{nullptr};
std::atomic<int> g_level{static_cast<int>(level::info)};
std::atomic<std::uint64_t> g_flood{20};

// One (kind, reason)'s current one-second window.
struct window {
  std::int64_t start_ms = 0;
  std::uint64_t lines = 0;       // written in this window
  std::uint64_t suppressed = 0;  // counted instead
  level lvl = level::info;
};

std::mutex g_mu;
std::map<std::string, window> g_windows;  // key_of(kind, reason)

std::string key_of(std::string_view kind, std::string_view reason) {
  std::string k(kind);
  k += '\x1f';
  k += reason;
  return k;
}

void emit(level l, std::string_view msg, std::span<const field> fields) {
  if (sink_fn s = g_sink.load(std::memory_order_acquire)) s(l, msg, fields);
}

void emit_summary(std::string_view kind, std::string_view reason, const window& w) {
  const field f[] = {{"kind", kind},
                     {"reason", reason},
                     {"suppressed", w.suppressed},
                     {"window_ms", std::int64_t{1000}}};
  emit(w.lvl, fmt::format("suppressed {} similar lines", w.suppressed), f);
}

}  // namespace

field::field(std::string_view k, double v) : key(k), value(fmt::format("{}", v)), number(true) {}

void set_sink(sink_fn sink) { g_sink.store(sink, std::memory_order_release); }

void set_level(level min) { g_level.store(static_cast<int>(min), std::memory_order_relaxed); }

bool enabled(level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void set_flood_lines(std::uint64_t per_s) { g_flood.store(per_s, std::memory_order_relaxed); }

void write(level l, std::string_view msg, std::initializer_list<field> fields) {
  if (!enabled(l)) return;
  emit(l, msg, std::span<const field>(fields.begin(), fields.size()));
}

void write_limited(level l, std::string_view kind, std::string_view reason, std::string_view msg,
                   std::initializer_list<field> fields) {
  if (!enabled(l)) return;
  const std::uint64_t limit = g_flood.load(std::memory_order_relaxed);
  if (limit != 0) {
    const std::int64_t now = now_ms();
    window ended;
    bool write_line = true;
    {
      std::lock_guard lk(g_mu);
      window& w = g_windows[key_of(kind, reason)];
      if (now - w.start_ms >= 1000) {
        ended = w;
        w = window{now, 0, 0, l};
      }
      if (w.lines >= limit)
        ++w.suppressed, write_line = false;
      else
        ++w.lines;
    }
    if (ended.suppressed != 0) emit_summary(kind, reason, ended);
    if (!write_line) return;
  }
  emit(l, msg, std::span<const field>(fields.begin(), fields.size()));
}

void flush_suppressed(std::int64_t now_ms) {
  std::vector<std::pair<std::string, window>> due;
  {
    std::lock_guard lk(g_mu);
    for (auto it = g_windows.begin(); it != g_windows.end();) {
      if (now_ms - it->second.start_ms < 1000) {
        ++it;
        continue;
      }
      if (it->second.suppressed != 0) due.emplace_back(it->first, it->second);
      it = g_windows.erase(it);  // an idle pair holds no memory
    }
  }
  for (const auto& [key, w] : due) {
    const auto sep = key.find('\x1f');
    emit_summary(std::string_view(key).substr(0, sep), std::string_view(key).substr(sep + 1), w);
  }
}

}  // namespace herald::oplog
