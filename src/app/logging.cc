#include "app/logging.h"

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "core/oplog.h"

namespace herald {
namespace {

std::atomic<bool> g_json{false};
std::mutex g_out_mu;

const char* level_name(oplog::level l) {
  switch (l) {
    case oplog::level::debug:
      return "debug";
    case oplog::level::info:
      return "info";
    case oplog::level::warn:
      return "warn";
    case oplog::level::error:
      return "error";
  }
  return "info";
}

oplog::level from_spdlog(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return oplog::level::debug;
    case spdlog::level::info:
      return oplog::level::info;
    case spdlog::level::warn:
      return oplog::level::warn;
    default:
      return oplog::level::error;
  }
}

// RFC 3339 UTC with milliseconds: 2026-12-05T04:50:00.123Z.
std::string timestamp(std::chrono::system_clock::time_point tp) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(ms / 1000);
  struct tm t {};
  gmtime_r(&secs, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms % 1000);
}

void json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// A text value as is when it has no space, quote or '='; else quoted with JSON escapes.
void text_value(std::string& out, std::string_view v) {
  if (!v.empty() && v.find_first_of(" \"=\n\r\t\\") == std::string_view::npos)
    out += v;
  else
    json_string(out, v);
}

void write_line(oplog::level l, std::chrono::system_clock::time_point tp, std::string_view msg,
                std::span<const oplog::field> fields) {
  std::string line;
  line.reserve(128 + msg.size());
  if (g_json.load(std::memory_order_relaxed)) {
    line += "{\"ts\":\"";
    line += timestamp(tp);
    line += "\",\"level\":\"";
    line += level_name(l);
    line += "\",\"msg\":";
    json_string(line, msg);
    for (const auto& f : fields) {
      if (f.key == "ts" || f.key == "level" || f.key == "msg") continue;
      line.push_back(',');
      json_string(line, f.key);
      line.push_back(':');
      if (f.number)
        line += f.value;
      else
        json_string(line, f.value);
    }
    line += "}\n";
  } else {
    line += timestamp(tp);
    line.push_back(' ');
    line += level_name(l);
    line.push_back(' ');
    line += msg;
    for (const auto& f : fields) {
      line.push_back(' ');
      line += f.key;
      line.push_back('=');
      text_value(line, f.value);
    }
    line.push_back('\n');
  }
  std::lock_guard lk(g_out_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void write_event(oplog::level l, std::string_view msg, std::span<const oplog::field> fields) {
  write_line(l, std::chrono::system_clock::now(), msg, fields);
}

// spdlog's lines (start-up, drain, errors) in the same format, without fields.
class herald_sink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& m) override {
    write_line(from_spdlog(m.level), m.time, std::string_view(m.payload.data(), m.payload.size()),
               {});
  }
  void flush_() override {}
};

oplog::level parse_level(const std::string& s) {
  if (s == "debug") return oplog::level::debug;
  if (s == "warn") return oplog::level::warn;
  if (s == "error") return oplog::level::error;
  return oplog::level::info;  // config.cc refuses anything else
}

}  // namespace

void apply_log_config(const config& c) {
  static const bool installed = [] {
    auto logger = std::make_shared<spdlog::logger>("herald", std::make_shared<herald_sink>());
    spdlog::set_default_logger(std::move(logger));
    oplog::set_sink(&write_event);
    return true;
  }();
  (void)installed;
  g_json.store(c.log_format == "json", std::memory_order_relaxed);
  const oplog::level l = parse_level(c.log_level);
  oplog::set_level(l);
  oplog::set_flood_lines(c.log_flood_lines);
  spdlog::set_level(l == oplog::level::debug  ? spdlog::level::debug
                    : l == oplog::level::info ? spdlog::level::info
                    : l == oplog::level::warn ? spdlog::level::warn
                                              : spdlog::level::err);
}

}  // namespace herald
