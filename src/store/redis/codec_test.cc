// The wire pieces that need no server: command encoding, the URL parser, and the reply parser
// (hiredis's reader building `reply` values, with the size bound) fed byte by byte.
#include <string>

#include <gtest/gtest.h>

#include "store/redis/reply.h"
#include "store/redis/resp_reader.h"
#include "store/redis/url.h"

namespace herald::redis {
namespace {

TEST(RedisCommand, EncodesBinarySafeBulkStrings) {
  std::string value("a\0b\r\n$*", 7);
  command c{"SET", "k"};
  c.arg(value).arg(std::int64_t{-42});
  EXPECT_EQ(c.argc(), 4u);
  EXPECT_EQ(c.wire(),
            std::string("*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\na\0b\r\n$*\r\n$3\r\n-42\r\n", 42));
  EXPECT_EQ(command{}.wire(), "*0\r\n");
  EXPECT_EQ(command{""}.wire(), "*1\r\n$0\r\n\r\n");
}

TEST(RedisUrl, ParsesHostPortDb) {
  auto u = parse_url("redis://127.0.0.1:6380/3");
  ASSERT_TRUE(u.ok()) << u.err().message;
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 3u);
  u = parse_url("redis://cache.internal");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0u);
  u = parse_url("redis://[::1]:7000/0");
  ASSERT_TRUE(u.ok()) << u.err().message;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->to_string(), "redis://[::1]:7000/0");
}

TEST(RedisUrl, RefusesWhatIsNotStrictlyAUrl) {
  struct bad_case {
    const char* text;
    const char* names;
  };
  for (auto [text, names] : {
           bad_case{"http://h:1", "must start with redis://"},
           bad_case{"redis://", "host: empty"},
           bad_case{"redis://:6379", "host: empty"},
           bad_case{"redis://h:", "port"},
           bad_case{"redis://h:0", "port"},
           bad_case{"redis://h:65536", "port"},
           bad_case{"redis://h:+1", "port"},
           bad_case{"redis://h:12ab", "port"},
           bad_case{"redis://h: 1", "port"},
           bad_case{"redis://h:1/", "db"},
           bad_case{"redis://h:1/-1", "db"},
           bad_case{"redis://h:1/x", "db"},
           bad_case{"redis://h:1/2/3", "db"},
           bad_case{"redis://h:1/2147483648", "db"},
           bad_case{"redis://u:p@h:1", "credentials"},
           bad_case{"redis://h:1/0?x=1", "query"},
           bad_case{"redis://h h:1", "host"},
           bad_case{"redis://[::1:1", "unclosed"},
       }) {
    auto u = parse_url(text);
    ASSERT_FALSE(u.ok()) << text;
    EXPECT_EQ(u.err().code, errc::bad_message);
    EXPECT_NE(u.err().message.find(names), std::string::npos) << text << ": " << u.err().message;
    EXPECT_NE(u.err().message.find(text), std::string::npos) << u.err().message;
  }
}

// Feeds `wire` one byte at a time and returns every reply (the reader must cope with any split).
std::vector<reply> parse_bytewise(resp_reader& rd, const std::string& wire) {
  std::vector<reply> out;
  for (char c : wire) {
    rd.feed(&c, 1);
    reply r;
    resp_reader::status s;
    while ((s = rd.next(r)) == resp_reader::status::reply) out.push_back(std::move(r));
    EXPECT_NE(s, resp_reader::status::error) << rd.error_message();
  }
  return out;
}

TEST(RespReader, ParsesEveryKindSplitAnywhere) {
  resp_reader rd(1 << 20);
  std::string bin("x\0\r\ny", 5);
  auto replies =
      parse_bytewise(rd, "+OK\r\n-ERR boom\r\n:-7\r\n$-1\r\n$5\r\n" + bin +
                             "\r\n*-1\r\n*0\r\n*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n$-1\r\n+s\r\n");
  ASSERT_EQ(replies.size(), 8u);
  EXPECT_EQ(replies[0].type, reply::kind::status);
  EXPECT_EQ(replies[0].str, "OK");
  EXPECT_TRUE(replies[1].is_error());
  EXPECT_EQ(replies[1].str, "ERR boom");
  EXPECT_EQ(replies[2].integer, -7);
  EXPECT_TRUE(replies[3].is_nil());
  EXPECT_EQ(replies[4].str, bin);
  EXPECT_TRUE(replies[5].is_nil());
  EXPECT_TRUE(replies[6].is_array());
  EXPECT_TRUE(replies[6].elements.empty());
  EXPECT_EQ(replies[7].to_string(), "[(integer) 1, [a, [(nil)]], s]");
  EXPECT_EQ(rd.pending_bytes(), 0u);
}

TEST(RespReader, BoundsOneReplyWhileItIsStillArriving) {
  resp_reader rd(100);
  // A bulk string declared at 1000 bytes: refused once 100 bytes of it are buffered, not after
  // the 1000 arrive.
  std::string head = "$1000\r\n" + std::string(93, 'x');
  rd.feed(head.data(), head.size());
  reply r;
  EXPECT_EQ(rd.next(r), resp_reader::status::incomplete);  // 100 bytes buffered: at the bound
  EXPECT_EQ(rd.pending_bytes(), 100u);
  rd.feed("y", 1);
  EXPECT_EQ(rd.next(r), resp_reader::status::error);
  EXPECT_TRUE(rd.limit_hit());
  EXPECT_NE(rd.error_message().find("redis.max_reply_bytes (100 bytes)"), std::string::npos);
}

TEST(RespReader, ACompleteReplyPastTheBoundIsRefusedToo) {
  resp_reader rd(10);
  std::string wire = ":1\r\n$20\r\n" + std::string(20, 'z') + "\r\n";
  rd.feed(wire.data(), wire.size());
  reply r;
  ASSERT_EQ(rd.next(r), resp_reader::status::reply);  // the small one before it
  EXPECT_EQ(r.integer, 1);
  EXPECT_EQ(rd.next(r), resp_reader::status::error);
  EXPECT_TRUE(rd.limit_hit());
}

TEST(RespReader, RefusesAHugeArrayHeaderBeforeAllocating) {
  resp_reader rd(1 << 20);
  std::string wire = "*2000000000\r\n";
  rd.feed(wire.data(), wire.size());
  reply r;
  EXPECT_EQ(rd.next(r), resp_reader::status::error);
  EXPECT_TRUE(rd.limit_hit());
}

TEST(RespReader, ProtocolErrorsAreErrorsNotCrashes) {
  for (std::string wire : {std::string("?what\r\n"), std::string("*-2\r\n"),
                           std::string("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
                                       "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n")}) {
    resp_reader rd(1 << 20);
    rd.feed(wire.data(), wire.size());
    reply r;
    EXPECT_EQ(rd.next(r), resp_reader::status::error) << wire;
    EXPECT_FALSE(rd.limit_hit());
    EXPECT_NE(rd.error_message().find("protocol error"), std::string::npos);
    EXPECT_EQ(rd.next(r), resp_reader::status::error);  // stays failed
  }
}

}  // namespace
}  // namespace herald::redis
