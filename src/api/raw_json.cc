#include "api/raw_json.h"

#include <boost/json/parse.hpp>

namespace herald {
namespace {

void skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

// At an opening quote: moves past the closing quote.
void skip_string(std::string_view s, std::size_t& i) {
  ++i;
  while (i < s.size() && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
  ++i;
}

// Moves past one value (well-formed input assumed; never reads past the end).
void skip_value(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return;
  if (s[i] == '"') {
    skip_string(s, i);
    return;
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        --depth;
        if (depth == 0) {
          ++i;
          return;
        }
      }
      ++i;
    }
    return;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    ++i;
}

// Whether the key written as `quoted` (with its quotes, possibly escaped) decodes to `key`.
bool key_equals(std::string_view quoted, std::string_view key) {
  if (quoted.size() < 2) return false;
  const std::string_view inner = quoted.substr(1, quoted.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == key;
  boost::system::error_code ec;
  const auto v = boost::json::parse(quoted, ec);
  return !ec && v.is_string() && std::string_view(v.get_string()) == key;
}

}  // namespace

std::vector<std::string_view> raw_array_elements(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '[') return out;
  ++i;
  while (i < s.size()) {
    skip_ws(s, i);
    if (i < s.size() && s[i] == ']') break;
    const std::size_t start = i;
    skip_value(s, i);
    out.push_back(s.substr(start, i - start));
    skip_ws(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
  return out;
}

std::optional<std::string_view> raw_member(std::string_view s, std::string_view key) {
  std::optional<std::string_view> found;
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return found;
  ++i;
  while (i < s.size()) {
    skip_ws(s, i);
    if (i >= s.size() || s[i] != '"') break;
    const std::size_t kstart = i;
    skip_string(s, i);
    const std::string_view quoted_key = s.substr(kstart, i - kstart);
    skip_ws(s, i);
    if (i < s.size() && s[i] == ':') ++i;
    skip_ws(s, i);
    const std::size_t vstart = i;
    skip_value(s, i);
    if (key_equals(quoted_key, key)) found = s.substr(vstart, i - vstart);
    skip_ws(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
  return found;
}

}  // namespace herald
