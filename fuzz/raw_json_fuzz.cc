// The byte-exact member extractor used by publish: for any JSON object Boost.JSON accepts, each
// member's raw bytes (found by its decoded key, escaped or not) must parse to the value Boost.JSON
// gives for that member; for any array, each element's raw bytes to that element.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <boost/json/parse.hpp>

#include "api/raw_json.h"

namespace {

// Equal values, doubles within a few ulps: Boost.JSON 1.81 parses doubles imprecisely, and the
// last bit can depend on what follows the number in the buffer (155555555550547.231 inside an
// object gives ...547.25 alone and ...547.22 inside an array). The raw bytes are what Herald
// keeps and delivers, so the check is that they are the same member, not Boost's last bit.
bool same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 1e-14 * std::fmax(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (!same(p[i], q[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (const auto& kv : p) {
      const auto* other = q.if_contains(kv.key());
      if (other == nullptr || !same(kv.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) return 0;
  auto check = [](std::string_view obj_text, const boost::json::object& obj) {
    for (const auto& kv : obj) {
      auto raw = herald::raw_member(obj_text, kv.key());
      if (!raw) __builtin_trap();
      boost::system::error_code ec2;
      auto again = boost::json::parse(*raw, ec2);
      // Repeated keys: Boost keeps the last, and so does raw_member.
      if (ec2 || !same(again, kv.value())) __builtin_trap();
    }
  };
  if (v.is_object()) {
    check(text, v.as_object());
  } else if (v.is_array()) {
    const auto elems = herald::raw_array_elements(text);
    if (elems.size() != v.as_array().size()) __builtin_trap();
    for (std::size_t i = 0; i < elems.size(); ++i) {
      boost::system::error_code ec2;
      auto e = boost::json::parse(elems[i], ec2);
      if (ec2 || !same(e, v.as_array()[i])) __builtin_trap();
      if (e.is_object()) check(elems[i], e.as_object());
    }
  }
  return 0;
}
