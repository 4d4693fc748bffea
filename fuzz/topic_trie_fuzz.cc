// The topic trie against a naive reference: the input is a program of subscribe / unsubscribe /
// publish actions over a small alphabet of segments (so patterns and topics collide often). The
// reference keeps a list of (session, compiled filter) and asks filter::matches_topic of each;
// every publish must call back exactly the reference's entries (as a multiset: a session with
// two matching filters comes twice), and an unsubscribe of an entry that is not there changes
// nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/filter.h"
#include "core/session.h"
#include "core/topic_trie.h"

namespace {

const char* const pattern_segs[] = {"a", "b", "*", "**", "~", "t1", "c"};
const char* const topic_segs[] = {"a", "b", "t1", "c", "d"};
constexpr std::size_t n_sessions = 6;

struct entry {
  std::size_t id;
  herald::filter f;
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static herald::session sessions[n_sessions];
  herald::topic_trie trie;
  std::vector<entry> ref;
  std::size_t pos = 0;
  auto next = [&]() -> std::uint8_t { return pos < size ? data[pos++] : 0; };
  auto id_of = [&](herald::session* s) { return static_cast<std::size_t>(s - sessions); };
  while (pos < size) {
    const std::uint8_t op = next();
    switch (op % 4) {
      case 0:
      case 1: {  // subscribe: a session and a pattern of 1..5 segments
        const std::size_t id = next() % n_sessions;
        const std::size_t len = 1 + next() % 5;
        std::string pattern;
        for (std::size_t k = 0; k < len; ++k)
          pattern += std::string("/") + pattern_segs[next() % 7];
        auto f = herald::filter::compile({pattern, {}, {}, {}}, "t1", {});
        if (!f) break;  // '**' not last: the hub never indexes it
        trie.add(f->spec().topic, &sessions[id]);
        ref.push_back({id, std::move(*f)});
        break;
      }
      case 2: {  // unsubscribe: an entry held, or one that is not (a no-op for both)
        const std::uint8_t pick = next();
        if (ref.empty() || pick >= 0xf0) {
          const std::size_t id = next() % n_sessions;
          const std::string pattern = std::string("/") + topic_segs[next() % 5] + "/missing";
          trie.remove(pattern, &sessions[id]);
          break;
        }
        const std::size_t i = pick % ref.size();
        trie.remove(ref[i].f.spec().topic, &sessions[ref[i].id]);
        ref.erase(ref.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
      case 3: {  // publish: a topic of 1..6 segments
        const std::size_t len = 1 + next() % 6;
        std::string topic;
        for (std::size_t k = 0; k < len; ++k) topic += std::string("/") + topic_segs[next() % 5];
        std::vector<std::size_t> got, want;
        trie.match(topic, [&](herald::session* s) { got.push_back(id_of(s)); });
        for (const auto& e : ref)
          if (e.f.matches_topic(topic)) want.push_back(e.id);
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        check(got == want);
        break;
      }
    }
    check(trie.empty() == ref.empty());
  }
  // Removing everything left empties the trie (its pruning leaves no entry behind).
  for (const auto& e : ref) trie.remove(e.f.spec().topic, &sessions[e.id]);
  check(trie.empty());
  return 0;
}
