#include "dialect/tracker/tracker_codec.h"

#include <gtest/gtest.h>

namespace herald::tracker {
namespace {

constexpr const char* hash = "f4bf1b75403d851653dad99c78c4b237";

std::string sub(const std::string& rest) {
  return std::string(R"({"action":"subscribe","hash":")") + hash + "\"" + rest + "}";
}

TEST(TrackerCodec, DecodesASubscribeWithDuplicatesCollapsed) {
  auto r = decode(sub(R"(,"events":["state"],"trackers":[15564,15565,15564,15568])"), 1000);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.late_error, 0);
  EXPECT_EQ(r.act, action::subscribe);
  EXPECT_EQ(r.hash, hash);
  EXPECT_EQ(r.trackers, (std::vector<std::int64_t>{15564, 15565, 15568}));
}

TEST(TrackerCodec, ErrorsComeInTheSpecsOrder) {
  EXPECT_EQ(decode("nope", 10).error, wrong_format);
  EXPECT_EQ(decode("[1]", 10).error, wrong_format);
  EXPECT_EQ(decode(R"({"hash":"x"})", 10).error, wrong_format);
  EXPECT_EQ(decode(R"({"action":"dance"})", 10).error, wrong_format);
  EXPECT_EQ(decode(R"({"action":"dance"})", 10).act, action::none);
  // A bad hash wins over bad events.
  auto r = decode(R"({"action":"subscribe","hash":"abc","events":["foo"],"trackers":[1]})", 10);
  EXPECT_EQ(r.error, wrong_hash);
  EXPECT_EQ(r.act, action::subscribe);
  EXPECT_EQ(r.echo, R"({"events":["foo"],"trackers":[1]})");
  EXPECT_EQ(
      decode(R"({"action":"unsubscribe","hash":"F4BF1B75403D851653DAD99C78C4B237"})", 10).error,
      wrong_hash);
  // Shape (7) and counts (9) are late: the caller checks the hash's liveness first.
  for (const char* rest :
       {R"(,"events":["foo"],"trackers":[1])", R"(,"events":[],"trackers":[1])",
        R"(,"events":null,"trackers":[1])", R"(,"trackers":[1])", R"(,"events":["state"])",
        R"(,"events":["state"],"trackers":[0])", R"(,"events":["state"],"trackers":[2147483648])",
        R"(,"events":["state"],"trackers":[1.0])", R"(,"events":["state"],"trackers":["1"])",
        R"(,"events":["state"],"trackers":[null])"}) {
    auto d = decode(sub(rest), 10);
    EXPECT_EQ(d.error, 0) << rest;
    EXPECT_EQ(d.late_error, invalid_params) << rest;
  }
  auto big = decode(sub(R"(,"events":["state"],"trackers":[1,2,3])"), 2);
  EXPECT_EQ(big.late_error, too_large);
  EXPECT_EQ(decode(sub(R"(,"events":["state"],"trackers":[])"), 2).late_error, 0);
  EXPECT_EQ(decode(sub(R"(,"events":["state"],"trackers":[2147483647])"), 2).late_error, 0);
}

TEST(TrackerCodec, EchoKeepsTheMembersAsSent) {
  auto r = decode(sub(R"(,"trackers":[ 15564 ,1e0],"events":["state"])"), 10);
  EXPECT_EQ(r.echo, R"({"events":["state"],"trackers":[ 15564 ,1e0]})");
  EXPECT_EQ(
      error_frame(action::subscribe, wrong_hash, R"({"events":["state"],"trackers":[15564]})"),
      R"({"type":"error","action":"subscription/subscribe","status":{"code":3,)"
      R"("description":"Wrong user hash"},"data":{"events":["state"],"trackers":[15564]}})");
  EXPECT_EQ(error_frame(action::none, wrong_format, "\"not JSON\""),
            R"({"type":"error","action":null,"status":{"code":5,"description":)"
            R"("Wrong request format"},"data":"not JSON"})");
}

TEST(TrackerCodec, Replies) {
  EXPECT_EQ(subscribe_reply({{15564, tstatus::normal},
                             {15565, tstatus::blocked},
                             {15568, tstatus::unknown},
                             {15570, tstatus::disallowed}}),
            R"({"type":"response","action":"subscription/subscribe","events":["state"],)"
            R"("data":{"state":{"15564":"normal","15565":"blocked","15568":"unknown",)"
            R"("15570":"disallowed"}}})");
  EXPECT_EQ(unsubscribe_reply({15568, 1}),
            R"({"type":"response","action":"subscription/unsubscribe","events":["state"],)"
            R"("data":[15568,1]})");
  EXPECT_EQ(state_head("2026-03-01 10:00:05") + "{}" + std::string(event_tail),
            R"({"type":"event","event":"state","user_time":"2026-03-01 10:00:05","data":{}})");
  EXPECT_EQ(std::string(lifecycle_head) + lifecycle_data(5501, "block") + std::string(event_tail),
            R"({"type":"event","event":"lifecycle","data":{"source_id":5501,)"
            R"("lifecycle_event":"block"}})");
}

TEST(TrackerCodec, AtmosphereFraming) {
  const std::string uuid = "3f0c9a6e-8d2b-4b71-9e55-0c1d2e3f4a5b";
  EXPECT_EQ(handshake(uuid, 30000), uuid + "|30000|X|");
  EXPECT_EQ(frame(handshake(uuid, 30000), true), "45|" + uuid + "|30000|X|");
  EXPECT_EQ(frame(heartbeat, true), "1|X");
  EXPECT_EQ(frame(heartbeat, false), "X");
  // UTF-16 code units: é is one, 😀 (4 UTF-8 bytes) is two; a stray byte counts one.
  EXPECT_EQ(utf16_units("abc"), 3u);
  EXPECT_EQ(utf16_units("\xC3\xA9"), 1u);
  EXPECT_EQ(utf16_units("\xF0\x9F\x98\x80"), 2u);
  EXPECT_EQ(utf16_units("\xE2\x82\xAC"), 1u);
  EXPECT_EQ(utf16_units("\xFF"), 1u);
  EXPECT_EQ(frame("\"\xC3\xA9\"", true), "3|\"\xC3\xA9\"");
  EXPECT_TRUE(is_heartbeat("X"));
  EXPECT_TRUE(is_heartbeat(" X\n"));
  EXPECT_FALSE(is_heartbeat("XX"));
  EXPECT_FALSE(is_heartbeat(""));
}

TEST(TrackerCodec, IdsHashesAndUuids) {
  EXPECT_EQ(parse_tracker_id("15564"), 15564);
  EXPECT_EQ(parse_tracker_id("2147483647"), 2147483647);
  for (const char* bad : {"", "0", "015564", "-1", "+1", "2147483648", "99999999999", "1a", " 1"})
    EXPECT_FALSE(parse_tracker_id(bad)) << bad;
  EXPECT_TRUE(valid_hash(hash));
  EXPECT_FALSE(valid_hash("abc"));
  const std::string u = new_uuid();
  EXPECT_TRUE(valid_uuid(u)) << u;
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(new_uuid(), u);
  EXPECT_FALSE(valid_uuid("0"));
  EXPECT_FALSE(valid_uuid("3F0C9A6E-8D2B-4B71-9E55-0C1D2E3F4A5B"));
}

TEST(TrackerCodec, DescriptionsAndStatuses) {
  EXPECT_EQ(description(4), "User not found or session ended");
  EXPECT_EQ(description(104), "Logins limit exceeded, please reuse existing sessions instead");
  EXPECT_EQ(http_status(too_large), 412);
  EXPECT_EQ(http_status(device_blocked), 403);
  EXPECT_EQ(http_status(rate_limited), 429);
  EXPECT_EQ(http_status(not_found), 400);
}

}  // namespace
}  // namespace herald::tracker
