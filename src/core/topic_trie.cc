#include "core/topic_trie.h"

#include <algorithm>

namespace herald {

void topic_trie::split(std::string_view topic, std::vector<std::string_view>& out) {
  std::size_t pos = 1;
  while (pos <= topic.size()) {
    const std::size_t end = std::min(topic.find('/', pos), topic.size());
    out.push_back(topic.substr(pos, end - pos));
    pos = end + 1;
  }
}

void topic_trie::add(std::string_view pattern, session* s) {
  std::vector<std::string_view> segs;
  split(pattern, segs);
  node* n = &root_;
  for (std::string_view seg : segs) {
    auto& child = n->children[std::string(seg)];
    if (!child) child = std::make_unique<node>();
    n = child.get();
  }
  n->here.push_back(s);
  ++size_;
}

void topic_trie::remove(std::string_view pattern, session* s) {
  std::vector<std::string_view> segs;
  split(pattern, segs);
  // Walk down remembering the path, remove one entry, then prune empty nodes bottom-up.
  std::vector<std::pair<node*, std::string>> path;
  node* n = &root_;
  for (std::string_view seg : segs) {
    auto it = n->children.find(std::string(seg));
    if (it == n->children.end()) return;
    path.emplace_back(n, std::string(seg));
    n = it->second.get();
  }
  auto it = std::find(n->here.begin(), n->here.end(), s);
  if (it == n->here.end()) return;
  n->here.erase(it);
  --size_;
  for (auto p = path.rbegin(); p != path.rend(); ++p) {
    auto c = p->first->children.find(p->second);
    if (!c->second->here.empty() || !c->second->children.empty()) break;
    p->first->children.erase(c);
  }
}

}  // namespace herald
