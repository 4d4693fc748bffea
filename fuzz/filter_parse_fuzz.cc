// The filter parser: JSON → filter_spec → compiled filter; a compiled filter must match
// events without crashing and echo a topic that compiles again to the same spec.
#include <cstddef>
#include <cstdint>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/filter_json.h"
#include "core/event.h"
#include "core/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  boost::system::error_code ec;
  auto v = boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec);
  if (ec) return 0;
  auto spec = herald::parse_filter_json(v, "f");
  if (!spec) return 0;
  auto f = herald::filter::compile(*spec, "t1", {});
  if (!f) return 0;
  auto again = herald::filter::compile(f->spec(), "t1", {});
  if (!again) __builtin_trap();
  if (boost::json::serialize(herald::filter_json(again->spec())) !=
      boost::json::serialize(herald::filter_json(f->spec())))
    __builtin_trap();
  herald::event e;
  e.topic = "/a/b/c";
  e.type = "sms.inbound";
  e.subject = "s1";
  e.tenant = "t1";
  e.data = R"({"n":3,"s":"x"})";
  (void)f->matches(e);
  return 0;
}
