#include "api/json_util.h"

#include <random>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <gtest/gtest.h>

namespace herald {
namespace {

std::string boost_quoted(std::string_view s) {
  return boost::json::serialize(boost::json::string(s.data(), s.size()));
}

// The fast path (printable ASCII copied as it is) must write what Boost.JSON's serializer
// writes, for every byte value, alone and among plain text.
TEST(JsonQuote, EveryByteAsBoostJsonWritesIt) {
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(json_quote(one), boost_quoted(one)) << "byte " << b;
    const std::string mixed = "ab" + one + "cd";
    EXPECT_EQ(json_quote(mixed), boost_quoted(mixed)) << "byte " << b;
  }
  EXPECT_EQ(json_quote(""), "\"\"");
  EXPECT_EQ(json_quote("/orders/42"), "\"/orders/42\"");
  EXPECT_EQ(json_quote("a\"b\\c\n"), R"("a\"b\\c\n")");
  EXPECT_EQ(json_quote("caf\xc3\xa9"), boost_quoted("caf\xc3\xa9"));
}

TEST(JsonQuote, RandomStringsAsBoostJsonWritesThem) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 24, '\0');
    // Mostly printable ASCII, sometimes anything: both paths are exercised.
    for (char& c : s) c = static_cast<char>(i % 3 == 0 ? rng() % 256 : 0x20 + rng() % 0x5f);
    std::string appended = "x";
    append_json_quoted(appended, s);
    EXPECT_EQ(appended, "x" + boost_quoted(s)) << "case " << i;
  }
}

TEST(RenderEventJson, NativeEventObject) {
  event e;
  e.id = "ev_1";
  e.offset = 42;
  e.topic = "/a/\"b\"";
  e.type = "t.x";
  e.tenant = "acme";
  e.subject = "s1";
  e.time_ms = 0;
  e.data = R"({"k": 1.50})";
  EXPECT_EQ(render_event_json(e),
            R"({"id":"ev_1","offset":42,"topic":"/a/\"b\"","type":"t.x","tenant":"acme",)"
            R"("subject":"s1","time":"1970-01-01T00:00:00.000Z","data":{"k": 1.50}})");
}

}  // namespace
}  // namespace herald
