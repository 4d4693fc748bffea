#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/protocol.h"
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

}  // namespace
}  // namespace herald::bench
