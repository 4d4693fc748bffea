#include <unistd.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench/accounting.h"
#include "bench/histogram.h"
#include "bench/proc_stats.h"
#include "bench/protocol.h"
#include "bench/servers.h"
#include "bench/tracker.h"

namespace herald::bench {
namespace {

// --- delivery_tracker: inject loss, duplicates and reordering; check each is detected --------

TEST(Tracker, CleanStreamHasNoAnomalies) {
  delivery_tracker t;
  for (std::uint64_t i = 1; i <= 1000; ++i) {
    t.on_seq(i);
    t.on_payload(0, i);
  }
  EXPECT_EQ(t.received(), 1000u);
  EXPECT_EQ(t.distinct(0), 1000u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.seq_gaps(), 0u);
  EXPECT_EQ(t.seq_backwards(), 0u);
  EXPECT_EQ(t.lost({1000}), 0u);
}

TEST(Tracker, DetectsLoss) {
  delivery_tracker t;
  for (std::uint64_t i = 1; i <= 100; ++i)
    if (i != 7 && i != 50 && i != 51) t.on_payload(0, i);
  EXPECT_EQ(t.lost({100}), 3u);
  EXPECT_EQ(t.skipped(), 3u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.reordered(), 0u);
  // Loss at the tail (never followed by a higher counter) is seen only against `accepted`.
  delivery_tracker tail;
  for (std::uint64_t i = 1; i <= 90; ++i) tail.on_payload(0, i);
  EXPECT_EQ(tail.lost({100}), 10u);
  EXPECT_EQ(tail.skipped(), 0u);  // not arrived yet: undelivered, not dropped
}

TEST(Tracker, DetectsDuplicates) {
  delivery_tracker t;
  for (std::uint64_t i = 1; i <= 10; ++i) t.on_payload(0, i);
  t.on_payload(0, 10);  // immediate repeat
  t.on_payload(0, 3);   // old repeat
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.lost({10}), 0u);
  EXPECT_EQ(t.received(), 12u);
}

TEST(Tracker, DetectsReorderingAndTellsItFromDuplicates) {
  delivery_tracker t;
  for (std::uint64_t i : {1, 2, 5, 3, 4, 6, 9, 8, 7, 10}) t.on_payload(0, i);
  EXPECT_EQ(t.reordered(), 4u);  // 3, 4 late after 5; 8, 7 late after 9
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.lost({10}), 0u);
  EXPECT_EQ(t.skipped(), 0u);  // every gap filled
  t.on_payload(0, 4);          // filled before: now a duplicate
  EXPECT_EQ(t.duplicates(), 1u);
  EXPECT_EQ(t.reordered(), 4u);
}

TEST(Tracker, PublishersAreIndependent) {
  delivery_tracker t;
  for (std::uint64_t i = 1; i <= 5; ++i) {
    t.on_payload(0, i);
    t.on_payload(2, i);
  }
  t.on_payload(1, 2);  // publisher 1's counter 1 lost
  EXPECT_EQ(t.lost({5, 2, 5}), 1u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.reordered(), 0u);
}

TEST(Tracker, SeqGapsAndBackwardsSteps) {
  delivery_tracker t;
  for (std::uint64_t s : {1, 2, 3, 6, 7, 7, 5, 8}) t.on_seq(s);
  EXPECT_EQ(t.seq_gaps(), 2u);       // 4 and 5 skipped when 6 came
  EXPECT_EQ(t.seq_backwards(), 2u);  // the second 7, then 5
}

TEST(Tracker, RandomisedAgainstReference) {
  // A shuffled, lossy, duplicating stream; the tracker's counts must match a direct count.
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> stream;
  std::uint64_t expected_lost = 0, expected_dups = 0;
  const std::uint64_t n = 5000;
  for (std::uint64_t i = 1; i <= n; ++i) {
    const auto r = rng() % 100;
    if (r < 3 && i < n) {  // keep the last one so the gap logic sees every loss as a gap
      ++expected_lost;
      continue;
    }
    stream.push_back(i);
    if (r >= 97) {
      stream.push_back(i);
      ++expected_dups;
    }
  }
  // Local reordering: swap neighbours now and then (a swap of a duplicate pair is invisible).
  std::uint64_t swaps = 0;
  for (std::size_t i = 0; i + 1 < stream.size(); i += 2)
    if (rng() % 10 == 0 && stream[i] != stream[i + 1]) {
      std::swap(stream[i], stream[i + 1]);
      ++swaps;
    }
  delivery_tracker t;
  for (auto c : stream) t.on_payload(0, c);
  EXPECT_EQ(t.lost({n}), expected_lost);
  EXPECT_EQ(t.duplicates(), expected_dups);
  EXPECT_GE(t.reordered(), swaps > 0 ? 1u : 0u);
  EXPECT_EQ(t.distinct(0), n - expected_lost);
}

// --- histogram --------------------------------------------------------------------------------

TEST(Histogram, BucketsCoverEveryValueWithinOneSixteenth) {
  for (std::uint64_t v : {0ull, 1ull, 15ull, 16ull, 17ull, 31ull, 32ull, 1000ull, 123456789ull,
                          (1ull << 40) + 12345, ~0ull}) {
    const auto i = histogram::index_of(v);
    ASSERT_LT(i, histogram::bucket_count);
    EXPECT_LE(histogram::lowest_in(i), v);
    EXPECT_GE(histogram::highest_in(i), v);
    EXPECT_LE(histogram::highest_in(i) - histogram::lowest_in(i), v / 16 + 1);
  }
}

TEST(Histogram, Percentiles) {
  histogram h;
  for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v * 1000);  // 1 µs .. 10 ms in ns
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 5e6, 5e6 / 16);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 9.9e6, 9.9e6 / 16);
  EXPECT_EQ(h.percentile(1.0), 10000u * 1000);
  EXPECT_NEAR(h.mean(), 5.0005e6, 1);
  histogram other;
  other.record(1);
  h.merge(other);
  EXPECT_EQ(h.count(), 10001u);
  EXPECT_EQ(histogram().percentile(0.5), 0u);
}

// --- payload and frames -----------------------------------------------------------------------

TEST(Payload, RoundTripsAndHasTheAskedSize) {
  const stamp s{3, 123456, 987654321012};
  const std::string p = make_payload(s, 64);
  EXPECT_EQ(p.size(), 64u);
  auto back = find_stamp(p);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->publisher, 3u);
  EXPECT_EQ(back->counter, 123456u);
  EXPECT_EQ(back->sent_ns, 987654321012);
  EXPECT_GT(make_payload(s, 8).size(), 8u);  // too small: the shortest form
}

TEST(HeraldFrame, ScansEventsAndControlMessages) {
  const std::string payload = make_payload({1, 2, 3}, 64);
  const std::string ev = R"({"type":"event","seq":17,"subscription":"sub_x","event":{"id":"evt_1",)"
                         R"("offset":5,"topic":"/bench/t0","type":"bench","tenant":"b","time":"t",)"
                         R"("data":)" +
                         payload + "}}";
  auto f = scan_herald_frame(ev);
  EXPECT_EQ(f.type, herald_frame::kind::event);
  EXPECT_EQ(f.seq, 17u);
  ASSERT_TRUE(f.payload);
  EXPECT_EQ(f.payload->counter, 2u);
  EXPECT_EQ(scan_herald_frame(R"({"type":"welcome","session":"s"})").type,
            herald_frame::kind::welcome);
  EXPECT_EQ(scan_herald_frame(R"({"type":"ack","id":"b"})").type, herald_frame::kind::ack);
  EXPECT_EQ(scan_herald_frame(R"({"type":"ping"})").type, herald_frame::kind::ping);
  EXPECT_EQ(scan_herald_frame(R"({"type":"error","code":"x"})").type, herald_frame::kind::error);
  // Another member order still works.
  auto g = scan_herald_frame(R"({"seq":4,"type":"event","event":{}})");
  EXPECT_EQ(g.type, herald_frame::kind::event);
  EXPECT_EQ(g.seq, 4u);
}

struct recorder final : nats_parser::visitor {
  std::vector<std::string> msgs;
  int pings = 0, pongs = 0, infos = 0, errs = 0;
  void on_msg(std::string_view subject, std::string_view payload) override {
    msgs.push_back(std::string(subject) + "|" + std::string(payload));
  }
  void on_ping() override { ++pings; }
  void on_pong() override { ++pongs; }
  void on_info(std::string_view) override { ++infos; }
  void on_err(std::string_view) override { ++errs; }
};

TEST(NatsParser, HandlesOperationsSplitAnywhere) {
  const std::string stream =
      "INFO {\"server_id\":\"x\"}\r\n+OK\r\nPONG\r\nMSG bench.t0 1 5\r\nhello\r\n"
      "PING\r\nMSG bench.t1 1 reply.to 7\r\nab\r\ncde\r\n-ERR 'Slow Consumer'\r\n";
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    nats_parser p;
    recorder r;
    for (std::size_t at = 0; at < stream.size(); at += chunk)
      ASSERT_TRUE(p.feed(std::string_view(stream).substr(at, chunk), r));
    ASSERT_EQ(r.msgs.size(), 2u) << "chunk " << chunk;
    EXPECT_EQ(r.msgs[0], "bench.t0|hello");
    EXPECT_EQ(r.msgs[1], "bench.t1|ab\r\ncde");
    EXPECT_EQ(r.pings, 1);
    EXPECT_EQ(r.pongs, 1);
    EXPECT_EQ(r.infos, 1);
    EXPECT_EQ(r.errs, 1);
  }
  nats_parser bad;
  recorder r;
  EXPECT_FALSE(bad.feed("WHAT\r\n", r));
}

// --- WebSocket frames (server → client) ---------------------------------------------------------

// A server frame: unmasked, the length in its shortest form.
std::string ws_frame(std::uint8_t opcode, std::string_view payload, bool fin = true) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  const std::uint64_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(n);
  } else if (n <= 0xffff) {
    f += static_cast<char>(126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((n >> (8 * i)) & 0xff);
  }
  f.append(payload);
  return f;
}

std::string close_payload(int code, std::string_view reason = {}) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  p.append(reason);
  return p;
}

struct frame_recorder final : ws_frame_parser::visitor {
  std::vector<std::string> msgs;  // "t:" or "b:" + payload
  std::vector<std::string> pings, pongs;
  int close_code = 0;
  std::string close_reason;
  int closes = 0;
  std::size_t in_place = 0;  // messages handed over as a view into the fed chunk
  std::string_view chunk;
  void on_message(std::string_view payload, bool binary) override {
    if (payload.data() >= chunk.data() && payload.data() <= chunk.data() + chunk.size()) ++in_place;
    msgs.push_back((binary ? "b:" : "t:") + std::string(payload));
  }
  void on_ping(std::string_view payload) override { pings.emplace_back(payload); }
  void on_pong(std::string_view payload) override { pongs.emplace_back(payload); }
  void on_close(int code, std::string_view reason) override {
    ++closes;
    close_code = code;
    close_reason = reason;
  }
  bool feed(ws_frame_parser& p, std::string_view bytes) {
    chunk = bytes;
    return p.feed(bytes, *this);
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST(WsFrameParser, ManyFramesInOneChunkAreHandedOverInPlace) {
  std::string stream;
  for (int i = 0; i < 100; ++i)
    stream += ws_frame(1, R"({"type":"event","seq":)" + std::to_string(i) + "}");
  stream += ws_frame(2, "bin");
  stream += ws_frame(1, "");
  ws_frame_parser p;
  frame_recorder r;
  ASSERT_TRUE(r.feed(p, stream));
  ASSERT_EQ(r.msgs.size(), 102u);
  EXPECT_EQ(r.msgs[0], R"(t:{"type":"event","seq":0})");
  EXPECT_EQ(r.msgs[99], R"(t:{"type":"event","seq":99})");
  EXPECT_EQ(r.msgs[100], "b:bin");
  EXPECT_EQ(r.msgs[101], "t:");
  EXPECT_EQ(r.in_place, 102u);  // nothing copied
}

TEST(WsFrameParser, SplitAtEveryByteAndEveryChunkSize) {
  // Every length form, fragmentation with a ping between fragments, a pong, then the close.
  const std::string big16 = pattern(300), big64 = pattern(70000);
  std::string stream = ws_frame(1, "hello") + ws_frame(2, big16) + ws_frame(1, big64) +
                       ws_frame(1, "frag-", false) + ws_frame(9, "beat") +
                       ws_frame(0, "men", false) + ws_frame(0, "ted") + ws_frame(10, "") +
                       ws_frame(2, "", false) + ws_frame(0, "x") +
                       ws_frame(8, close_payload(4008, "heartbeat timeout"));
  auto check = [&](const frame_recorder& r, const std::string& what) {
    ASSERT_EQ(r.msgs.size(), 5u) << what;
    EXPECT_EQ(r.msgs[0], "t:hello") << what;
    EXPECT_EQ(r.msgs[1], "b:" + big16) << what;
    EXPECT_EQ(r.msgs[2], "t:" + big64) << what;
    EXPECT_EQ(r.msgs[3], "t:frag-mented") << what;
    EXPECT_EQ(r.msgs[4], "b:x") << what;
    ASSERT_EQ(r.pings.size(), 1u) << what;
    EXPECT_EQ(r.pings[0], "beat") << what;
    ASSERT_EQ(r.pongs.size(), 1u) << what;
    EXPECT_EQ(r.pongs[0], "") << what;
    EXPECT_EQ(r.closes, 1) << what;
    EXPECT_EQ(r.close_code, 4008) << what;
    EXPECT_EQ(r.close_reason, "heartbeat timeout") << what;
  };
  // Split at every byte position (two chunks), but only now and then inside the 70,000 bytes
  // of the 64-bit frame's payload, where one position is like the next.
  const std::size_t big_at = ws_frame(1, "hello").size() + ws_frame(2, big16).size() + 10;
  for (std::size_t at = 0; at <= stream.size(); ++at) {
    if (at > big_at + 16 && at + 16 < big_at + big64.size() && at % 997 != 0) continue;
    ws_frame_parser p;
    frame_recorder r;
    ASSERT_TRUE(r.feed(p, std::string_view(stream).substr(0, at))) << at;
    ASSERT_TRUE(r.feed(p, std::string_view(stream).substr(at))) << at;
    EXPECT_TRUE(p.closed());
    check(r, "split at " + std::to_string(at));
    if (::testing::Test::HasFailure()) return;
  }
  // Fed one byte at a time, and in chunks of several sizes. Each chunk is a fresh copy so a
  // view kept past its feed would show up as garbage.
  for (std::size_t size : {1u, 2u, 3u, 7u, 13u, 125u, 126u, 4096u, 16384u}) {
    ws_frame_parser p;
    frame_recorder r;
    for (std::size_t at = 0; at < stream.size(); at += size) {
      const std::string chunk = stream.substr(at, size);
      ASSERT_TRUE(r.feed(p, chunk)) << size;
    }
    check(r, "chunk " + std::to_string(size));
  }
}

TEST(WsFrameParser, LengthForms) {
  for (std::size_t n : {0u, 125u, 126u, 127u, 65535u, 65536u, 100000u}) {
    ws_frame_parser p;
    frame_recorder r;
    const std::string f = ws_frame(2, pattern(n));
    EXPECT_EQ(f.size() - n, n < 126 ? 2u : n <= 0xffff ? 4u : 10u);
    ASSERT_TRUE(r.feed(p, f));
    ASSERT_EQ(r.msgs.size(), 1u) << n;
    EXPECT_EQ(r.msgs[0], "b:" + pattern(n)) << n;
  }
}

TEST(WsFrameParser, CloseWithoutCodeAndNothingAfterTheClose) {
  ws_frame_parser p;
  frame_recorder r;
  ASSERT_TRUE(r.feed(p, ws_frame(8, "") + ws_frame(1, "late")));
  EXPECT_EQ(r.closes, 1);
  EXPECT_EQ(r.close_code, 1005);  // no status received
  EXPECT_TRUE(r.msgs.empty());
  ASSERT_TRUE(r.feed(p, ws_frame(1, "later")));
  EXPECT_TRUE(r.msgs.empty());
}

TEST(WsFrameParser, MaxMessageSize) {
  {
    ws_frame_parser p(10);
    frame_recorder r;
    EXPECT_TRUE(r.feed(p, ws_frame(1, pattern(10))));
    // Refused at the header, before the payload arrives.
    EXPECT_FALSE(r.feed(p, ws_frame(1, pattern(11)).substr(0, 2)));
    EXPECT_EQ(p.last_error(), ws_frame_parser::error::too_big);
    EXPECT_EQ(r.msgs.size(), 1u);
  }
  {
    // Fragments count together.
    ws_frame_parser p(10);
    frame_recorder r;
    EXPECT_FALSE(r.feed(p, ws_frame(1, pattern(6), false) + ws_frame(0, pattern(5))));
    EXPECT_EQ(p.last_error(), ws_frame_parser::error::too_big);
    EXPECT_TRUE(r.msgs.empty());
  }
}

TEST(WsFrameParser, ProtocolErrors) {
  using error = ws_frame_parser::error;
  auto masked = ws_frame(1, "");
  masked[1] = static_cast<char>(0x80);
  std::string long16 = "\x82\x7e";  // 16-bit length form for 5 bytes
  long16 += std::string("\x00\x05", 2) + "hello";
  std::string long64 = "\x82\x7f";  // 64-bit length form for 300 bytes
  long64 += std::string("\x00\x00\x00\x00\x00\x00\x01\x2c", 8) + pattern(300);
  std::string top_bit = "\x82\x7f";
  top_bit += std::string("\x80\x00\x00\x00\x00\x01\x00\x00", 8);
  const std::pair<std::string, error> cases[] = {
      {masked, error::masked},
      {std::string("\xc1\x00", 2),
       error::reserved_bits},  // RSV1 (permessage-deflate, not negotiated)
      {std::string("\xa1\x00", 2), error::reserved_bits},
      {std::string("\x91\x00", 2), error::reserved_bits},
      {std::string("\x83\x00", 2), error::bad_opcode},
      {std::string("\x8b\x00", 2), error::bad_opcode},
      {long16, error::bad_length},
      {long64, error::bad_length},
      {top_bit, error::bad_length},
      {std::string("\x09\x00", 2), error::control_fragmented},
      {ws_frame(9, pattern(126)), error::control_too_long},
      {ws_frame(0, "x"), error::unexpected_continuation},
      {ws_frame(1, "a", false) + ws_frame(1, "b"), error::expected_continuation},
      {ws_frame(8, "\x03"), error::bad_close},
  };
  for (const auto& [bytes, want] : cases) {
    // Whole and byte by byte: the error is the same either way.
    for (bool bytewise : {false, true}) {
      ws_frame_parser p;
      frame_recorder r;
      bool ok = true;
      if (bytewise) {
        for (std::size_t i = 0; i < bytes.size() && ok; ++i) ok = r.feed(p, bytes.substr(i, 1));
      } else {
        ok = r.feed(p, bytes);
      }
      EXPECT_FALSE(ok) << ws_frame_parser::describe(want);
      EXPECT_EQ(p.last_error(), want) << ws_frame_parser::describe(want);
      // Once broken, always broken.
      EXPECT_FALSE(r.feed(p, ws_frame(1, "x")));
      EXPECT_TRUE(r.msgs.empty());
    }
  }
  // Frames before the violation in the same chunk were delivered.
  ws_frame_parser p;
  frame_recorder r;
  EXPECT_FALSE(r.feed(p, ws_frame(1, "ok") + ws_frame(9, "p") + std::string("\x83\x00", 2)));
  EXPECT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.pings.size(), 1u);
}

// --- run accounting (accounting.h) ------------------------------------------------------------

TEST(Inflight, StreamIdsAreDenseAndDistinct) {
  EXPECT_EQ(stream_count(3, 16), 48u);
  EXPECT_EQ(stream_count(3, 0), 3u);  // 0 in flight reads as 1
  std::set<std::uint32_t> ids;
  for (std::size_t p = 0; p < 3; ++p)
    for (std::size_t k = 0; k < 16; ++k) ids.insert(stream_id(p, k, 16));
  ASSERT_EQ(ids.size(), 48u);
  EXPECT_EQ(*ids.begin(), 0u);
  EXPECT_EQ(*ids.rbegin(), 47u);
  EXPECT_EQ(stream_id(2, 0, 1), 2u);  // one in flight: the publisher's own id, as before
}

TEST(Inflight, StreamsInFlightKeepTheirOwnOrderAndTheTotalsAddUp) {
  // 2 publishers × 4 in flight on 3 topics, 5 subscribers (topic i % 3). Each stream's batches
  // are accepted in its own order but the streams' replies interleave: per stream the tracker
  // sees 1, 2, 3, ... so no reordering, and the expected count is accepted × subscribers.
  const std::size_t pubs = 2, inflight = 4, topics = 3;
  std::vector<std::vector<std::uint64_t>> accepted(stream_count(pubs, inflight),
                                                   std::vector<std::uint64_t>(topics, 0));
  std::vector<delivery_tracker> subs(5);
  std::vector<std::size_t> subs_on_topic(topics, 0);
  for (std::size_t i = 0; i < subs.size(); ++i) ++subs_on_topic[i % topics];
  for (std::uint64_t round = 1; round <= 10; ++round)
    for (std::size_t k = inflight; k-- > 0;)  // replies come back in reverse slot order
      for (std::size_t p = 0; p < pubs; ++p) {
        const auto id = stream_id(p, k, inflight);
        for (std::size_t t = 0; t < topics; ++t) {
          ++accepted[id][t];
          for (std::size_t i = 0; i < subs.size(); ++i)
            if (i % topics == t) subs[i].on_payload(id, accepted[id][t]);
        }
      }
  EXPECT_EQ(expected_deliveries(accepted, subs_on_topic), 10u * 8u * 5u);
  for (std::size_t i = 0; i < subs.size(); ++i) {
    std::vector<std::uint64_t> acc;
    for (auto& a : accepted) acc.push_back(a[i % topics]);
    EXPECT_EQ(subs[i].reordered(), 0u);
    EXPECT_EQ(subs[i].duplicates(), 0u);
    EXPECT_EQ(subs[i].lost(acc), 0u);
  }
  // One stream's last batch lost on the way: seen as loss on exactly that stream's counters.
  ++accepted[stream_id(1, 3, inflight)][0];
  std::vector<std::uint64_t> acc;
  for (auto& a : accepted) acc.push_back(a[0]);
  EXPECT_EQ(subs[0].lost(acc), 1u);
}

TEST(SlowSubscribers, FractionPicksAStride) {
  std::size_t slow = 0;
  for (std::size_t i = 0; i < 1000; ++i) slow += is_slow(i, 0.05) ? 1 : 0;
  EXPECT_EQ(slow, 50u);
  EXPECT_FALSE(is_slow(0, 0));
  EXPECT_FALSE(is_slow(0, -1));
  EXPECT_TRUE(is_slow(7, 1.0));
  EXPECT_TRUE(is_slow(20, 0.05));
  EXPECT_FALSE(is_slow(21, 0.05));
}

TEST(ResumeStorm, RecoveredSessionsCatchUpInOrder) {
  std::vector<resume_session> s(3);
  s[0].before_drain(4);
  s[0].on_welcome(true, "", 1000);
  s[0].on_event(5, 2, 2000);
  s[0].on_event(6, 2, 3000);
  s[1].before_drain(1);
  s[1].on_welcome(true, "", 1500);
  s[1].on_event(2, 2, 2500);
  s[1].on_event(3, 2, 9000);
  s[2].before_drain(0);
  s[2].on_welcome(true, "", 500);
  s[2].on_event(1, 2, 600);
  s[2].on_event(2, 2, 700);
  const auto sum = summarize_storm(s, {2, 2, 2});
  EXPECT_EQ(sum.sessions, 3u);
  EXPECT_EQ(sum.recovered, 3u);
  EXPECT_EQ(sum.caught_up, 3u);
  EXPECT_EQ(sum.gaps, 0u);
  EXPECT_EQ(sum.duplicates, 0u);
  EXPECT_EQ(sum.replayed, 6u);
  EXPECT_DOUBLE_EQ(sum.last_recovered_s, 1500 / 1e9);
  EXPECT_DOUBLE_EQ(sum.last_caught_up_s, 9000 / 1e9);
}

TEST(ResumeStorm, GapsDuplicatesAndFailuresAreCounted) {
  std::vector<resume_session> s(5);
  s[0].before_drain(4);
  s[0].on_welcome(true, "", 100);
  s[0].on_event(6, 2, 200);  // seq 5 skipped: a gap, never caught up
  s[0].on_event(7, 2, 300);
  s[1].before_drain(4);
  s[1].on_welcome(true, "", 100);
  s[1].on_event(5, 2, 200);
  s[1].on_event(5, 2, 250);  // again: a duplicate
  s[1].on_event(4, 2, 260);  // from before the drain: a duplicate
  s[1].on_event(6, 2, 300);
  s[2].before_drain(4);
  s[2].on_welcome(false, "expired", 100);
  s[3].on_error("resume connect: Connection refused");  // never welcomed
  s[4].before_drain(9);
  s[4].on_welcome(true, "", 400);
  s[4].on_event(10, 2, 500);  // one of two: not caught up
  const auto sum = summarize_storm(s, {2, 2, 2, 2, 2});
  EXPECT_EQ(sum.welcomed, 4u);
  EXPECT_EQ(sum.recovered, 3u);
  EXPECT_EQ(sum.caught_up, 1u);  // only s[1]
  EXPECT_EQ(sum.gaps, 1u);
  EXPECT_EQ(sum.duplicates, 2u);
  EXPECT_EQ(sum.errors, 1u);
  EXPECT_EQ(sum.first_error, "resume connect: Connection refused");
  ASSERT_EQ(sum.recovery_errors.size(), 1u);
  EXPECT_EQ(sum.recovery_errors.at("expired"), 1u);
  EXPECT_DOUBLE_EQ(sum.last_caught_up_s, 300 / 1e9);
  EXPECT_DOUBLE_EQ(sum.last_recovered_s, 400 / 1e9);
}

TEST(ResumeStorm, NothingMissedIsCaughtUpAtTheWelcome) {
  std::vector<resume_session> s(1);
  s[0].before_drain(3);
  s[0].on_welcome(true, "", 700);
  const auto sum = summarize_storm(s, {0});
  EXPECT_EQ(sum.caught_up, 1u);
  EXPECT_DOUBLE_EQ(sum.last_caught_up_s, 700 / 1e9);
}

// --- --url: one server or several nodes (servers.h) ------------------------------------------

// The message of the std::invalid_argument parse_server_urls throws for `values` ("" if none).
std::string url_error(const std::vector<std::string>& values) {
  try {
    parse_server_urls(values);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// `n` URLs of distinct ports.
std::vector<std::string> distinct_urls(std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back("http://127.0.0.1:" + std::to_string(10000 + i));
  return out;
}

TEST(ServerUrls, OneUrlAsBefore) {
  const auto s = parse_server_urls({"http://127.0.0.1:8080"});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].url, "http://127.0.0.1:8080");
  EXPECT_EQ(s[0].host, "127.0.0.1");
  EXPECT_EQ(s[0].port, "8080");
  EXPECT_EQ(s[0].target, "/");
  const auto n = parse_server_urls({"ws://localhost:8222/nats"});
  EXPECT_EQ(n[0].host, "localhost");
  EXPECT_EQ(n[0].target, "/nats");                           // the NATS WebSocket path
  EXPECT_EQ(parse_server_urls({"HTTP://h"})[0].port, "80");  // no port: 80, as the client does
}

TEST(ServerUrls, RepeatedAndCommaListsKeepTheirOrder) {
  const auto s =
      parse_server_urls({"http://127.0.0.1:7001,http://127.0.0.1:7002", "http://127.0.0.1:7003"});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].port, "7001");
  EXPECT_EQ(s[1].port, "7002");
  EXPECT_EQ(s[2].port, "7003");
  EXPECT_EQ(s[1].url, "http://127.0.0.1:7002");
  EXPECT_EQ(parse_server_urls(distinct_urls(max_servers)).size(), max_servers);
}

TEST(ServerUrls, RefusesBadListsNamingTheElement) {
  EXPECT_EQ(url_error({}), "--url: no server given");
  for (const std::string bad : {",", "http://a:1,", ",http://a:1", "http://a:1,,http://b:1"})
    EXPECT_NE(url_error({bad}).find("empty element"), std::string::npos) << bad;
  EXPECT_NE(url_error({""}).find("empty element"), std::string::npos);
  EXPECT_EQ(url_error({"http://a:1", "http://a:1"}),
            "--url 'http://a:1': a:1 is listed twice (each server once)");
  EXPECT_NE(url_error({"http://A:1,ws://a:1/x"}).find("listed twice"), std::string::npos);
  EXPECT_EQ(url_error(distinct_urls(max_servers + 1)), "--url: more than 64 servers");
}

TEST(ServerUrls, RefusesBadUrlsNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1:8080", "no scheme"},   {"ftp://h:1", "must be http:// or ws://"},
      {"https://h:1", "plain TCP only"}, {"wss://h:1", "plain TCP only"},
      {"http://:8080", "no host"},       {"http://", "no host"},
      {"http://h:", "not ''"},           {"http://h:0", "not '0'"},
      {"http://h:65536", "not '65536'"}, {"http://h:80a", "not '80a'"},
      {"http://h:-1", "not '-1'"},       {"http://h:123456", "not '123456'"},
      {"http://h:1 ", "a space"},        {"http://h :1", "a space"},
      {"http://u@h:1", "credentials"},
  };
  for (const auto& [url, why] : cases) {
    const std::string e = url_error({url});
    EXPECT_NE(e.find("--url '" + url + "'"), std::string::npos) << url << ": " << e;
    EXPECT_NE(e.find(why), std::string::npos) << url << ": " << e;
  }
  // A bad element in a list is named alone, whatever its position.
  EXPECT_EQ(url_error({"http://a:1,http://b:99999"}),
            "--url 'http://b:99999': the port must be a number from 1 to 65535, not '99999'");
  EXPECT_EQ(parse_server_urls({"http://h:65535"})[0].port, "65535");
  EXPECT_EQ(parse_server_urls({"http://h:1"})[0].port, "1");
}

TEST(ServerUrls, SubscribersAndStreamsAreDealtEvenly) {
  for (std::size_t n : {1u, 2u, 3u, 5u}) {
    std::vector<std::size_t> subs(n), streams(n);
    for (std::size_t i = 0; i < 1000; ++i) ++subs.at(subscriber_server(i, n));
    for (std::size_t k = 0; k < 16; ++k) ++streams.at(stream_server(k, n));
    for (std::size_t j = 0; j < n; ++j) {
      EXPECT_LE(subs[j] - 1000 / n, 1u) << n;  // equal shares, ± 1
      EXPECT_LE(streams[j] - 16 / n, 1u) << n;
    }
  }
  // One server: everything on it, as before the list existed.
  EXPECT_EQ(subscriber_server(999, 1), 0u);
  EXPECT_EQ(stream_server(15, 1), 0u);
  // 3 nodes, 16 streams: 6, 5, 5; consecutive subscribers on different nodes.
  EXPECT_EQ(stream_server(15, 3), 0u);
  EXPECT_EQ(subscriber_server(1, 3), 1u);
  EXPECT_EQ(subscriber_server(2, 3), 2u);
}

// --- --server-pid repeated: the processes' resources summed (proc_stats.h) ---------------------

TEST(ProcStats, SeveralProcessesAreSummed) {
  const int self = ::getpid();
  const auto one = sample_process(self);
  const auto two = sample_processes({self, self});
  ASSERT_TRUE(one && two);
  // RSS moves little between two reads: the sum of two reads of this process is about twice
  // one read (within 10 %), and so is its peak.
  EXPECT_NEAR(static_cast<double>(two->rss_bytes), 2.0 * static_cast<double>(one->rss_bytes),
              0.1 * static_cast<double>(one->rss_bytes));
  EXPECT_GE(two->hwm_bytes, 2 * one->rss_bytes - one->rss_bytes / 10);
  EXPECT_GE(two->cpu_s, 2 * one->cpu_s);  // CPU time only grows
  EXPECT_GE(two->wall_ns, one->wall_ns);
  // Nothing to sum, or one process gone: not measured.
  EXPECT_FALSE(sample_processes({}));
  EXPECT_FALSE(sample_processes({self, -1}));
  EXPECT_FALSE(sample_process(-1));
}

}  // namespace
}  // namespace herald::bench
