#include "dialect/native/native_codec.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/filter_json.h"

namespace herald {
namespace json = boost::json;

native_decoded decode_native(std::string_view text, std::size_t max_filters) {
  native_decoded d;
  auto fail = [&](errc c, std::string m) {
    d.err = error{c, std::move(m)};
    return d;
  };
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return fail(errc::bad_json, "not valid JSON: " + ec.message());
  if (!v.is_object()) return fail(errc::bad_message, "a message must be a JSON object");
  const auto& o = v.as_object();
  if (const auto* i = o.if_contains("id")) {
    if (i->is_string())
      d.msg.id = std::string(i->get_string());
    else if (i->is_int64())
      d.msg.id = std::to_string(i->get_int64());
  }
  const auto* type = o.if_contains("type");
  if (type == nullptr || !type->is_string())
    return fail(errc::bad_message, "type: required string");
  const std::string_view t = type->get_string();
  auto str = [&](const char* name, std::string& dst) -> bool {
    const auto* f = o.if_contains(name);
    if (f == nullptr || f->is_null()) return true;
    if (!f->is_string()) return false;
    dst = std::string(f->get_string());
    return true;
  };
  if (t == "ping") {
    d.msg.type = native_msg::kind::ping;
  } else if (t == "pong") {
    d.msg.type = native_msg::kind::pong;
  } else if (t == "auth") {
    d.msg.type = native_msg::kind::auth;
    if (!str("token", d.msg.token)) return fail(errc::bad_message, "token: must be a string");
    if (!str("api_key", d.msg.api_key)) return fail(errc::bad_message, "api_key: must be a string");
    if (!str("resume", d.msg.resume)) return fail(errc::bad_message, "resume: must be a string");
    if (const auto* ls = o.if_contains("last_seq"); ls != nullptr && !ls->is_null()) {
      if (ls->is_int64() && ls->get_int64() >= 0)
        d.msg.last_seq = static_cast<std::uint64_t>(ls->get_int64());
      else if (ls->is_uint64())
        d.msg.last_seq = ls->get_uint64();
      else
        return fail(errc::bad_message, "last_seq: a non-negative integer");
    }
  } else if (t == "subscribe" || t == "unsubscribe") {
    const bool sub = t == "subscribe";
    d.msg.type = sub ? native_msg::kind::subscribe : native_msg::kind::unsubscribe;
    const auto* fl = o.if_contains("filters");
    if (fl == nullptr || fl->is_null()) {
      if (sub) return fail(errc::bad_message, "filters: required array");
    } else {
      if (!fl->is_array()) return fail(errc::bad_message, "filters: must be an array");
      const auto& arr = fl->get_array();
      if (sub && arr.empty()) return fail(errc::invalid_filter, "filters: at least one filter");
      if (arr.size() > max_filters)
        return fail(errc::invalid_filter, "filters: more than " + std::to_string(max_filters));
      for (std::size_t i = 0; i < arr.size(); ++i) {
        auto spec = parse_filter_json(arr[i], "filters[" + std::to_string(i) + "]");
        if (!spec) return fail(spec.err().code, spec.err().message);
        d.msg.filters.push_back(std::move(*spec));
      }
    }
    if (const auto* s = o.if_contains("snapshot"); s != nullptr && !s->is_null()) {
      if (!s->is_bool()) return fail(errc::bad_message, "snapshot: must be a boolean");
      d.msg.snapshot = s->get_bool();
    }
  } else if (t == "request") {
    d.msg.type = native_msg::kind::request;
    if (!str("method", d.msg.method) || d.msg.method.empty())
      return fail(errc::bad_message, "method: required string");
    if (!str("path", d.msg.path) || d.msg.path.empty() || d.msg.path[0] != '/')
      return fail(errc::bad_message, "path: required, starting with '/'");
    if (!str("idempotency_key", d.msg.idempotency_key))
      return fail(errc::bad_message, "idempotency_key: must be a string");
    if (const auto* b = o.if_contains("body"); b != nullptr && !b->is_null())
      d.msg.body = b->is_string() ? std::string(b->get_string()) : json::serialize(*b);
  } else {
    return fail(errc::unknown_type, "unknown message type '" + std::string(t) + "'");
  }
  return d;
}

}  // namespace herald
