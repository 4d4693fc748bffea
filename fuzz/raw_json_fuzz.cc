// The byte-exact member extractor used by publish: for any JSON object Boost.JSON accepts, each
// member's raw bytes (found by its decoded key, escaped or not) must parse to the value Boost.JSON
// gives for that member; for any array, each element's raw bytes to that element.
#include <cstddef>
#include <cstdint>

#include <boost/json/parse.hpp>

#include "api/raw_json.h"

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
      if (ec2 || again != kv.value()) __builtin_trap();
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
      if (ec2 || e != v.as_array()[i]) __builtin_trap();
      if (e.is_object()) check(elems[i], e.as_object());
    }
  }
  return 0;
}
