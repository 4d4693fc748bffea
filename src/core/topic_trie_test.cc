#include "core/topic_trie.h"

#include <set>

#include <gtest/gtest.h>

#include "core/filter.h"
#include "core/session.h"

namespace herald {
namespace {

std::set<session*> matches(const topic_trie& t, std::string_view topic) {
  std::set<session*> out;
  t.match(topic, [&](session* s) { out.insert(s); });
  return out;
}

TEST(topic_trie, agrees_with_the_filter_matcher) {
  const std::vector<std::string> patterns = {"/a",  "/a/b",   "/a/*",  "/a/**", "/*/b",
                                             "/**", "/x/*/z", "/x/**", "/a/b/c"};
  const std::vector<std::string> topics = {"/a", "/a/b", "/a/c", "/a/b/c",  "/x/y/z",
                                           "/x", "/x/y", "/q/b", "/a/b/c/d"};
  std::vector<session> sessions(patterns.size());
  topic_trie t;
  for (std::size_t i = 0; i < patterns.size(); ++i) t.add(patterns[i], &sessions[i]);
  for (const auto& topic : topics) {
    std::set<session*> want;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      auto f = filter::compile({patterns[i], {}, {}, {}}, "t", {});
      ASSERT_TRUE(f.ok());
      if (f->matches_topic(topic)) want.insert(&sessions[i]);
    }
    EXPECT_EQ(matches(t, topic), want) << topic;
  }
  for (std::size_t i = 0; i < patterns.size(); ++i) t.remove(patterns[i], &sessions[i]);
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(matches(t, "/a/b").empty());
}

TEST(topic_trie, duplicate_entries_are_removed_one_at_a_time) {
  session s;
  topic_trie t;
  t.add("/a/*", &s);
  t.add("/a/*", &s);
  t.remove("/a/*", &s);
  EXPECT_EQ(matches(t, "/a/b").size(), 1u);
  t.remove("/a/*", &s);
  EXPECT_TRUE(t.empty());
}

}  // namespace
}  // namespace herald
