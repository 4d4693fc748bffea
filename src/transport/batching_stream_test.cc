#include "transport/batching_stream.h"

#include <thread>

#include <gtest/gtest.h>

namespace herald {
namespace {

// n connected loopback pairs: a batching_stream on the server end, a plain socket as its peer.
struct pair_of {
  std::unique_ptr<batching_stream> out;
  tcp::socket peer;
};

std::vector<pair_of> connect_pairs(net::io_context& ctx, std::size_t n) {
  tcp::acceptor acc(ctx, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  std::vector<pair_of> pairs;
  for (std::size_t i = 0; i < n; ++i) {
    tcp::socket peer(ctx);
    peer.connect(acc.local_endpoint());
    pairs.push_back(
        pair_of{std::make_unique<batching_stream>(conn_stream(acc.accept())), std::move(peer)});
  }
  return pairs;
}

std::string text_frame(std::string_view payload) {  // payload < 126 bytes
  return std::string{'\x81', static_cast<char>(payload.size())} + std::string(payload);
}

// Reads exactly `n` bytes from every peer on a thread of its own (blocking reads need no
// io_context), so that the writes of a ctx.run() on this thread can all complete.
std::vector<std::string> read_all(std::vector<pair_of>& pairs, const std::vector<std::size_t>& n) {
  std::vector<std::string> got(pairs.size());
  std::thread reader([&] {
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      got[i].resize(n[i]);
      beast::error_code ec;
      net::read(pairs[i].peer, net::buffer(got[i]), ec);
    }
  });
  reader.join();
  return got;
}

// Flushes the one pair's stream and runs ctx while its peer reads `n` bytes; returns them.
std::string flush_and_read_one(net::io_context& ctx, std::vector<pair_of>& pairs, std::size_t n) {
  pairs[0].out->schedule_flush();
  std::vector<std::string> got;
  std::thread reader([&] { got = read_all(pairs, {n}); });
  ctx.run();
  reader.join();
  return got[0];
}

// Past direct_send_bytes an append hands the gathered bytes to the kernel at once: a long
// fan-out keeps one small buffer per socket instead of gathering the whole backlog first.
TEST(batching_stream, a_big_gather_goes_to_the_kernel_without_waiting_for_the_flush) {
  net::io_context ctx(1);
  auto pairs = connect_pairs(ctx, 1);
  batching_stream& out = *pairs[0].out;
  const std::string payload(100, 'p');
  std::string expect;
  std::size_t most_gathered = 0;
  for (int i = 0; i < 1000; ++i) {  // ~100 KB, appended in one handler: no ctx.run()
    out.append_text_message(payload, "", "");
    expect += std::string{'\x81', 100} + payload;
    most_gathered = std::max(most_gathered, out.gathered_bytes());
  }
  EXPECT_LT(most_gathered, batching_stream::direct_send_bytes + 200);
  EXPECT_LT(out.gathered_bytes(), batching_stream::direct_send_bytes);
  EXPECT_TRUE(flush_and_read_one(ctx, pairs, expect.size()) == expect);  // and the rest
  EXPECT_EQ(out.pending_bytes(), 0u);
}

// A peer that does not read fills the kernel's buffers: the rest stays gathered (no failing
// system call per message), and everything arrives, in order, once the peer reads.
TEST(batching_stream, a_full_socket_keeps_the_rest_and_delivers_it_in_order) {
  net::io_context ctx(1);
  auto pairs = connect_pairs(ctx, 1);
  batching_stream& out = *pairs[0].out;
  const std::string payload(100, 'q');
  std::string expect;
  for (int i = 0; i < 100000; ++i) {  // ~10 MB: more than loopback's buffers hold
    const std::string n = std::to_string(i);
    out.append_text_message(payload.substr(0, 100 - n.size()), n, "");
    expect += std::string{'\x81', 100} + payload.substr(0, 100 - n.size()) + n;
  }
  EXPECT_GT(out.gathered_bytes(), batching_stream::direct_send_bytes);  // the kernel was full
  EXPECT_TRUE(flush_and_read_one(ctx, pairs, expect.size()) == expect);
  EXPECT_FALSE(out.failed());
}

TEST(write_scheduler, a_pass_writes_a_few_sockets_then_queued_work_appends_to_the_rest) {
  net::io_context ctx(1);
  const std::size_t n = write_scheduler::per_pass + 3;
  auto pairs = connect_pairs(ctx, n);
  for (auto& p : pairs) {
    p.out->append_text_message("a", "", "");
    p.out->schedule_flush();
  }
  // Queued behind the scheduler's first pass, ahead of its second.
  std::vector<std::size_t> gathered;
  net::post(ctx, [&] {
    for (auto& p : pairs) gathered.push_back(p.out->gathered_bytes());
    pairs.back().out->append_text_message("b", "", "");  // joins the write still waiting
  });
  std::thread runner([&] { ctx.run(); });
  std::vector<std::size_t> want(n, 3);
  want.back() = 6;
  const auto got = read_all(pairs, want);
  runner.join();
  ASSERT_EQ(gathered.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    EXPECT_EQ(gathered[i], i < write_scheduler::per_pass ? 0u : 3u) << "socket " << i;
  for (std::size_t i = 0; i + 1 < n; ++i) EXPECT_EQ(got[i], text_frame("a")) << "socket " << i;
  EXPECT_EQ(got.back(), text_frame("a") + text_frame("b"));
}

TEST(write_scheduler, a_large_backlog_ends_the_yielding_so_writes_keep_pace) {
  net::io_context ctx(1);
  const std::size_t n = write_scheduler::per_pass + 3;
  auto pairs = connect_pairs(ctx, n);
  const std::string big(write_scheduler::no_yield_bytes, 'x');
  pairs.front().out->append_text_message(big, "", "");
  for (auto& p : pairs) {
    if (&p != &pairs.front()) p.out->append_text_message("a", "", "");
    p.out->schedule_flush();
  }
  std::vector<std::size_t> gathered;
  net::post(ctx, [&] {
    for (auto& p : pairs) gathered.push_back(p.out->gathered_bytes());
  });
  std::thread runner([&] { ctx.run(); });
  std::vector<std::size_t> want(n, 3);
  want.front() = 10 + big.size();  // 127 + 64-bit length header
  const auto got = read_all(pairs, want);
  runner.join();
  ASSERT_EQ(gathered.size(), n);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(gathered[i], 0u) << "socket " << i;
  EXPECT_EQ(got.front().substr(10), big);
  EXPECT_EQ(got.back(), text_frame("a"));
}

TEST(write_scheduler, a_stream_gone_before_its_turn_is_skipped) {
  net::io_context ctx(1);
  auto pairs = connect_pairs(ctx, 2);
  for (auto& p : pairs) {
    p.out->append_text_message("a", "", "");
    p.out->schedule_flush();
  }
  pairs.front().out.reset();  // destroyed with its flush scheduled
  std::thread runner([&] { ctx.run(); });
  const auto got = read_all(pairs, {0, 3});
  runner.join();
  EXPECT_EQ(got.back(), text_frame("a"));
}

}  // namespace
}  // namespace herald
