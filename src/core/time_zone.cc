#include "core/time_zone.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <vector>

namespace herald {
namespace {

struct zone_data {
  std::vector<std::int64_t> at;      // transition times (s since the epoch), ascending
  std::vector<std::int32_t> offset;  // the offset in force from at[i]
  std::int32_t initial = 0;          // before the first transition
};

std::int64_t be(const std::string& b, std::size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(b[pos + i]);
  if (bytes == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

// A safe zone name: path segments of [A-Za-z0-9_+-], no "..", no leading '/'.
bool safe_name(std::string_view z) {
  if (z.empty() || z.size() > 64 || z.front() == '/' || z.back() == '/') return false;
  if (z.find("..") != std::string_view::npos || z.find("//") != std::string_view::npos)
    return false;
  return std::all_of(z.begin(), z.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '+' || c == '-' || c == '/';
  });
}

// Parses a TZif file: the 64-bit block when present (v2+), else the 32-bit one.
std::optional<zone_data> parse_tzif(const std::string& b) {
  auto header = [&](std::size_t pos, std::size_t counts[6]) {
    if (b.size() < pos + 44 || b.compare(pos, 4, "TZif") != 0) return false;
    for (int i = 0; i < 6; ++i) counts[i] = static_cast<std::size_t>(be(b, pos + 20 + 4 * i, 4));
    return true;
  };
  std::size_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  if (!header(0, c)) return std::nullopt;
  std::size_t pos = 44;
  int tsize = 4;
  if (b[4] >= '2') {
    pos += c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];  // skip the v1 block
    if (!header(pos, c)) return std::nullopt;
    pos += 44;
    tsize = 8;
  }
  const std::size_t need = c[3] * (tsize + 1) + c[4] * 6;
  if (c[4] == 0 || b.size() < pos + need) return std::nullopt;
  zone_data z;
  std::vector<std::int32_t> type_off(c[4]);
  const std::size_t idx_pos = pos + c[3] * tsize, type_pos = idx_pos + c[3];
  for (std::size_t i = 0; i < c[4]; ++i)
    type_off[i] = static_cast<std::int32_t>(be(b, type_pos + 6 * i, 4));
  z.initial = type_off[0];
  for (std::size_t i = 0; i < c[3]; ++i) {
    const auto t = static_cast<unsigned char>(b[idx_pos + i]);
    if (t >= c[4]) return std::nullopt;
    z.at.push_back(be(b, pos + i * tsize, tsize));
    z.offset.push_back(type_off[t]);
  }
  return z;
}

std::shared_mutex cache_mu;
std::map<std::string, std::shared_ptr<const zone_data>, std::less<>> cache;

std::shared_ptr<const zone_data> load(std::string_view zone) {
  {
    std::shared_lock lk(cache_mu);
    if (auto it = cache.find(zone); it != cache.end()) return it->second;
  }
  std::shared_ptr<const zone_data> z;
  if (safe_name(zone) && zone != "UTC") {
    std::ifstream in("/usr/share/zoneinfo/" + std::string(zone), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (auto parsed = parse_tzif(bytes)) z = std::make_shared<const zone_data>(std::move(*parsed));
  }
  std::unique_lock lk(cache_mu);
  if (cache.size() < 4096) cache.emplace(std::string(zone), z);  // unknown names cache as null
  return z;
}

}  // namespace

std::int64_t utc_offset_s(std::string_view zone, std::int64_t utc_ms) {
  const auto z = load(zone);
  if (!z) return 0;
  const std::int64_t s = utc_ms >= 0 ? utc_ms / 1000 : -((-utc_ms + 999) / 1000);
  const auto it = std::upper_bound(z->at.begin(), z->at.end(), s);
  if (it == z->at.begin()) return z->initial;
  return z->offset[static_cast<std::size_t>(it - z->at.begin()) - 1];
}

bool known_time_zone(std::string_view zone) {
  return zone.empty() || zone == "UTC" || load(zone) != nullptr;
}

std::string format_local_time(std::int64_t utc_ms, std::string_view zone) {
  const std::int64_t local = utc_ms / 1000 + utc_offset_s(zone, utc_ms);
  // Civil date from days since the epoch (Howard Hinnant's algorithm).
  std::int64_t days = local / 86400, secs = local % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld %02lld:%02lld:%02lld",
                static_cast<long long>(y), static_cast<long long>(m), static_cast<long long>(d),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf;
}

}  // namespace herald
