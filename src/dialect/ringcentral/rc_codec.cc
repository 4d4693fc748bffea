#include "dialect/ringcentral/rc_codec.h"

#include <charconv>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/json_util.h"
#include "api/raw_json.h"
#include "api/router.h"
#include "core/clock.h"
#include "core/filter.h"

namespace herald::rc {
namespace json = boost::json;
namespace {

std::vector<std::string_view> segments(std::string_view path) { return split_path(path); }

void append_wsc(std::string& out, const wsc_value& w) {
  out += ",\"wsc\":{\"token\":";
  out += json_quote(w.token);
  out += ",\"sequence\":";
  out += std::to_string(w.sequence);
  out += '}';
}

void append_query_value(std::string& q, std::string_view key, const json::value& v) {
  auto one = [&](const json::value& x) {
    std::string text;
    if (x.is_string())
      text = std::string(x.get_string());
    else if (x.is_null())
      return;
    else
      text = json::serialize(x);
    if (!q.empty()) q += '&';
    q += percent_encode(key);
    q += '=';
    q += percent_encode(text);
  };
  if (v.is_array())
    for (const auto& x : v.get_array()) one(x);
  else
    one(v);
}

std::string derived_key(std::string_view token_key) {
  return hmac_sha256(token_key, "herald ringcentral wsc v1");
}

}  // namespace

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// ---- errors

std::string api_error_body(std::string_view code, std::string_view message,
                           std::string_view parameter) {
  std::string c = json_quote(code), m = json_quote(message);
  std::string out = "{\"errorCode\":" + c + ",\"message\":" + m +
                    ",\"errors\":[{\"errorCode\":" + c + ",\"message\":" + m;
  if (!parameter.empty()) out += ",\"parameterName\":" + json_quote(parameter);
  out += "}]}";
  return out;
}

std::string oauth_error_body(std::string_view error, std::string_view code,
                             std::string_view message) {
  std::string m = json_quote(message);
  return "{\"error\":" + json_quote(error) + ",\"error_description\":" + m +
         ",\"errors\":[{\"errorCode\":" + json_quote(code) + ",\"message\":" + m + "}]}";
}

http_response api_error(int status, std::string_view code, std::string_view message,
                        std::string_view parameter) {
  http_response r;
  r.status = status;
  r.body = api_error_body(code, message, parameter);
  if (status == 429) r.headers.emplace_back("Retry-After", "1");
  return r;
}

http_response oauth_error(int status, std::string_view error, std::string_view code,
                          std::string_view message) {
  http_response r;
  r.status = status;
  r.body = oauth_error_body(error, code, message);
  return r;
}

// ---- client frames

status parse_client_frame(std::string_view text, client_frame& out) {
  out = client_frame{};
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return {errc::bad_json, "not valid JSON: " + ec.message()};
  if (!v.is_array() || v.get_array().empty() || !v.get_array()[0].is_object())
    return {errc::bad_message, "a frame is a JSON array [meta] or [meta, body]"};
  const auto& arr = v.get_array();
  const auto& meta = arr[0].get_object();
  if (const auto* id = meta.if_contains("messageId")) {
    if (id->is_string())
      out.message_id = std::string(id->get_string());
    else if (id->is_number())
      out.message_id = json::serialize(*id);
  }
  if (arr.size() > 2) return {errc::bad_message, "a frame has at most two elements"};
  const auto* type = meta.if_contains("type");
  if (type == nullptr || !type->is_string())
    return {errc::bad_message, "meta.type: required string"};
  out.type = std::string(type->get_string());
  if (arr.size() == 2 && !arr[1].is_null() &&
      !(arr[1].is_string() && arr[1].get_string().empty())) {
    const auto raw = raw_array_elements(text);
    if (raw.size() == 2)
      out.body = std::string(raw[1]);
    else
      out.body = json::serialize(arr[1]);
  }
  if (out.type == "Heartbeat") return {};
  if (out.type != "ClientRequest")
    return {errc::unknown_type, "unknown message type '" + out.type + "'"};
  if (out.message_id.empty()) return {errc::bad_message, "meta.messageId: required"};
  const auto* method = meta.if_contains("method");
  if (method == nullptr || !method->is_string() || method->get_string().empty())
    return {errc::bad_message, "meta.method: required string"};
  out.method = std::string(method->get_string());
  for (char& c : out.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto* path = meta.if_contains("path");
  if (path == nullptr || !path->is_string() || path->get_string().empty() ||
      path->get_string()[0] != '/')
    return {errc::bad_message, "meta.path: required, starting with '/'"};
  const std::string_view p = path->get_string();
  const std::size_t q = p.find('?');
  out.path = std::string(p.substr(0, q));
  if (q != std::string_view::npos) out.query = std::string(p.substr(q + 1));
  if (const auto* query = meta.if_contains("query"); query != nullptr && !query->is_null()) {
    if (!query->is_object()) return {errc::bad_message, "meta.query: must be an object"};
    for (const auto& kv : query->get_object()) append_query_value(out.query, kv.key(), kv.value());
  }
  return {};
}

// ---- server frames

std::string render_connection_details(std::string_view message_id, const wsc_value& wsc,
                                      const connection_details& d) {
  const std::string id = json_quote(message_id);
  std::string out = "[{\"type\":\"ConnectionDetails\",\"messageId\":" + id +
                    ",\"status\":200,\"headers\":{\"RCRequestId\":" + id + "}";
  append_wsc(out, wsc);
  out += "},{\"creationTime\":\"" + format_rfc3339_ms(d.creation_ms) + "\"";
  out += ",\"maxConnectionsPerSession\":" + std::to_string(d.max_connections_per_session);
  out += ",\"recoveryBufferSize\":" + std::to_string(d.recovery_buffer_size);
  out += ",\"recoveryTimeout\":" + std::to_string(d.recovery_timeout_s);
  out += ",\"idleTimeout\":" + std::to_string(d.idle_timeout_s);
  out += ",\"absoluteTimeout\":" + std::to_string(d.absolute_timeout_s);
  out += ",\"maxActiveRequests\":" + std::to_string(d.max_active_requests);
  if (!d.recovery_state.empty()) {
    out += ",\"recoveryState\":" + json_quote(d.recovery_state);
    if (!d.recovery_error_code.empty())
      out += ",\"recoveryErrorCode\":" + json_quote(d.recovery_error_code);
  }
  out += "}]";
  return out;
}

std::string render_reply(std::string_view message_id, int status, const wsc_value* wsc,
                         std::string_view body) {
  std::string out = "[{\"type\":\"ClientRequest\",\"messageId\":" + json_quote(message_id) +
                    ",\"status\":" + std::to_string(status) +
                    ",\"headers\":{\"Content-Type\":\"application/json\"}";
  if (wsc != nullptr) append_wsc(out, *wsc);
  out += '}';
  if (!body.empty() && status != 204) {
    out += ',';
    out += body;
  }
  out += ']';
  return out;
}

std::string render_heartbeat(std::string_view message_id) {
  return "[{\"type\":\"Heartbeat\",\"messageId\":" + json_quote(message_id) + ",\"status\":200}]";
}

std::string render_error(std::string_view message_id, int status, std::string_view code,
                         std::string_view message) {
  return "[{\"type\":\"Error\",\"messageId\":" + json_quote(message_id) +
         ",\"status\":" + std::to_string(status) + "},{\"errorCode\":" + json_quote(code) +
         ",\"message\":" + json_quote(message) + "}]";
}

std::string notification_shared(const event& e) {
  std::string out = "{\"uuid\":" + json_quote(e.id) + ",\"event\":" + json_quote(e.topic) +
                    ",\"timestamp\":\"" + format_rfc3339_ms(e.time_ms) + "\",\"body\":";
  out += e.data;
  return out;
}

std::string notification_head(std::string_view event_id, const wsc_value& wsc) {
  std::string out =
      "[{\"type\":\"ServerNotification\",\"messageId\":" + json_quote(event_id) + ",\"status\":200";
  append_wsc(out, wsc);
  out += "},";
  return out;
}

std::string notification_tail(std::string_view subscription_id, std::string_view owner_id) {
  return ",\"subscriptionId\":" + json_quote(subscription_id) +
         ",\"ownerId\":" + json_quote(owner_id) + "}]";
}

// ---- filters

normalized_filter normalize_filter(std::string_view f, const principal& who) {
  normalized_filter out;
  f = f.substr(0, f.find('?'));
  while (f.size() > 1 && f.back() == '/') f.remove_suffix(1);
  if (f.empty() || f.front() != '/' || f.size() > max_topic_bytes) return out;
  std::string topic;
  std::string_view prev;
  bool foreign = false;
  std::size_t pos = 1;
  while (pos <= f.size()) {
    const std::size_t end = std::min(f.find('/', pos), f.size());
    std::string_view seg = f.substr(pos, end - pos);
    if (seg.empty() || seg == "*" || seg == "**") return out;
    std::string value(seg);
    if (prev == "account") {
      if (seg == "~")
        value = who.tenant;
      else if (seg != who.tenant)
        foreign = true;
    } else if (prev == "extension") {
      if (seg == "~") {
        if (who.kind != principal_kind::user || who.extension_id.empty()) return out;
        value = who.extension_id;
      }
    } else if (seg == "~") {
      return out;
    }
    topic += '/';
    topic += value;
    prev = seg;
    pos = end + 1;
  }
  if (!valid_topic(topic)) return out;
  out.topic = std::move(topic);
  out.verdict = !foreign && topic_allowed(who, who.tenant, out.topic) ? filter_verdict::ok
                                                                      : filter_verdict::forbidden;
  return out;
}

// ---- subscription paths and records

sub_path classify_subscription_path(std::string_view path) {
  const auto segs = segments(path);
  sub_path out;
  if (segs.size() < 3 || segs.size() > 5 || segs[0] != "restapi" || segs[1] != "v1.0" ||
      segs[2] != "subscription")
    return out;
  if (segs.size() == 3)
    out.kind = sub_path_kind::collection;
  else if (segs.size() == 4)
    out.kind = sub_path_kind::item;
  else if (segs[4] == "renew")
    out.kind = sub_path_kind::renew;
  else
    return out;
  if (segs.size() > 3) out.id = std::string(segs[3]);
  return out;
}

std::string render_subscription(const subscription_record& s, std::string_view uri_base,
                                std::int64_t now) {
  json::array filters, disabled;
  for (const auto& f : s.event_filters) filters.emplace_back(f);
  for (const auto& [f, reason] : s.disabled)
    disabled.push_back(json::object{{"filter", f}, {"reason", reason}});
  json::object o{
      {"id", s.id},
      {"uri", std::string(uri_base) + "/restapi/v1.0/subscription/" + s.id},
      {"eventFilters", std::move(filters)},
      {"disabledFilters", std::move(disabled)},
      {"status", "Active"},
      {"creationTime", format_rfc3339_ms(s.creation_ms)},
      {"expirationTime", format_rfc3339_ms(now + s.expires_in_s * 1000)},
      {"expiresIn", s.expires_in_s},
      {"deliveryMode", json::object{{"transportType", "WebSocket"}, {"encryption", false}}}};
  return json::serialize(o);
}

// ---- wsc tokens

wsc_codec::wsc_codec(std::string_view token_key) : key_(derived_key(token_key)) {}

std::string wsc_codec::encode(const wsc_state& s) const {
  std::string payload = s.resume_token;
  payload += '\n';
  payload += std::to_string(s.seq);
  payload += '\n';
  payload += std::to_string(s.base);
  payload += '\n';
  payload += s.login;
  std::string out = base64url_encode(payload);
  out += '.';
  out += base64url_encode(key_.mac(payload).substr(0, 16));
  return out;
}

std::optional<wsc_state> wsc_codec::decode(std::string_view token) const {
  if (token.empty() || token.size() > max_token_size) return std::nullopt;
  const std::size_t dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) != std::string_view::npos)
    return std::nullopt;
  auto payload = base64url_decode(token.substr(0, dot));
  auto mac = base64url_decode(token.substr(dot + 1));
  if (!payload || !mac || mac->size() != 16) return std::nullopt;
  if (!constant_time_equal(*mac, key_.mac(*payload).substr(0, 16))) return std::nullopt;
  // resume_token \n seq \n base \n login
  std::vector<std::string_view> parts;
  std::string_view rest = *payload;
  for (;;) {
    const std::size_t nl = rest.find('\n');
    parts.push_back(rest.substr(0, nl));
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  if (parts.size() != 4 || parts[0].empty()) return std::nullopt;
  wsc_state s;
  s.resume_token = std::string(parts[0]);
  auto num = [](std::string_view t, std::uint64_t& v) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && p == t.data() + t.size() && !t.empty();
  };
  if (!num(parts[1], s.seq) || !num(parts[2], s.base)) return std::nullopt;
  s.login = std::string(parts[3]);
  return s;
}

}  // namespace herald::rc
