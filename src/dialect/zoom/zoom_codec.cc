#include "dialect/zoom/zoom_codec.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "api/json_util.h"

namespace herald::zoom {
namespace json = boost::json;
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// The index just past the string literal starting at s[i] == '"', or npos when unterminated.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;  // the escaped character (a \uXXXX's hex digits are plain characters)
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The index just past the value starting at s[i]: a string, a nested object or array (strings
// inside skipped as strings, so brackets in them do not count), or a scalar. npos when it runs
// off the end. The text was validated by Boost.JSON before, so only the extent matters here.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    std::size_t depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i;
}

std::optional<std::string> decode_key(std::string_view token) {
  // Keys without escapes are their bytes; the rest are decoded as Boost.JSON reads them, so
  // "\u006fbject" is `object` here as it is to every other reader of `data`.
  if (token.find('\\') == std::string_view::npos)
    return std::string(token.substr(1, token.size() - 2));
  boost::system::error_code ec;
  json::value v = json::parse(token, ec);
  if (ec || !v.is_string()) return std::nullopt;
  return std::string(v.get_string());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size()) {
      const int hi = hex_digit(v[i + 1]), lo = hex_digit(v[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(v[i]);  // `+` included: RFC 3986 gives it no meaning (§3)
  }
  return out;
}

}  // namespace

client_module decode_client_frame(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
  while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
  if (t == "heartbeat") return client_module::heartbeat;
  if (t.empty() || t.front() != '{') return client_module::ignored;
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;  // the frame is at most max_client_frame_bytes; nesting buys nothing
  json::value v = json::parse(t, ec, {}, opts);
  if (ec || !v.is_object()) return client_module::ignored;
  const json::value* m = v.get_object().if_contains("module");
  if (m != nullptr && m->is_string() && m->get_string() == "heartbeat")
    return client_module::heartbeat;
  return client_module::ignored;
}

std::string envelope(std::string_view module, bool success, std::string_view content,
                     std::string_view header_json) {
  std::string out = "{\"module\":";
  out += json_quote(module);
  out += success ? ",\"success\":true,\"content\":" : ",\"success\":false,\"content\":";
  out += json_quote(content);
  out += ",\"header\":";
  out += header_json;
  out += '}';
  return out;
}

std::optional<std::vector<raw_member_span>> object_members(std::string_view s) {
  std::vector<raw_member_span> out;
  std::size_t i = skip_space(s, 0);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  i = skip_space(s, i + 1);
  if (i < s.size() && s[i] == '}')
    return skip_space(s, i + 1) == s.size() ? std::optional(out) : std::nullopt;
  while (i < s.size()) {
    if (s[i] != '"') return std::nullopt;
    const std::size_t key_end = skip_string(s, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    auto key = decode_key(s.substr(i, key_end - i));
    if (!key) return std::nullopt;
    std::size_t j = skip_space(s, key_end);
    if (j >= s.size() || s[j] != ':') return std::nullopt;
    const std::size_t value_at = skip_space(s, j + 1);
    const std::size_t value_end = skip_value(s, value_at);
    if (value_end == std::string_view::npos || value_end == value_at) return std::nullopt;
    out.push_back(raw_member_span{std::move(*key), s.substr(i, value_end - i),
                                  s.substr(value_at, value_end - value_at)});
    j = skip_space(s, value_end);
    if (j >= s.size()) return std::nullopt;
    if (s[j] == '}') return skip_space(s, j + 1) == s.size() ? std::optional(out) : std::nullopt;
    if (s[j] != ',') return std::nullopt;
    i = skip_space(s, j + 1);
  }
  return std::nullopt;
}

std::string webhook_body(const event& e) {
  std::string out = "{\"event\":";
  out += json_quote(e.type);
  out += ",\"event_ts\":";
  out += std::to_string(e.time_ms);
  out += ",\"payload\":{\"account_id\":";
  out += json_quote(e.tenant);
  // Payload form (§4.3): a data object holding an object-valued `object` is the payload
  // itself, so publishers can add the webhook extras (operator, old_object, ...).
  auto members = object_members(e.data);
  bool payload_form = false;
  if (members) {
    for (const auto& m : *members) {
      // The last `object` wins, as with every JSON reader that keeps one value per key.
      if (m.key == "object") payload_form = !m.value.empty() && m.value.front() == '{';
    }
  }
  if (payload_form) {
    for (const auto& m : *members) {
      if (m.key == "account_id") continue;  // the tenant is the account, whatever data says
      out += ',';
      out += m.member;
    }
    out += "}}";
    return out;
  }
  out += ",\"object\":";
  out += e.data.empty() ? std::string_view("{}") : std::string_view(e.data);
  out += "}}";
  return out;
}

std::string quoted_webhook_body(const event& e) { return json_quote(webhook_body(e)); }

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    const std::string key = percent_decode(pair.substr(0, eq));
    if (key != name) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

}  // namespace herald::zoom
