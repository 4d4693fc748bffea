// The zoom wire on arbitrary bytes (zoom.md §3, §4.3): the client frame decoder, the raw object
// scanner behind the webhook body, the webhook body itself and the socket URL's query values.
// Beyond not crashing: every member span lies inside the input; on text Boost.JSON reads as an
// object with distinct keys the scanner finds the same keys in the same order with values that
// parse to the same JSON; the webhook body of such a `data` is JSON whose payload names the
// event's tenant as its account and keeps `data` (or its members) byte-exact.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "dialect/zoom/zoom_codec.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool inside(std::string_view outer, std::string_view part) {
  return part.data() >= outer.data() && part.data() + part.size() <= outer.data() + outer.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace json = boost::json;
  namespace zoom = herald::zoom;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)zoom::decode_client_frame(text);
  (void)zoom::query_value(text, "subscriptionId");

  auto members = zoom::object_members(text);
  if (members) {
    for (const auto& m : *members) {
      check(inside(text, m.member));
      check(inside(text, m.value));
    }
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return 0;
  // Boost.JSON keeps one value per key; compare only when the keys are distinct.
  std::set<std::string> keys;
  check(members.has_value());
  for (const auto& m : *members) keys.insert(m.key);
  if (keys.size() != members->size()) return 0;
  const json::object& o = v.get_object();
  check(o.size() == members->size());
  std::size_t i = 0;
  for (const auto& kv : o) {
    const auto& m = (*members)[i++];
    check(kv.key() == m.key);
    json::value mv = json::parse(m.value, ec);
    check(!ec && mv == kv.value());
  }

  herald::event e;
  e.type = "meeting.started";
  e.tenant = "acme";
  e.time_ms = 1;
  e.data = std::string(text);
  const std::string body = zoom::webhook_body(e);
  json::value doc = json::parse(body, ec);
  check(!ec && doc.is_object());
  const json::object& payload = doc.get_object().at("payload").as_object();
  check(payload.at("account_id") == json::value("acme"));
  const json::value* obj = o.if_contains("object");
  if (obj != nullptr && obj->is_object()) {
    check(body.find((*members).back().member) != std::string::npos || o.contains("account_id"));
  } else {
    check(body.find(text) != std::string::npos);  // data, byte-exact
    check(payload.at("object") == v);
  }
  // The content a message frame carries is a JSON string holding exactly that body.
  json::value quoted = json::parse(zoom::quoted_webhook_body(e), ec);
  check(!ec && quoted.is_string() && quoted.get_string() == body);
  return 0;
}
