// Failure injection on the server's WebSocket I/O path: websocket::stream over the batching
// layer over Beast's in-memory test stream, whose n-th operation (and every later one) fails.
// The server side does what ws_session does (accept; read messages; reply through the direct
// path — a frame appended to the batch plus a scheduled flush, with a ping — and through Beast
// in batching mode plus a flush; close with 1000), the client side is a plain Beast client.
// For n = 0, 1, 2, … until a run meets no failure, every run must end: nothing hangs (when
// both sides wait on each other, the test plays Herald's timers and drops the socket, which is
// only allowed after a failed write, that the batching layer reports), the server sees every
// failure, the client never receives a wrong message, and the queued-bytes gauge comes back
// to where it was. ASan (the sanitize build) checks that nothing leaks.
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/_experimental/test/stream.hpp>
#include <gtest/gtest.h>

#include "transport/batching_stream.h"

namespace herald {
namespace {

using test_stream = beast::test::stream;
using server_ws = websocket::stream<basic_batching_stream<test_stream>>;
using client_ws = websocket::stream<test_stream>;

struct run_result {
  bool server_done = false, client_done = false;
  beast::error_code server_ec, client_ec;  // the first error each side saw
  bool server_closed = false;              // sent close 1000 and the handshake completed
  std::vector<std::string> client_got;     // messages, in order
  std::optional<websocket::close_reason> client_close;  // the close frame the client read
  int stalls = 0;                                       // times the test had to play the timers
  bool write_failed_at_stall = false;  // the batching layer held a write error then
};

net::awaitable<void> serve(server_ws& ws, run_result& r) {
  auto& out = ws.next_layer();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = websocket::stream_base::none();
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws.set_option(t);
  ws.read_message_max(65536);
  ws.auto_fragment(false);
  auto [aec] = co_await ws.async_accept(use_nothrow);  // reads the upgrade request itself
  r.server_ec = aec;
  beast::flat_buffer buf;
  while (!r.server_ec) {
    buf.clear();
    auto [rec, n] = co_await ws.async_read(buf, use_nothrow);
    if (rec) {
      r.server_ec = rec;
      break;
    }
    const std::string msg = beast::buffers_to_string(buf.data());
    if (msg.starts_with("direct:")) {
      // ws_session::send_direct and ::ping: framed into the batch, one scheduled write.
      out.append_text_message("echo:", std::string_view(msg).substr(7), "");
      out.append_ping();
      out.schedule_flush();
    } else if (msg.starts_with("queued:")) {
      // ws_session::write_loop: Beast frames into the batch, then one flush.
      out.batching(true);
      ws.text(true);
      const std::string reply = "echo:" + msg.substr(7);
      auto [wec, wn] = co_await ws.async_write(net::buffer(reply), use_nothrow);
      out.batching(false);
      if (wec) {
        r.server_ec = wec;
        break;
      }
      auto [fec] = co_await out.async_flush(use_nothrow);
      r.server_ec = fec;
    } else if (msg == "bye") {
      auto [cec] = co_await ws.async_close(websocket::close_code::normal, use_nothrow);
      r.server_ec = cec;
      r.server_closed = !cec;
      break;
    }
  }
  beast::get_lowest_layer(ws).close();  // ws_session::finish
  r.server_done = true;
}

net::awaitable<void> talk(client_ws& ws, run_result& r) {
  auto fail = [&](beast::error_code ec) {
    r.client_ec = ec;
    ws.next_layer().close();  // a client that gives up drops its connection
    r.client_done = true;
  };
  auto [hec] = co_await ws.async_handshake("127.0.0.1", "/v1/ws", use_nothrow);
  if (hec) co_return fail(hec);
  beast::flat_buffer buf;
  for (const char* m : {"direct:a", "queued:b"}) {
    if (std::string_view(m) == "queued:b") {
      auto [pec] = co_await ws.async_ping({}, use_nothrow);  // answered by the server's Beast
      if (pec) co_return fail(pec);
    }
    const std::string text = m;
    auto [wec, wn] = co_await ws.async_write(net::buffer(text), use_nothrow);
    if (wec) co_return fail(wec);
    buf.clear();
    auto [rec, rn] = co_await ws.async_read(buf, use_nothrow);
    if (rec) co_return fail(rec);
    r.client_got.push_back(beast::buffers_to_string(buf.data()));
  }
  const std::string bye = "bye";
  auto [bec, bn] = co_await ws.async_write(net::buffer(bye), use_nothrow);
  if (bec) co_return fail(bec);
  buf.clear();
  auto [cec, cn] = co_await ws.async_read(buf, use_nothrow);  // the server's close
  if (cec == websocket::error::closed) r.client_close = ws.reason();
  r.client_ec = cec;
  r.client_done = true;
}

// One run with the server's n-th I/O operation failing (and every later one).
run_result run_once(std::size_t n) {
  const auto queued0 = global_metrics().queued_bytes.load();
  run_result r;
  {
    net::io_context ctx(1);
    beast::test::fail_count fc(n);
    test_stream server_end(ctx, fc);
    test_stream client_end(ctx);
    server_end.connect(client_end);
    server_ws server(std::move(server_end));
    client_ws client(std::move(client_end));
    net::co_spawn(ctx, serve(server, r), net::detached);
    net::co_spawn(ctx, talk(client, r), net::detached);
    for (int steps = 0; steps < 100000 && !(r.server_done && r.client_done); ++steps) {
      if (ctx.poll() != 0) continue;
      if (ctx.stopped()) break;  // no work left and a side not done: a handler was lost
      // Both sides wait on each other: Herald's timers (the dialect's auth and idle
      // deadlines, the closing handshake's) end such a socket.
      ++r.stalls;
      r.write_failed_at_stall = server.next_layer().failed();
      beast::get_lowest_layer(server).close();
    }
    // The scheduler's pending pass, aborted reads: everything completes without a peer.
    ctx.restart();
    ctx.poll();
    EXPECT_TRUE(r.server_done && r.client_done) << "n=" << n << ": a side never finished";
  }
  EXPECT_EQ(global_metrics().queued_bytes.load(), queued0) << "n=" << n;
  return r;
}

TEST(ws_fault, every_failed_io_operation_ends_the_socket_cleanly) {
  const std::vector<std::string> want = {"echo:a", "echo:b"};
  std::size_t n = 0;
  for (; n < 200; ++n) {
    SCOPED_TRACE("server I/O operation " + std::to_string(n) + " fails");
    const run_result r = run_once(n);
    ASSERT_TRUE(r.server_done && r.client_done);
    // What reached the client is a prefix of the script, never a corrupted frame.
    ASSERT_LE(r.client_got.size(), want.size());
    for (std::size_t i = 0; i < r.client_got.size(); ++i) EXPECT_EQ(r.client_got[i], want[i]);
    // Only a write the batching layer failed may go unnoticed until the timers; reads, the
    // flush and the teardown report their failure at once.
    EXPECT_LE(r.stalls, 1);
    if (r.stalls != 0) {
      EXPECT_TRUE(r.write_failed_at_stall);
    }
    const bool clean = r.server_closed && !r.server_ec && r.client_got == want &&
                       r.client_ec == websocket::error::closed && r.client_close &&
                       r.client_close->code == websocket::close_code::normal && r.stalls == 0;
    if (clean) break;
    // A run that failed somewhere: the server saw it (an error, or a failed write).
    EXPECT_TRUE(r.server_ec || r.write_failed_at_stall)
        << "client: " << r.client_ec.message() << ", got " << r.client_got.size();
    EXPECT_TRUE(r.client_ec) << "the client finished its script over a failed server";
  }
  ASSERT_LT(n, 200u) << "no run without a failure";
  // The handshake (read and write), the messages, pings, pongs and the close take more than
  // a handful of operations: the loop went through all of them.
  EXPECT_GE(n, 8u);
  std::printf("[ info ] a clean run after %zu injected failures\n", n);
}

}  // namespace
}  // namespace herald
