#include "dialect/smsgw/smsgw_codec.h"

#include <array>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/json_util.h"
#include "auth/crypto.h"
#include "core/clock.h"

namespace herald::smsgw {
namespace json = boost::json;
namespace {

// Parses a client frame; null when it is not JSON. The parser's default depth limit bounds it.
std::optional<json::value> parse_frame(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

// The string at `key` of `o`, or null when absent or not a string.
const json::string* str_at(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  const json::value* v = o->if_contains(key);
  return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
}

// `"key":"value"` or `"key":null`.
void put_str_or_null(std::string& out, std::string_view key, const json::string* v) {
  out += ",\"";
  out += key;
  out += "\":";
  out += v != nullptr ? json_quote(std::string_view(*v)) : std::string("null");
}
void put_str_or_null(std::string& out, std::string_view key, std::string_view v) {
  out += ",\"";
  out += key;
  out += "\":";
  out += v.empty() ? std::string("null") : json_quote(v);
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool one_of_status(std::string_view s) {
  return s == "queued" || s == "sending" || s == "sent" || s == "failed";
}

}  // namespace

// The error table of §2.2 is ordered: not JSON, then not an auth object, then no credential;
// the credential itself is judged by the caller (it needs the directory or the store).
auth_frame decode_auth(std::string_view text, bool binary) {
  auth_frame f;
  if (binary) return f;  // a binary frame is "not valid JSON" (§2.2)
  auto v = parse_frame(text);
  if (!v) return f;
  f.k = auth_frame::kind::not_auth;
  const json::object* o = v->if_object();
  const json::string* type = str_at(o, "type");
  if (type == nullptr || *type != "auth") return f;
  // §2.1: apiKey when it is a string, else token.
  if (const json::string* k = str_at(o, "apiKey")) {
    f.k = auth_frame::kind::api_key;
    f.credential = std::string(*k);
  } else if (const json::string* t = str_at(o, "token")) {
    f.k = auth_frame::kind::token;
    f.credential = std::string(*t);
  } else {
    f.k = auth_frame::kind::no_credential;
  }
  return f;
}

bool is_ping(std::string_view text, bool binary) {
  // Cheap reject: a ping frame is tiny; anything long is ignored without a parse.
  if (binary || text.size() > 256) return false;
  auto v = parse_frame(text);
  if (!v) return false;
  const json::string* type = str_at(v->if_object(), "type");
  return type != nullptr && *type == "ping";
}

// Written by hand rather than through a json::object: the key order of §2.3 is kept (clients
// must not rely on it, but the seed's logs read as the spec shows), and this runs once per event
// for all smsgw sockets (the render slot), so it allocates one string.
std::string render_event(const event& e) {
  const json::object* data = e.data_object();
  const std::string ts = format_rfc3339_ms(e.time_ms);
  std::string out;
  out.reserve(256 + e.data.size());
  if (e.type == type_status) {
    out = "{\"type\":\"sms_status\",\"messageId\":" + json_quote(e.subject);
    put_str_or_null(out, "appId", e.app);
    out += ",\"tenantId\":" + json_quote(e.tenant);
    put_str_or_null(out, "status", str_at(data, "status"));
    // Only when the data holds a non-empty string for them (§2.3).
    for (std::string_view k : {std::string_view("rcMessageId"), std::string_view("error")}) {
      const json::string* v = str_at(data, k);
      if (v != nullptr && !v->empty()) put_str_or_null(out, k, v);
    }
  } else if (e.type == type_inbound) {
    out = "{\"type\":\"sms_inbound\",\"messageId\":" + json_quote(e.subject);
    put_str_or_null(out, "from", str_at(data, "from"));
    put_str_or_null(out, "to", str_at(data, "to"));
    put_str_or_null(out, "body", str_at(data, "body"));
    put_str_or_null(out, "rcMessageId", str_at(data, "rcMessageId"));
    out += ",\"tenantId\":" + json_quote(e.tenant);
  } else {
    return {};  // other types never reach this dialect's sockets (its filter names these two)
  }
  out += ",\"timestamp\":\"" + ts + "\"}";
  return out;
}

std::string auth_error_frame(std::string_view text) {
  return "{\"type\":\"auth_error\",\"error\":" + json_quote(text) + "}";
}

std::string error_body(std::string_view text) { return "{\"error\":" + json_quote(text) + "}"; }

http_response error_reply(int status, std::string_view text) {
  return json_response(status, error_body(text));
}

std::string record_status(const event& latest) {
  if (latest.type == type_inbound) return "received";
  const json::string* s = str_at(latest.data_object(), "status");
  return s != nullptr ? std::string(*s) : std::string();
}

// Every key always present (§5): a client's record type never meets a missing field.
std::string render_record(const event& latest, std::int64_t created_ms) {
  const json::object* data = latest.data_object();
  const bool inbound = latest.type == type_inbound;
  std::string out = "{\"messageId\":" + json_quote(latest.subject);
  out += inbound ? ",\"direction\":\"inbound\"" : ",\"direction\":\"outbound\"";
  put_str_or_null(out, "status", record_status(latest));
  // Fields absent from the latest event are null (§4.3): publishers repeat them.
  put_str_or_null(out, "to", str_at(data, "to"));
  put_str_or_null(out, "from", str_at(data, "from"));
  put_str_or_null(out, "body", str_at(data, "body"));
  put_str_or_null(out, "rcMessageId", str_at(data, "rcMessageId"));
  put_str_or_null(out, "error", inbound ? nullptr : str_at(data, "error"));
  put_str_or_null(out, "appId", latest.app);
  out += ",\"tenantId\":" + json_quote(latest.tenant);
  put_str_or_null(out, "userId", str_at(data, "userId"));
  out += ",\"createdAt\":\"" + format_rfc3339_ms(created_ms) + "\"";
  out += ",\"updatedAt\":\"" + format_rfc3339_ms(latest.time_ms) + "\"}";
  return out;
}

bool valid_message_id(std::string_view s) noexcept {
  if (s.size() < 5 || s.size() > 68 || s.substr(0, 4) != "msg_") return false;
  for (char c : s.substr(4))
    if (!is_alnum(c)) return false;
  return true;
}

bool valid_e164(std::string_view s) noexcept {
  if (s.size() < 10 || s.size() > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9') return false;
  for (char c : s.substr(2))
    if (c < '0' || c > '9') return false;
  return true;
}

// §5 counts the body in code points, not bytes: a 1600-character text of accented letters is
// about 3200 bytes and must pass. The body came through a JSON parser, so it is valid UTF-8.
std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

// The order of the checks is the order of §4.1, so the first broken rule is the one named.
status check_draft(const event_draft& d) {
  const bool is_status = d.type == type_status;
  if (!is_status && d.type != type_inbound) return {};
  if (!valid_message_id(d.subject))
    return {errc::bad_message, "subject: must match ^msg_[0-9A-Za-z]{1,64}$"};
  if (!d.retain) return {errc::bad_message, "retain: must be true for " + d.type};
  if (is_status && d.app.empty()) return {errc::bad_message, "app: required for sms.status"};
  boost::system::error_code ec;
  json::value v = json::parse(d.data, ec);
  if (ec || !v.is_object()) return {errc::bad_message, "data: must be a JSON object"};
  const json::object& o = v.get_object();
  // The optional fields: strings or null when present.
  for (std::string_view k : {"rcMessageId", "error", "to", "from", "body", "userId"}) {
    const json::value* f = o.if_contains(k);
    if (f != nullptr && !f->is_string() && !f->is_null())
      return {errc::bad_message, "data." + std::string(k) + ": must be a string or null"};
  }
  if (is_status) {
    const json::string* st = str_at(&o, "status");
    if (st == nullptr || !one_of_status(*st))
      return {errc::bad_message, "data.status: must be queued, sending, sent or failed"};
    const json::string* err = str_at(&o, "error");
    if (*st == "failed" && (err == nullptr || err->empty()))
      return {errc::bad_message, "data.error: a non-empty string is required when failed"};
  } else {
    for (std::string_view k : {"from", "to", "body"})
      if (str_at(&o, k) == nullptr)
        return {errc::bad_message, "data." + std::string(k) + ": must be a string"};
  }
  return {};
}

// A bare date is UTC midnight (§5); anything longer must be a full RFC 3339 time.
std::optional<std::int64_t> parse_date(std::string_view s) {
  if (s.size() == 10 && s[4] == '-' && s[7] == '-')
    return parse_rfc3339_ms(std::string(s) + "T00:00:00Z");
  return parse_rfc3339_ms(s);
}

// Opaque to clients: base64url of a small JSON object. It is not signed: a forged cursor can
// only move the caller's own keyset position, never widen the scope (the query re-applies it).
std::string encode_cursor(const cursor& c) {
  json::object o{{"c", c.created_ms}, {"t", c.tenant}, {"m", c.message_id}, {"q", c.query_hash}};
  return base64url_encode(json::serialize(o));
}

std::optional<cursor> decode_cursor(std::string_view text) {
  auto raw = base64url_decode(text);
  if (!raw) return std::nullopt;
  auto v = parse_frame(*raw);
  if (!v || !v->is_object()) return std::nullopt;
  const json::object& o = v->get_object();
  const json::value* c = o.if_contains("c");
  const json::string *t = str_at(&o, "t"), *m = str_at(&o, "m"), *q = str_at(&o, "q");
  if (c == nullptr || !c->is_int64() || t == nullptr || m == nullptr || q == nullptr)
    return std::nullopt;
  return cursor{c->get_int64(), std::string(*t), std::string(*m), std::string(*q)};
}

std::string new_message_id() { return "msg_" + hex_encode(random_bytes(6)); }

}  // namespace herald::smsgw
