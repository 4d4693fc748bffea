// The topic matcher against a naive reference: the input picks a pattern and topics from a
// small alphabet of segments; compile() must accept exactly the valid patterns and
// matches_topic() must agree with the reference on every topic.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/filter.h"

namespace {

const char* const pattern_segs[] = {"a", "b", "*", "**", "~", "t1"};
const char* const topic_segs[] = {"a", "b", "t1", "c"};

bool reference(const std::vector<std::string>& p, std::size_t i, const std::vector<std::string>& t,
               std::size_t j) {
  if (i == p.size()) return j == t.size();
  if (p[i] == "**") return j < t.size();  // one or more remaining segments
  if (j == t.size()) return false;
  const std::string want = p[i] == "~" ? "t1" : p[i];
  if (p[i] != "*" && want != t[j]) return false;
  return reference(p, i + 1, t, j + 1);
}

std::string join(const std::vector<std::string>& segs) {
  std::string out;
  for (const auto& s : segs) out += "/" + s;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t pos = 0;
  const std::size_t plen = 1 + data[pos++] % 6;
  std::vector<std::string> pattern;
  for (std::size_t k = 0; k < plen && pos < size; ++k)
    pattern.emplace_back(pattern_segs[data[pos++] % 6]);
  bool valid = !pattern.empty();
  for (std::size_t k = 0; k + 1 < pattern.size(); ++k)
    if (pattern[k] == "**") valid = false;
  auto f = herald::filter::compile({join(pattern), {}, {}, {}}, "t1", {});
  if (f.ok() != valid) __builtin_trap();
  if (!f) return 0;
  while (pos < size) {
    const std::size_t tlen = 1 + data[pos++] % 6;
    std::vector<std::string> topic;
    for (std::size_t k = 0; k < tlen && pos < size; ++k)
      topic.emplace_back(topic_segs[data[pos++] % 4]);
    if (topic.empty()) break;
    if (f->matches_topic(join(topic)) != reference(pattern, 0, topic, 0)) __builtin_trap();
  }
  return 0;
}
