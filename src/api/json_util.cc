#include "api/json_util.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include "api/native_errors.h"
#include "core/clock.h"

namespace herald {

std::string json_quote(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

std::string error_body(errc code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":\"";
  out += errc_name(code);
  out += "\",\"message\":";
  out += json_quote(message);
  out += "}}";
  return out;
}

http_response error_response(const error& e) {
  http_response r = error_response(e.code, e.message);
  r.cause = e.cause;
  return r;
}

http_response error_response(errc code, std::string_view message) {
  http_response r;
  r.status = errc_http_status(code);
  r.body = error_body(code, message);
  if (code == errc::too_many_requests) r.headers.emplace_back("Retry-After", "1");
  return r;
}

http_response json_response(int status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http_response json_response(int status, const boost::json::value& v) {
  return json_response(status, boost::json::serialize(v));
}

result<boost::json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return error{errc::bad_json, "body is not valid JSON: " + ec.message()};
  return v;
}

result<std::optional<std::string>> get_string(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>{};
  if (!v->is_string()) return error{errc::bad_message, std::string(name) + ": must be a string"};
  return std::optional<std::string>{std::string(v->get_string())};
}

result<std::optional<bool>> get_bool(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<bool>{};
  if (!v->is_bool()) return error{errc::bad_message, std::string(name) + ": must be a boolean"};
  return std::optional<bool>{v->get_bool()};
}

result<std::optional<std::int64_t>> get_int(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>{};
  if (v->is_int64()) return std::optional<std::int64_t>{v->get_int64()};
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return std::optional<std::int64_t>{static_cast<std::int64_t>(v->get_uint64())};
  return error{errc::bad_message, std::string(name) + ": must be an integer"};
}

std::string render_event_json(const event& e) {
  std::string out;
  out.reserve(160 + e.topic.size() + e.data.size());
  out += "{\"id\":";
  out += json_quote(e.id);
  out += ",\"offset\":";
  out += std::to_string(e.offset);
  out += ",\"topic\":";
  out += json_quote(e.topic);
  out += ",\"type\":";
  out += json_quote(e.type);
  out += ",\"tenant\":";
  out += json_quote(e.tenant);
  if (!e.app.empty()) {
    out += ",\"app\":";
    out += json_quote(e.app);
  }
  if (!e.subject.empty()) {
    out += ",\"subject\":";
    out += json_quote(e.subject);
  }
  out += ",\"time\":\"";
  out += format_rfc3339_ms(e.time_ms);
  out += "\",\"data\":";
  out += e.data;
  out += '}';
  return out;
}

namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
std::string pct_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}
}  // namespace

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    const std::size_t amp = std::min(query.find('&', pos), query.size());
    const std::string_view pair = query.substr(pos, amp - pos);
    const std::size_t eq = pair.find('=');
    const std::string key = pct_decode(pair.substr(0, eq));
    if (key == name)
      return eq == std::string_view::npos ? std::string() : pct_decode(pair.substr(eq + 1));
    pos = amp + 1;
  }
  return std::nullopt;
}

}  // namespace herald
