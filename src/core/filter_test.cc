#include "core/filter.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

filter make(const std::string& topic, std::optional<std::vector<std::string>> types = std::nullopt,
            std::optional<std::vector<std::string>> subjects = std::nullopt,
            std::vector<std::pair<std::string, where_value>> where = {}) {
  filter_spec s{topic, std::move(types), std::move(subjects), std::move(where)};
  auto f = filter::compile(s, "acme", filter_limits{});
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.err().message);
  return std::move(f).value();
}

std::shared_ptr<event> ev(std::string topic, std::string type = "t", std::string subject = "",
                          std::string data = "{}") {
  auto e = std::make_shared<event>();
  e->topic = std::move(topic);
  e->type = std::move(type);
  e->subject = std::move(subject);
  e->data = std::move(data);
  e->tenant = "acme";
  return e;
}

TEST(topic, validity) {
  EXPECT_TRUE(valid_topic("/a"));
  EXPECT_TRUE(valid_topic("/accounts/42/sms"));
  EXPECT_FALSE(valid_topic(""));
  EXPECT_FALSE(valid_topic("/"));
  EXPECT_FALSE(valid_topic("a/b"));
  EXPECT_FALSE(valid_topic("/a//b"));
  EXPECT_FALSE(valid_topic("/a/"));
  EXPECT_FALSE(valid_topic("/" + std::string(1024, 'x')));
  EXPECT_FALSE(valid_topic(std::string("/a\0b", 4)));
  EXPECT_FALSE(valid_topic("/a\nb"));
  EXPECT_FALSE(valid_topic("/a/\x7f"));
  EXPECT_FALSE(valid_topic("/a/*"));
  EXPECT_FALSE(valid_topic("/**/b"));
  EXPECT_TRUE(valid_topic("/a*/b**/c*d"));  // a `*` inside a segment is an ordinary byte
}

TEST(filter, wildcards) {
  auto one = make("/a/*/c");
  EXPECT_TRUE(one.matches_topic("/a/b/c"));
  EXPECT_FALSE(one.matches_topic("/a/b/x/c"));
  EXPECT_FALSE(one.matches_topic("/a/c"));
  auto rest = make("/a/**");
  EXPECT_TRUE(rest.matches_topic("/a/b"));
  EXPECT_TRUE(rest.matches_topic("/a/b/c/d"));
  EXPECT_FALSE(rest.matches_topic("/a"));
  EXPECT_FALSE(rest.matches_topic("/b/a"));
  auto all = make("/**");
  EXPECT_TRUE(all.matches_topic("/x"));
  EXPECT_TRUE(all.matches_topic("/x/y/z"));
  auto own = make("/accounts/~/sms");
  EXPECT_TRUE(own.matches_topic("/accounts/acme/sms"));
  EXPECT_FALSE(own.matches_topic("/accounts/other/sms"));
  EXPECT_EQ(own.spec().topic, "/accounts/acme/sms");
}

TEST(filter, rejects) {
  filter_limits l;
  EXPECT_FALSE(filter::compile({"/a/**/b", {}, {}, {}}, "t", l).ok());
  EXPECT_FALSE(filter::compile({"/a/b*", {}, {}, {}}, "t", l).ok());
  EXPECT_FALSE(filter::compile({"a", {}, {}, {}}, "t", l).ok());
  EXPECT_FALSE(filter::compile({"/a//b", {}, {}, {}}, "t", l).ok());
  EXPECT_FALSE(filter::compile({"/a", std::vector<std::string>{}, {}, {}}, "t", l).ok());
  EXPECT_FALSE(filter::compile({"/a", std::vector<std::string>{"bad type"}, {}, {}}, "t", l).ok());
  // Within 1024 bytes as written, over it once each `~` becomes "t1" (found by the fuzzer).
  std::string tildes;
  while (tildes.size() + 2 <= max_topic_bytes) tildes += "/~";
  ASSERT_LE(tildes.size(), max_topic_bytes);
  auto grown = filter::compile({tildes, {}, {}, {}}, "t1", l);
  ASSERT_FALSE(grown.ok());
  EXPECT_EQ(grown.err().code, errc::invalid_filter);
  l.max_types_per_filter = 1;
  auto r = filter::compile({"/a", std::vector<std::string>{"x", "y"}, {}, {}}, "t", l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_filter);
  EXPECT_NE(r.err().message.find("types"), std::string::npos);
}

TEST(filter, types_subjects_where) {
  auto f = make("/**", std::vector<std::string>{"sms.*", "call"});
  EXPECT_TRUE(f.matches(*ev("/x", "sms.inbound")));
  EXPECT_TRUE(f.matches(*ev("/x", "call")));
  EXPECT_FALSE(f.matches(*ev("/x", "callx")));
  EXPECT_FALSE(f.matches(*ev("/x", "smsx")));
  auto s = make("/**", std::nullopt, std::vector<std::string>{"m1"});
  EXPECT_TRUE(s.matches(*ev("/x", "t", "m1")));
  EXPECT_FALSE(s.matches(*ev("/x", "t", "m2")));
  EXPECT_FALSE(s.matches(*ev("/x", "t", "")));
  auto w = make("/**", std::nullopt, std::nullopt, {{"n", 3.0}, {"s", std::string("x")}});
  EXPECT_TRUE(w.matches(*ev("/x", "t", "", R"({"n":3,"s":"x"})")));
  EXPECT_TRUE(w.matches(*ev("/x", "t", "", R"({"n":3.0,"s":"x","o":1})")));
  EXPECT_FALSE(w.matches(*ev("/x", "t", "", R"({"n":"3","s":"x"})")));
  EXPECT_FALSE(w.matches(*ev("/x", "t", "", R"({"s":"x"})")));
  EXPECT_FALSE(w.matches(*ev("/x", "t", "", R"({"n":4,"s":"x"})")));
}

}  // namespace
}  // namespace herald
