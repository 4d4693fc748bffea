#include "dialect/tracker/tracker_codec.h"

#include <algorithm>
#include <unordered_set>

#include <boost/json.hpp>

#include "api/json_util.h"
#include "api/raw_json.h"
#include "auth/crypto.h"

namespace herald::tracker {
namespace json = boost::json;

std::string_view description(int code) {
  switch (code) {
    case wrong_hash:
      return "Wrong user hash";
    case session_ended:
      return "User not found or session ended";
    case wrong_format:
      return "Wrong request format";
    case invalid_params:
      return "Invalid parameters";
    case too_large:
      return "Too large request";
    case access_denied:
      return "Access denied";
    case not_permitted:
      return "Operation not permitted";
    case rate_limited:
      return "Too many requests (rate limit exceeded)";
    case wrong_login:
      return "Wrong login or password";
    case logins_limit:
      return "Logins limit exceeded, please reuse existing sessions instead";
    case login_attempts:
      return "Login attempts limit exceeded, try again later";
    case not_found:
      return "Not found in database";
    case device_blocked:
      return "Device blocked";
    default:
      return "Unexpected error";
  }
}

int http_status(int code) {
  switch (code) {
    case too_large:
      return 412;
    case access_denied:
    case not_permitted:
    case device_blocked:
      return 403;
    case rate_limited:
      return 429;
    case unexpected:
      return 500;
    default:
      return 400;
  }
}

std::string_view action_name(action a) {
  switch (a) {
    case action::subscribe:
      return "subscription/subscribe";
    case action::unsubscribe:
      return "subscription/unsubscribe";
    case action::none:
      break;
  }
  return "";
}

bool valid_hash(std::string_view hash) {
  return hash.size() == 32 && std::all_of(hash.begin(), hash.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<std::int64_t> parse_tracker_id(std::string_view text) {
  if (text.empty() || text.size() > 10 || text.front() == '0') return std::nullopt;
  std::int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max_tracker_id) return std::nullopt;
  return v;
}

bool is_heartbeat(std::string_view text) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && ws(text.front())) text.remove_prefix(1);
  while (!text.empty() && ws(text.back())) text.remove_suffix(1);
  return text == "X";
}

namespace {

// A tracker id as JSON: an integer 1…2147483647 (1.0 and "1" are not).
std::optional<std::int64_t> json_tracker_id(const json::value& v) {
  std::int64_t n = 0;
  if (v.is_int64())
    n = v.get_int64();
  else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(max_tracker_id))
    n = static_cast<std::int64_t>(v.get_uint64());
  else
    return std::nullopt;
  if (n < 1 || n > max_tracker_id) return std::nullopt;
  return n;
}

// The error data of 3/4/7/9/13: the request's `events` and `trackers` members that were present,
// as sent (their exact bytes).
std::string echo_of(std::string_view text) {
  std::string out = "{";
  for (std::string_view key : {"events", "trackers"}) {
    if (auto raw = raw_member(text, key)) {
      if (out.size() > 1) out += ',';
      out += '"';
      out += key;
      out += "\":";
      out += *raw;
    }
  }
  out += '}';
  return out;
}

}  // namespace

request decode(std::string_view text, std::size_t max_trackers) {
  request r;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    r.error = wrong_format;
    r.detail = ec ? "not JSON" : "not a JSON object";
    return r;
  }
  const json::object& o = v.get_object();
  const json::value* a = o.if_contains("action");
  if (a == nullptr || !a->is_string()) {
    r.error = wrong_format;
    r.detail = "action: a string is required";
    return r;
  }
  if (a->get_string() == "subscribe") {
    r.act = action::subscribe;
  } else if (a->get_string() == "unsubscribe") {
    r.act = action::unsubscribe;
  } else {
    r.error = wrong_format;
    r.detail = "action: subscribe or unsubscribe";
    return r;
  }
  r.echo = echo_of(text);
  const json::value* h = o.if_contains("hash");
  if (h == nullptr || !h->is_string() || !valid_hash(h->get_string())) {
    r.error = wrong_hash;
    return r;
  }
  r.hash = std::string(h->get_string());
  // Shape (7), then counts (9).
  const json::value* ev = o.if_contains("events");
  const json::value* tr = o.if_contains("trackers");
  bool ok = ev != nullptr && ev->is_array() && !ev->get_array().empty() && tr != nullptr &&
            tr->is_array();
  if (ok) {
    for (const auto& e : ev->get_array()) ok = ok && e.is_string() && e.get_string() == "state";
    std::unordered_set<std::int64_t> seen;
    for (const auto& t : tr->get_array()) {
      auto id = json_tracker_id(t);
      if (!id) {
        ok = false;
        break;
      }
      if (seen.insert(*id).second) r.trackers.push_back(*id);
    }
  }
  if (!ok) {
    r.late_error = invalid_params;
    r.trackers.clear();
  } else if (tr->get_array().size() > max_trackers) {
    r.late_error = too_large;
    r.trackers.clear();
  }
  return r;
}

// ---- server frames

std::size_t utf16_units(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    if (c >= 0xF0 && c <= 0xF4)
      len = 4;
    else if (c >= 0xE0)
      len = c <= 0xEF ? 3 : 1;
    else if (c >= 0xC2)
      len = 2;
    if (len > 1) {  // a well-formed sequence, else each byte counts one
      bool good = i + len <= s.size();
      for (std::size_t k = 1; good && k < len; ++k)
        good = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
      if (!good) len = 1;
    }
    n += len == 4 ? 2 : 1;
    i += len;
  }
  return n;
}

std::string frame(std::string_view payload, bool track_size) {
  if (!track_size) return std::string(payload);
  std::string out = std::to_string(utf16_units(payload));
  out += '|';
  out += payload;
  return out;
}

std::string handshake(std::string_view uuid, std::int64_t heartbeat_ms) {
  return std::string(uuid) + "|" + std::to_string(heartbeat_ms) + "|X|";
}

std::string_view status_name(tstatus s) {
  switch (s) {
    case tstatus::normal:
      return "normal";
    case tstatus::blocked:
      return "blocked";
    case tstatus::unknown:
      return "unknown";
    case tstatus::disallowed:
      return "disallowed";
  }
  return "unknown";
}

std::string subscribe_reply(const std::vector<std::pair<std::int64_t, tstatus>>& statuses) {
  std::string out =
      R"({"type":"response","action":"subscription/subscribe","events":["state"],"data":{"state":{)";
  bool first = true;
  for (const auto& [id, st] : statuses) {
    if (!first) out += ',';
    first = false;
    out += '"' + std::to_string(id) + "\":\"";
    out += status_name(st);
    out += '"';
  }
  out += "}}}";
  return out;
}

std::string unsubscribe_reply(const std::vector<std::int64_t>& ids) {
  std::string out =
      R"({"type":"response","action":"subscription/unsubscribe","events":["state"],"data":[)";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += "]}";
  return out;
}

std::string error_frame(action a, int code, std::string_view data_json) {
  std::string out = R"({"type":"error","action":)";
  out += a == action::none ? std::string("null") : json_quote(action_name(a));
  out += R"(,"status":{"code":)" + std::to_string(code) +
         ",\"description\":" + json_quote(description(code)) + "},\"data\":";
  out += data_json.empty() ? std::string_view("null") : data_json;
  out += '}';
  return out;
}

std::string state_head(std::string_view user_time) {
  return R"({"type":"event","event":"state","user_time":")" + std::string(user_time) +
         R"(","data":)";
}

std::string lifecycle_data(std::int64_t source_id, std::string_view what) {
  return R"({"source_id":)" + std::to_string(source_id) + R"(,"lifecycle_event":")" +
         std::string(what) + "\"}";
}

std::string new_uuid() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0F) | 0x40);
  b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3F) | 0x80);
  const std::string h = hex_encode(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

bool valid_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

}  // namespace herald::tracker
