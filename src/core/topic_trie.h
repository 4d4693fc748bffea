// A subscription index by topic pattern: a trie of pattern segments ("*" and "**" as their own
// branches), so an event visits only the sessions whose filters can match its topic, instead of
// every session of its tenant. Entries are (pattern, session) pairs; a session with several
// filters appears once per filter. Owned by one shard; not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herald {

struct session;

class topic_trie {
 public:
  // `pattern` is a compiled filter's topic (`~` resolved).
  void add(std::string_view pattern, session* s);
  void remove(std::string_view pattern, session* s);
  bool empty() const noexcept { return size_ == 0; }

  // Calls f(session*) for every entry whose pattern matches `topic` (a session may come more
  // than once when several of its filters match).
  template <class F>
  void match(std::string_view topic, F&& f) const {
    std::vector<std::string_view> segs;
    split(topic, segs);
    visit(root_, segs, 0, f);
  }

 private:
  struct node {
    std::unordered_map<std::string, std::unique_ptr<node>> children;  // literal, "*", "**"
    std::vector<session*> here;  // patterns ending at this node
  };
  static void split(std::string_view topic, std::vector<std::string_view>& out);
  template <class F>
  static void visit(const node& n, const std::vector<std::string_view>& segs, std::size_t i, F& f) {
    if (i == segs.size()) {
      for (session* s : n.here) f(s);
      return;
    }
    if (n.children.empty()) return;
    if (auto it = n.children.find(std::string(segs[i])); it != n.children.end())
      visit(*it->second, segs, i + 1, f);
    if (auto it = n.children.find("*"); it != n.children.end()) visit(*it->second, segs, i + 1, f);
    if (auto it = n.children.find("**"); it != n.children.end())
      for (session* s : it->second->here) f(s);  // `**` is last: one or more segments remain
  }
  node root_;
  std::size_t size_ = 0;
};

}  // namespace herald
