#include "bench/load.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/json/parse.hpp>

#include "bench/accounting.h"
#include "bench/histogram.h"
#include "bench/proc_stats.h"
#include "bench/protocol.h"
#include "bench/tracker.h"
#include "client/client.h"
#include "transport/net.h"

namespace herald::bench {

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void sleep_s(double s) {
  std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9)));
}

using ws_stream = websocket::stream<tcp::socket>;

// State shared by the main thread and every load thread: atomics, except the vectors (sized
// before the threads start; each element then has one writer at a time, and the main thread
// reads it once an atomic says that writer is done: subs_on_topic is filled by the main thread
// before any publisher starts), `window` (set before the threads start) and first_error
// (behind error_mu).
struct shared_state {
  // One server of opts.servers, resolved: its endpoint, Host header and WebSocket path.
  struct server {
    tcp::endpoint endpoint;
    std::string host;     // "host:port", the Host header
    std::string ws_path;  // Herald: opts.ws_path; NATS: the URL's target
  };
  const load_options& opts;
  std::vector<server> servers;                       // resolved once, before the load threads start
  std::vector<delivery_tracker> trackers;            // per subscriber
  std::vector<std::size_t> topic_of;                 // per subscriber
  std::vector<std::size_t> subs_on_topic;            // per topic (subscribed ones, after connect)
  std::vector<char> subscribed;                      // per subscriber
  std::vector<char> slow;                            // per subscriber (--slow-fraction)
  std::vector<std::vector<std::uint64_t>> accepted;  // [publisher][topic]

  std::atomic<std::size_t> ready{0}, failed{0}, disconnects{0}, pub_ready{0}, pubs_done{0};
  std::atomic<int> last_close{0};
  std::atomic<std::uint64_t> delivered{0}, published{0}, publish_errors{0}, expected_sent{0};
  // Slow subscribers' deliveries and closes, apart (they may be cut: expected behaviour).
  std::atomic<std::uint64_t> slow_delivered{0};
  std::atomic<std::size_t> slow_disconnects{0};
  std::atomic<int> slow_last_close{0};
  std::atomic<bool> go{false}, stop_publishing{false}, stopping{false};
  std::atomic<std::int64_t> start_ns{0};
  std::uint64_t window = 0;

  std::mutex error_mu;
  std::string first_error;

  // The resume storm (run_resume_storm): which coroutine subscriber() runs, and per session
  // its resume token, the last seq it saw before the drain and its tally after the restart.
  enum class phase { load, storm_subscribe, storm_resume } mode = phase::load;
  std::vector<std::string> tokens;
  std::vector<std::uint64_t> last_seq;
  std::vector<resume_session> sessions;
  std::uint64_t storm_missed = 0;  // events each session misses while away
  std::atomic<std::size_t> drain_closes{0}, storm_done{0};
  std::atomic<int> drain_close_code{0};
  std::atomic<std::int64_t> storm_t0{0};

  explicit shared_state(const load_options& o) : opts(o) {}

  void note_error(const std::string& e) {
    std::lock_guard l(error_mu);
    if (first_error.empty()) first_error = e;
  }
};

// One load thread: its io_context, its histograms, and the launcher that keeps at most
// `limit` handshakes of its subscribers in flight. Owned by its thread once running.
struct worker {
  histogram latency;
  histogram slow_latency;  // slow subscribers' deliveries (--slow-fraction)
  histogram publish_ns;    // Herald: POST written -> 201 read
  histogram connect_ms;
  std::vector<std::size_t> subs;  // subscriber indices on this thread
  std::size_t next = 0, in_flight = 0, limit = 1;
  // The one read buffer of all this thread's subscribers (see receive()): a read into it is
  // parsed to the end before the reader next suspends, so no two connections ever share it in
  // time, and idle connections hold no read buffer at all.
  std::vector<char> chunk = std::vector<char>(16 * 1024);
  std::thread thread;
  net::io_context ioc{1};  // last: destroyed first, with the coroutines that use the above
};

net::awaitable<void> subscriber(shared_state& sh, worker& w, std::size_t index);

void launch_more(shared_state& sh, worker& w) {
  while (w.in_flight < w.limit && w.next < w.subs.size()) {
    ++w.in_flight;
    net::co_spawn(w.ioc, subscriber(sh, w, w.subs[w.next++]), net::detached);
  }
}

void connect_done(shared_state& sh, worker& w, std::size_t index, bool ok, const std::string& why) {
  if (ok) {
    sh.subscribed[index] = 1;
    sh.ready.fetch_add(1);
  } else {
    sh.failed.fetch_add(1);
    sh.note_error(why);
  }
  --w.in_flight;
  launch_more(sh, w);
}

std::string ec_text(const char* what, const beast::error_code& ec) {
  return std::string(what) + ": " + ec.message();
}

// Opens a WebSocket to the server: TCP connect, upgrade (with the API key for Herald).
// Coroutine parameters are views or references to objects that outlive the call: GCC 12
// destroys some temporaries of a co_await full-expression twice, so callers pass named objects.
// `server` indexes sh.servers.
net::awaitable<beast::error_code> open_ws(shared_state& sh, ws_stream& ws, std::size_t server,
                                          std::string_view key, std::string_view path) {
  const auto& srv = sh.servers[server];
  auto [ec] = co_await ws.next_layer().async_connect(srv.endpoint, use_nothrow);
  if (ec) co_return ec;
  ws.next_layer().set_option(tcp::no_delay(true));
  ws.set_option(
      websocket::stream_base::decorator([key = std::string(key)](websocket::request_type& r) {
        r.set(http::field::user_agent, "herald-bench");
        if (!key.empty()) r.set(http::field::authorization, "Bearer " + key);
      }));
  std::tie(ec) = co_await ws.async_handshake(srv.host, path, use_nothrow);
  co_return ec;
}

net::awaitable<beast::error_code> send_text(ws_stream& ws, std::string_view text) {
  ws.text(true);
  auto [ec, n] = co_await ws.async_write(net::buffer(text), use_nothrow);
  (void)n;
  co_return ec;
}

net::awaitable<beast::error_code> send_binary(ws_stream& ws, std::string_view bytes) {
  ws.binary(true);
  auto [ec, n] = co_await ws.async_write(net::buffer(bytes), use_nothrow);
  (void)n;
  co_return ec;
}

// A subscriber's connection ended: `code` is the server's close code, 1006 when it ended
// without a close frame.
void note_close(shared_state& sh, int code, const std::string& why) {
  if (sh.stopping.load()) return;
  sh.disconnects.fetch_add(1);
  sh.last_close.store(code);
  sh.note_error(why);
}

// --- the subscribers' receive path ----------------------------------------------------------

// What one subscriber does with the frames of a read (the target's part is on_message), and
// what it owes the server afterwards. Replies cannot be written from inside the parser's
// callbacks (a write suspends), so they are noted here and sent once the chunk is parsed.
struct receiver : ws_frame_parser::visitor {
  receiver(shared_state& s, worker& wk, std::size_t i)
      : sh(s), w(wk), tr(s.trackers[i]), slow(s.slow[i] != 0) {}

  // Accounts one bench payload: latency against the time the chunk was read (one clock read
  // per read, not per message), the count added to sh.delivered once per chunk.
  void account(const stamp& s) {
    tr.on_payload(s.publisher, s.counter);
    (slow ? w.slow_latency : w.latency)
        .record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - s.sent_ns)));
    ++accounted;
  }

  // The connection ended (see note_close); a slow subscriber's end is counted apart.
  void closed(int code, const std::string& why) {
    if (!slow) return note_close(sh, code, why);
    if (sh.stopping.load()) return;
    sh.slow_disconnects.fetch_add(1);
    sh.slow_last_close.store(code);
  }
  void closed(ws_stream& ws, const char* what, const beast::error_code& ec) {
    closed(ec == websocket::error::closed ? ws.reason().code : 1006, ec_text(what, ec));
  }

  void on_ping(std::string_view payload) override {
    // One pong for the latest ping is enough (RFC 6455 §5.5.3); pings are rare.
    ws_ping = true;
    ping_payload.assign(payload);
  }
  void on_close(int code, std::string_view) override { close_code = code; }

  shared_state& sh;
  worker& w;
  delivery_tracker& tr;
  bool slow;                    // pauses after each read (--slow-fraction)
  std::int64_t now = 0;         // when the chunk being parsed was read
  std::uint64_t accounted = 0;  // payloads accounted from it
  int app_pings = 0;            // the target's own pings ({"type":"ping"}, PING) to answer
  bool ws_ping = false;         // a WebSocket ping to answer with a pong frame
  std::string ping_payload;
  int close_code = 0;  // the server's close frame, once seen
  std::string fatal;   // a violation of the target's protocol: the connection is given up

 protected:
  ~receiver() = default;
};

// Once subscribed, a subscriber reads its socket itself instead of through Beast's async_read,
// which costs a coroutine resume and a Beast read operation per message: with one small
// message per frame (Herald) and a thousand subscribers on a thread, that made the bench the
// bottleneck. Here one wake-up reads what the socket holds and every frame in it is handled
// in one go, the same code for both targets. Writes (pongs, replies) still go through Beast,
// which masks client frames.
//
// The read is reactor-style: wait for readability, then a non-blocking read_some into the
// worker's shared chunk, parsed synchronously before the next suspension. (An async_read_some
// would need a buffer per connection, held while idle: 16 KiB × 10,000 connections.) After a
// short read the socket is drained and the next data arrival wakes the wait again, which is
// how Asio's own reads skip the speculative read then; after a full chunk we read again at once.
//
// Returns when the connection ends: close frame, EOF or error, or a protocol violation.
net::awaitable<void> receive(shared_state& sh, worker& w, ws_stream& ws, receiver& r,
                             std::string_view app_pong, bool app_pong_binary) {
  tcp::socket& sock = ws.next_layer();
  beast::error_code ec;
  sock.non_blocking(true, ec);  // only read_some below: Asio's async operations ignore it
  if (ec) {
    r.closed(1006, ec_text("subscriber socket", ec));
    co_return;
  }
  ws_frame_parser parser;
  bool readable = false;
  net::steady_timer pause(sock.get_executor());
  for (;;) {
    if (r.slow) {  // a slow reader: the server's queue for it grows meanwhile
      pause.expires_after(
          std::chrono::nanoseconds(static_cast<std::int64_t>(sh.opts.slow_pause_s * 1e9)));
      co_await pause.async_wait(use_nothrow);
      if (sh.stopping.load()) co_return;
    }
    if (!readable) {
      auto [wec] = co_await sock.async_wait(tcp::socket::wait_read, use_nothrow);
      if (wec) {
        r.closed(1006, ec_text("subscriber read", wec));
        co_return;
      }
    }
    const std::size_t n = sock.read_some(net::buffer(w.chunk), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      readable = false;  // a spurious wake-up
      continue;
    }
    if (ec) {
      r.closed(1006, ec_text("subscriber read", ec));
      co_return;
    }
    readable = n == w.chunk.size();
    r.now = now_ns();
    r.accounted = 0;
    const bool ok = parser.feed(std::string_view(w.chunk.data(), n), r);
    if (r.accounted > 0)
      (r.slow ? sh.slow_delivered : sh.delivered).fetch_add(r.accounted, std::memory_order_relaxed);
    if (!ok) {
      r.closed(1006,
               "subscriber read: " + std::string(ws_frame_parser::describe(parser.last_error())));
      co_return;
    }
    if (!r.fatal.empty()) {
      sh.note_error(r.fatal);
      co_return;
    }
    if (parser.closed()) {
      // No close frame is echoed (Beast's read used to): the socket closes as the coroutine
      // ends, which the server sees as the end of its closing handshake.
      r.closed(r.close_code,
               "subscriber read: closed by the server (" + std::to_string(r.close_code) + ")");
      co_return;
    }
    if (r.ws_ping) {
      r.ws_ping = false;
      websocket::ping_data payload;
      payload.assign(r.ping_payload.data(), r.ping_payload.size());  // ≤ 125 bytes (parser)
      auto [pec] = co_await ws.async_pong(payload, use_nothrow);
      if (pec) {
        r.closed(ws, "subscriber pong", pec);
        co_return;
      }
    }
    for (; r.app_pings > 0; --r.app_pings) {
      beast::error_code wec;
      if (app_pong_binary)
        wec = co_await send_binary(ws, app_pong);
      else
        wec = co_await send_text(ws, app_pong);
      if (wec) {
        r.closed(ws, "subscriber pong", wec);
        co_return;
      }
    }
  }
}

// --- Herald subscriber ----------------------------------------------------------------------

struct herald_receiver final : receiver {
  using receiver::receiver;
  void on_message(std::string_view text, bool) override {
    const auto f = scan_herald_frame(text);
    if (f.type == herald_frame::kind::event) {
      tr.on_seq(f.seq);
      if (f.payload) account(*f.payload);
    } else if (f.type == herald_frame::kind::ping) {
      ++app_pings;
    } else if (f.type == herald_frame::kind::error) {
      sh.note_error("server: " + std::string(text));
    }
  }
};

net::awaitable<void> herald_subscriber(shared_state& sh, worker& w, std::size_t index,
                                       ws_stream& ws, std::int64_t t0) {
  beast::flat_buffer buf;
  auto read_until = [&](herald_frame::kind want) -> net::awaitable<std::string> {
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buf, use_nothrow);
      (void)n;
      if (ec) co_return ec_text("handshake read", ec);
      const std::string text = beast::buffers_to_string(buf.data());
      buf.consume(buf.size());
      const auto f = scan_herald_frame(text);
      if (f.type == want) co_return std::string();
      if (f.type == herald_frame::kind::error) co_return "server: " + text;
    }
  };
  if (auto e = co_await read_until(herald_frame::kind::welcome); !e.empty()) {
    connect_done(sh, w, index, false, e);
    co_return;
  }
  const std::string sub = R"({"type":"subscribe","id":"b","filters":[{"topic":")" +
                          topic_name(server_kind::herald, sh.topic_of[index]) + "\"}]}";
  if (auto ec = co_await send_text(ws, sub)) {
    connect_done(sh, w, index, false, ec_text("subscribe", ec));
    co_return;
  }
  if (auto e = co_await read_until(herald_frame::kind::ack); !e.empty()) {
    connect_done(sh, w, index, false, e);
    co_return;
  }
  buf.shrink_to_fit();  // empty: held no longer by an idle connection
  w.connect_ms.record(static_cast<std::uint64_t>((now_ns() - t0) / 1000));  // µs
  connect_done(sh, w, index, true, {});
  // From here the socket is read raw (receive()). Beast may hold bytes it read past the last
  // message it returned, which a raw read would never see; there are none here: after `ack`
  // the server sends this connection nothing until events are published, and publishing
  // starts only once every subscriber is subscribed (run_load). The heartbeat ping comes
  // after heartbeat_interval (default 30 s) of quiet, not within the milliseconds between
  // welcome and ack. A byte lost anyway would not pass silently: a lost event shows as a seq
  // gap, a lost ping as the server's close 4008.
  herald_receiver r(sh, w, index);
  static constexpr std::string_view pong = R"({"type":"pong"})";
  co_await receive(sh, w, ws, r, pong, false);
}

// --- NATS subscriber ------------------------------------------------------------------------

// Collects what one NATS feed produced; replies are sent by the coroutine after the feed.
// Payloads are accounted only through `acc`, once subscribed.
struct nats_sub_visitor final : nats_parser::visitor {
  receiver* acc = nullptr;
  int pings = 0, pongs = 0;
  std::string err;
  void on_msg(std::string_view, std::string_view payload) override {
    if (acc == nullptr) return;
    if (auto s = find_stamp(payload)) acc->account(*s);
  }
  void on_ping() override { ++pings; }
  void on_pong() override { ++pongs; }
  void on_info(std::string_view) override {}
  void on_err(std::string_view text) override { err.assign(text); }
};

// The NATS byte stream runs through the WebSocket messages (binary, or text): each one is fed
// to the NATS parser as it comes out of the frame parser.
struct nats_receiver final : receiver {
  nats_receiver(shared_state& s, worker& wk, std::size_t i, nats_parser& p, nats_sub_visitor& v)
      : receiver(s, wk, i), parser(p), nv(v) {
    nv.acc = this;
  }
  void on_message(std::string_view bytes, bool) override {
    if (!fatal.empty()) return;
    if (!parser.feed(bytes, nv)) fatal = "nats: protocol error";
    if (!nv.err.empty()) {
      sh.note_error("nats: " + nv.err);
      nv.err.clear();
    }
    app_pings += nv.pings;
    nv.pings = 0;
  }
  nats_parser& parser;
  nats_sub_visitor& nv;
};

net::awaitable<void> nats_subscriber(shared_state& sh, worker& w, std::size_t index, ws_stream& ws,
                                     std::int64_t t0) {
  beast::flat_buffer buf;
  nats_parser parser;
  nats_sub_visitor v;
  const std::string hello = R"(CONNECT {"verbose":false,"pedantic":false,"protocol":1,)"
                            R"("echo":false,"name":"herald-bench"})"
                            "\r\nSUB " +
                            topic_name(server_kind::nats, sh.topic_of[index]) + " 1\r\nPING\r\n";
  if (auto ec = co_await send_binary(ws, hello)) {
    connect_done(sh, w, index, false, ec_text("nats connect", ec));
    co_return;
  }
  // Through Beast until the PONG (INFO may come in the same read as the upgrade response,
  // which Beast holds).
  while (v.pongs == 0) {
    auto [ec, n] = co_await ws.async_read(buf, use_nothrow);
    (void)n;
    if (ec) {
      connect_done(sh, w, index, false, ec_text("nats read", ec));
      co_return;
    }
    const auto d = buf.data();
    const bool ok = parser.feed(std::string_view(static_cast<const char*>(d.data()), d.size()), v);
    buf.consume(buf.size());
    if (!ok || !v.err.empty()) {
      connect_done(sh, w, index, false, ok ? "nats: " + v.err : "nats: protocol error");
      co_return;
    }
    for (; v.pings > 0; --v.pings) {
      constexpr std::string_view pong = "PONG\r\n";
      if (auto e2 = co_await send_binary(ws, pong)) {
        connect_done(sh, w, index, false, ec_text("nats pong", e2));
        co_return;
      }
    }
  }
  buf.shrink_to_fit();
  // The server answers PING after it has processed the SUB before it: subscribed.
  w.connect_ms.record(static_cast<std::uint64_t>((now_ns() - t0) / 1000));
  connect_done(sh, w, index, true, {});
  // Raw reads from here, as for Herald: after the PONG the server sends nothing until
  // publishing starts (after every subscriber is subscribed) but its own PING after
  // ping_interval (default 2 min), so Beast holds no bytes of later frames. A lost MSG would
  // show as a counter gap, a lost PING as the server's "Stale Connection".
  nats_receiver r(sh, w, index, parser, v);
  static constexpr std::string_view pong = "PONG\r\n";
  co_await receive(sh, w, ws, r, pong, true);
}

// --- resume storm sessions ------------------------------------------------------------------

// Reads one message through Beast into `text`; an empty error string when it came.
net::awaitable<beast::error_code> read_text(ws_stream& ws, beast::flat_buffer& buf,
                                            std::string& text) {
  auto [ec, n] = co_await ws.async_read(buf, use_nothrow);
  (void)n;
  text = beast::buffers_to_string(buf.data());
  buf.consume(buf.size());
  co_return ec;
}

// Before the drain: welcome (its resume token kept), subscribe, then events (their seq kept)
// until the server closes the socket; a drain's close (1012) is counted.
net::awaitable<void> storm_subscriber(shared_state& sh, worker& w, std::size_t index,
                                      ws_stream& ws) {
  if (auto ec = co_await open_ws(sh, ws, 0, sh.opts.sub_key, sh.servers[0].ws_path)) {
    connect_done(sh, w, index, false, ec_text("storm connect", ec));
    co_return;
  }
  beast::flat_buffer buf;
  std::string text;
  if (auto ec = co_await read_text(ws, buf, text)) {
    connect_done(sh, w, index, false, ec_text("storm welcome", ec));
    co_return;
  }
  try {
    const auto j = boost::json::parse(text).as_object();
    sh.tokens[index] = std::string(j.at("resume_token").as_string());
  } catch (const std::exception&) {
    connect_done(sh, w, index, false, "storm: no resume_token in " + text.substr(0, 200));
    co_return;
  }
  const std::string sub = R"({"type":"subscribe","id":"s","filters":[{"topic":")" +
                          topic_name(server_kind::herald, sh.topic_of[index]) + "\"}]}";
  bool acked = false;
  if (auto ec = co_await send_text(ws, sub)) {
    connect_done(sh, w, index, false, ec_text("storm subscribe", ec));
    co_return;
  }
  static constexpr std::string_view pong = R"({"type":"pong"})";
  for (;;) {
    auto ec = co_await read_text(ws, buf, text);
    if (ec) {
      const int code = ec == websocket::error::closed ? ws.reason().code : 1006;
      if (!acked) {
        connect_done(sh, w, index, false, ec_text("storm read", ec));
      } else if (!sh.stopping.load()) {
        sh.drain_close_code.store(code);
        sh.drain_closes.fetch_add(1);
      }
      co_return;
    }
    const auto f = scan_herald_frame(text);
    if (f.type == herald_frame::kind::ack && !acked) {
      acked = true;
      connect_done(sh, w, index, true, {});
    } else if (f.type == herald_frame::kind::event) {
      sh.last_seq[index] = f.seq;
      sh.delivered.fetch_add(1);
    } else if (f.type == herald_frame::kind::ping) {
      if (auto e2 = co_await send_text(ws, pong)) continue;  // the read reports the end
    } else if (f.type == herald_frame::kind::error) {
      sh.note_error("server: " + text);
      if (!acked) {
        connect_done(sh, w, index, false, "server: " + text);
        co_return;
      }
    }
  }
}

// After the restart: resume with the token and the last seq, tally the welcome and the events
// that follow (resume_session), then keep reading (a late duplicate still counts) until the end.
net::awaitable<void> storm_resumer(shared_state& sh, worker& w, std::size_t index, ws_stream& ws) {
  auto& rs = sh.sessions[index];
  const std::string path = sh.servers[0].ws_path + "?resume=" + sh.tokens[index] +
                           "&last_seq=" + std::to_string(sh.last_seq[index]);
  auto since = [&] { return now_ns() - sh.storm_t0.load(); };
  bool counted = false;
  auto done = [&] {
    if (!counted) sh.storm_done.fetch_add(1);
    counted = true;
  };
  if (auto ec = co_await open_ws(sh, ws, 0, sh.opts.sub_key, path)) {
    rs.on_error(ec_text("resume connect", ec));
    connect_done(sh, w, index, false, ec_text("resume connect", ec));
    done();
    co_return;
  }
  beast::flat_buffer buf;
  std::string text;
  if (auto ec = co_await read_text(ws, buf, text)) {
    rs.on_error(ec_text("resume welcome", ec));
    connect_done(sh, w, index, false, ec_text("resume welcome", ec));
    done();
    co_return;
  }
  try {
    const auto j = boost::json::parse(text).as_object();
    if (j.at("type").as_string() != "welcome") throw std::runtime_error("not a welcome");
    const auto* err = j.if_contains("recovery_error");
    rs.on_welcome(j.at("recovered").as_bool(),
                  err && err->is_string() ? std::string(err->as_string()) : std::string(), since());
  } catch (const std::exception&) {
    rs.on_error("resume: expected a welcome, got " + text.substr(0, 200));
    connect_done(sh, w, index, false, "resume: no welcome");
    done();
    co_return;
  }
  connect_done(sh, w, index, true, {});
  if (!rs.recovered() || sh.storm_missed == 0) done();
  static constexpr std::string_view pong = R"({"type":"pong"})";
  for (;;) {
    if (auto ec = co_await read_text(ws, buf, text)) {
      if (!sh.stopping.load()) rs.on_error(ec_text("resume read", ec));
      done();
      co_return;
    }
    const auto f = scan_herald_frame(text);
    if (f.type == herald_frame::kind::event) {
      rs.on_event(f.seq, sh.storm_missed, since());
      if (rs.events() >= sh.storm_missed) done();
    } else if (f.type == herald_frame::kind::ping) {
      if (auto e2 = co_await send_text(ws, pong)) continue;
    }
  }
}

net::awaitable<void> subscriber(shared_state& sh, worker& w, std::size_t index) {
  auto ex = co_await net::this_coro::executor;
  ws_stream ws(ex);
  const std::int64_t t0 = now_ns();
  const bool herald = sh.opts.kind == server_kind::herald;
  const std::string_view key = herald ? std::string_view(sh.opts.sub_key) : std::string_view();
  if (sh.mode == shared_state::phase::storm_subscribe) {
    co_await storm_subscriber(sh, w, index, ws);
    co_return;
  }
  if (sh.mode == shared_state::phase::storm_resume) {
    co_await storm_resumer(sh, w, index, ws);
    co_return;
  }
  const std::size_t server = subscriber_server(index, sh.servers.size());
  if (auto ec = co_await open_ws(sh, ws, server, key, sh.servers[server].ws_path)) {
    connect_done(sh, w, index, false, ec_text("subscriber connect", ec));
    co_return;
  }
  if (herald)
    co_await herald_subscriber(sh, w, index, ws, t0);
  else
    co_await nats_subscriber(sh, w, index, ws, t0);
}

// --- publishers -----------------------------------------------------------------------------

// What a publisher sends next: open-loop at the target rate (each event stamped with the time
// it was due, so a late server shows as latency rather than as a slower schedule), or, at max
// rate, full batches as long as the deliveries outstanding stay within the window.
class pacer {
 public:
  pacer(shared_state& sh, std::uint32_t id) : sh_(sh), id_(id) {
    const auto& o = sh.opts;
    rate_ = o.rate > 0 ? o.rate / static_cast<double>(stream_count(o.publishers, o.inflight)) : 0;
    next_counter_.assign(o.topics, 1);
    topic_ = id % o.topics;
  }

  // Waits until something is due; fills `body` and `batch` (topic of each event). Returns
  // false when publishing has stopped.
  net::awaitable<bool> next(std::vector<std::pair<std::size_t, stamp>>& batch) {
    batch.clear();
    auto ex = co_await net::this_coro::executor;
    net::steady_timer timer(ex);
    const std::int64_t start = sh_.start_ns.load();
    for (;;) {
      if (sh_.stop_publishing.load()) co_return false;
      const std::int64_t now = now_ns();
      std::size_t count = 0;
      if (rate_ > 0) {
        // Event k (from 0) is due at start + k / rate: events 0 .. floor(elapsed * rate) are due.
        const auto due =
            static_cast<std::uint64_t>(static_cast<double>(now - start) * rate_ / 1e9) + 1;
        if (due > sent_) {
          count = static_cast<std::size_t>(std::min<std::uint64_t>(due - sent_, sh_.opts.batch));
        } else {
          const auto at =
              start + static_cast<std::int64_t>(static_cast<double>(sent_) * 1e9 / rate_);
          timer.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(at - now, 1000)));
          co_await timer.async_wait(use_nothrow);
          continue;
        }
      } else {
        const std::uint64_t out = sh_.expected_sent.load() - sh_.delivered.load();
        if (sh_.expected_sent.load() > sh_.delivered.load() && out > sh_.window) {
          timer.expires_after(std::chrono::microseconds(200));
          co_await timer.async_wait(use_nothrow);
          continue;
        }
        count = sh_.opts.batch;
      }
      std::uint64_t fan = 0;
      for (std::size_t k = 0; k < count; ++k) {
        const std::int64_t t =
            rate_ > 0
                ? start + static_cast<std::int64_t>(static_cast<double>(sent_ + k) * 1e9 / rate_)
                : now;
        batch.emplace_back(topic_, stamp{id_, next_counter_[topic_]++, t});
        fan += sh_.subs_on_topic[topic_];
        topic_ = (topic_ + 1) % sh_.opts.topics;
      }
      sent_ += count;
      sh_.expected_sent.fetch_add(fan);
      co_return true;
    }
  }

  void accepted(const std::vector<std::pair<std::size_t, stamp>>& batch) {
    for (const auto& [topic, s] : batch) ++sh_.accepted[id_][topic];
    sh_.published.fetch_add(batch.size());
  }

  void rejected(const std::vector<std::pair<std::size_t, stamp>>& batch) {
    std::uint64_t fan = 0;
    for (const auto& e : batch) fan += sh_.subs_on_topic[e.first];
    sh_.expected_sent.fetch_sub(fan);
    sh_.publish_errors.fetch_add(batch.size());
  }

 private:
  shared_state& sh_;
  std::uint32_t id_;
  double rate_ = 0;
  std::uint64_t sent_ = 0;
  std::size_t topic_ = 0;
  std::vector<std::uint64_t> next_counter_;
};

net::awaitable<void> wait_for_go(shared_state& sh) {
  auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  while (!sh.go.load() && !sh.stopping.load()) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(use_nothrow);
  }
}

net::awaitable<void> herald_publisher(shared_state& sh, worker& w, std::uint32_t id) {
  auto ex = co_await net::this_coro::executor;
  const auto& srv = sh.servers[stream_server(id, sh.servers.size())];
  tcp::socket sock(ex);
  bool connected = false;
  auto connect = [&]() -> net::awaitable<bool> {
    beast::error_code ignored;
    sock.close(ignored);
    auto [ec] = co_await sock.async_connect(srv.endpoint, use_nothrow);
    if (ec) {
      sh.note_error(ec_text("publisher connect", ec));
      co_return false;
    }
    sock.set_option(tcp::no_delay(true));
    co_return true;
  };
  connected = co_await connect();
  sh.pub_ready.fetch_add(1);
  co_await wait_for_go(sh);
  pacer pace(sh, id);
  std::vector<std::pair<std::size_t, stamp>> batch;
  http::request<http::string_body> req{http::verb::post, "/v1/events", 11};
  req.set(http::field::host, srv.host);
  req.set(http::field::authorization, "Bearer " + sh.opts.pub_key);
  req.set(http::field::content_type, "application/json");
  req.keep_alive(true);
  beast::flat_buffer buf;
  std::string body;
  while (co_await pace.next(batch)) {
    body.clear();
    body += '[';
    for (const auto& [topic, s] : batch) {
      if (body.size() > 1) body += ',';
      body += R"({"topic":")";
      body += topic_name(server_kind::herald, topic);
      body += R"(","type":"bench","data":)";
      body += make_payload(s, sh.opts.payload_bytes);
      body += '}';
    }
    body += ']';
    if (!connected && !(connected = co_await connect())) {
      pace.rejected(batch);
      continue;
    }
    req.body() = body;
    req.prepare_payload();
    const std::int64_t sent = now_ns();
    auto [wec, wn] = co_await http::async_write(sock, req, use_nothrow);
    (void)wn;
    http::response<http::string_body> res;
    beast::error_code rec = wec;
    if (!wec) {
      auto [ec2, rn] = co_await http::async_read(sock, buf, res, use_nothrow);
      (void)rn;
      rec = ec2;
    }
    if (rec) {
      sh.note_error(ec_text("publish", rec));
      pace.rejected(batch);
      connected = false;
      continue;
    }
    if (res.result_int() == 201) {
      w.publish_ns.record(static_cast<std::uint64_t>(now_ns() - sent));
      pace.accepted(batch);
    } else {
      sh.note_error("publish: HTTP " + std::to_string(res.result_int()) + " " + res.body());
      pace.rejected(batch);
      if (!res.keep_alive()) connected = false;
    }
  }
  sh.pubs_done.fetch_add(1);
}

net::awaitable<void> nats_publisher(shared_state& sh, std::uint32_t id) {
  auto ex = co_await net::this_coro::executor;
  ws_stream ws(ex);
  constexpr std::string_view no_key;
  constexpr std::string_view hello =
      "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"name\":\"herald-bench-pub\"}"
      "\r\nPING\r\n";
  const std::size_t server = stream_server(id, sh.servers.size());
  auto ec0 = co_await open_ws(sh, ws, server, no_key, sh.servers[server].ws_path);
  bool ok = !ec0;
  if (ok) {
    ec0 = co_await send_binary(ws, hello);
    ok = !ec0;
  }
  if (ok) {
    // Wait for the PONG: the server has taken the CONNECT.
    beast::flat_buffer buf;
    nats_parser parser;
    nats_sub_visitor v;
    while (ok && v.pongs == 0) {
      auto [ec, n] = co_await ws.async_read(buf, use_nothrow);
      (void)n;
      const auto d = buf.data();
      ok = !ec && parser.feed(std::string_view(static_cast<const char*>(d.data()), d.size()), v);
      buf.consume(buf.size());
    }
  }
  if (!ok) sh.note_error("nats publisher: connect failed");
  sh.pub_ready.fetch_add(1);
  co_await wait_for_go(sh);
  pacer pace(sh, id);
  std::vector<std::pair<std::size_t, stamp>> batch;
  std::string frame;
  while (co_await pace.next(batch)) {
    if (!ok) {
      pace.rejected(batch);
      continue;
    }
    frame.clear();
    for (const auto& [topic, s] : batch) {
      const std::string payload = make_payload(s, sh.opts.payload_bytes);
      frame += "PUB ";
      frame += topic_name(server_kind::nats, topic);
      frame += ' ';
      frame += std::to_string(payload.size());
      frame += "\r\n";
      frame += payload;
      frame += "\r\n";
    }
    if (auto ec = co_await send_binary(ws, frame)) {
      sh.note_error(ec_text("nats publish", ec));
      pace.rejected(batch);
      ok = false;
      continue;
    }
    pace.accepted(batch);
  }
  sh.pubs_done.fetch_add(1);
}

template <class Pred>
bool wait_until(Pred pred, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::nanoseconds(static_cast<std::int64_t>(timeout_s * 1e9));
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

namespace {

std::vector<shared_state::server> resolve_servers(const load_options& o) {
  if (o.servers.empty()) throw std::runtime_error("no server to run against");
  net::io_context ioc;
  tcp::resolver r(ioc);
  std::vector<shared_state::server> out;
  for (const auto& a : o.servers) {
    beast::error_code ec;
    auto res = r.resolve(a.host, a.port, ec);
    if (ec || res.empty()) throw std::runtime_error("cannot resolve " + a.host + ":" + a.port);
    out.push_back(
        {*res.begin(), a.host + ":" + a.port, o.kind == server_kind::nats ? a.target : o.ws_path});
  }
  return out;
}

using guard_t = net::executor_work_guard<net::io_context::executor_type>;

// The load threads, subscribers dealt round-robin, each running its io_context until its guard
// is reset.
void start_workers(const load_options& o, std::vector<std::unique_ptr<worker>>& workers,
                   std::vector<guard_t>& guards) {
  for (std::size_t t = 0; t < o.threads; ++t) workers.push_back(std::make_unique<worker>());
  for (std::size_t i = 0; i < o.subscribers; ++i) workers[i % o.threads]->subs.push_back(i);
  for (auto& w : workers) {
    w->limit = std::max<std::size_t>(1, o.connect_concurrency / o.threads);
    guards.emplace_back(w->ioc.get_executor());
    worker* wp = w.get();
    w->thread = std::thread([wp] { wp->ioc.run(); });
  }
}

}  // namespace

std::string topic_name(server_kind kind, std::size_t i) {
  return kind == server_kind::herald ? "/bench/t" + std::to_string(i)
                                     : "bench.t" + std::to_string(i);
}

load_result run_load(const load_options& o) {
  if (o.threads == 0 || o.topics == 0 || o.batch == 0)
    throw std::runtime_error("threads, topics and batch must be at least 1");
  shared_state sh(o);
  sh.servers = resolve_servers(o);
  sh.trackers.resize(o.subscribers);
  sh.topic_of.resize(o.subscribers);
  sh.subscribed.assign(o.subscribers, 0);
  sh.subs_on_topic.assign(o.topics, 0);
  for (std::size_t i = 0; i < o.subscribers; ++i) sh.topic_of[i] = i % o.topics;
  const std::size_t streams = stream_count(o.publishers, o.inflight);
  sh.accepted.assign(streams, std::vector<std::uint64_t>(o.topics, 0));
  sh.slow.assign(o.subscribers, 0);
  for (std::size_t i = 0; i < o.subscribers; ++i) sh.slow[i] = is_slow(i, o.slow_fraction) ? 1 : 0;
  const double fanout = static_cast<double>(o.subscribers) / static_cast<double>(o.topics);
  sh.window =
      o.window > 0
          ? o.window
          : std::max<std::uint64_t>(
                50000, static_cast<std::uint64_t>(4.0 * static_cast<double>(o.batch * streams) *
                                                  std::max(1.0, fanout)));

  load_result out;
  out.client_cpus = usable_cpus();
  std::optional<proc_sample> srv0;
  for (int pid : o.server_pids)
    if (!sample_process(pid)) throw std::runtime_error("no process " + std::to_string(pid));
  if (!o.server_pids.empty()) {
    srv0 = sample_processes(o.server_pids);
    if (!srv0) throw std::runtime_error("a --server-pid process ended");
    out.server_measured = true;
    out.server_rss_before = srv0->rss_bytes;
  }

  std::vector<std::unique_ptr<worker>> workers;
  std::vector<guard_t> guards;
  start_workers(o, workers, guards);

  // Phase 1: connect and subscribe every subscriber.
  auto srv_c0 = sample_processes(o.server_pids);
  auto self_c0 = sample_process(0);
  const std::int64_t c0 = now_ns();
  for (auto& w : workers) {
    worker* wp = w.get();
    net::post(w->ioc, [&sh, wp] { launch_more(sh, *wp); });
  }
  wait_until([&] { return sh.ready.load() + sh.failed.load() >= o.subscribers; },
             o.connect_timeout_s);
  const std::int64_t c1 = now_ns();
  auto srv_c1 = sample_processes(o.server_pids);
  auto self_c1 = sample_process(0);
  out.connected = sh.ready.load();
  out.connect_errors = o.subscribers - out.connected;
  out.connect_s = static_cast<double>(c1 - c0) / 1e9;
  out.connect_rate = out.connect_s > 0 ? static_cast<double>(out.connected) / out.connect_s : 0;
  if (srv_c0 && srv_c1) {
    out.server_connect_cpu_pct = cpu_percent(*srv_c0, *srv_c1);
    if (out.connected > 0)
      out.server_connect_cpu_us = out.server_connect_cpu_pct / 100.0 * out.connect_s * 1e6 /
                                  static_cast<double>(out.connected);
  }
  if (self_c0 && self_c1) out.client_connect_cpu_pct = cpu_percent(*self_c0, *self_c1);
  // Publishers start after this: they read subs_on_topic without a lock. A handshake still in
  // flight past the timeout may yet set its flag; it is then counted as a connect error only.
  // Only the subscribers that read at full speed: the window and `delivered` count only them.
  for (std::size_t i = 0; i < o.subscribers; ++i)
    if (sh.subscribed[i] && !sh.slow[i]) ++sh.subs_on_topic[sh.topic_of[i]];
  if (!o.server_pids.empty()) {
    // Let the server settle (handshake buffers freed) before reading its RSS.
    sleep_s(0.5);
    if (auto s = sample_processes(o.server_pids)) out.server_rss_connected = s->rss_bytes;
    if (o.subscribers > 0 && out.server_rss_connected > out.server_rss_before)
      out.server_rss_per_conn =
          static_cast<double>(out.server_rss_connected - out.server_rss_before) /
          static_cast<double>(std::max<std::size_t>(1, out.connected));
  }

  // Phase 2: idle.
  if (o.idle_s > 0) {
    auto a = sample_processes(o.server_pids);
    sleep_s(o.idle_s);
    auto b = sample_processes(o.server_pids);
    if (a && b) out.server_idle_cpu_pct = cpu_percent(*a, *b);
  }

  // Phase 3: publish for the duration, then drain.
  if (o.publishers > 0 && o.duration_s > 0) {
    for (std::size_t p = 0; p < o.publishers; ++p)
      for (std::size_t k = 0; k < std::max<std::size_t>(1, o.inflight); ++k) {
        auto& w = *workers[p % o.threads];
        const auto id = stream_id(p, k, o.inflight);
        if (o.kind == server_kind::herald)
          net::co_spawn(w.ioc, herald_publisher(sh, w, id), net::detached);
        else
          net::co_spawn(w.ioc, nats_publisher(sh, id), net::detached);
      }
    wait_until([&] { return sh.pub_ready.load() >= streams; }, 10);
    auto srv_a = sample_processes(o.server_pids);
    auto self_a = sample_process(0);
    const std::uint64_t d0 = sh.delivered.load();
    sh.start_ns.store(now_ns());
    sh.go.store(true);
    sleep_s(o.duration_s);
    const std::uint64_t d1 = sh.delivered.load();
    auto srv_b = sample_processes(o.server_pids);
    auto self_b = sample_process(0);
    const std::int64_t p1 = now_ns();
    sh.stop_publishing.store(true);
    out.publish_s = static_cast<double>(p1 - sh.start_ns.load()) / 1e9;
    out.window_deliveries = d1 - d0;
    out.deliveries_per_s = static_cast<double>(d1 - d0) / out.publish_s;
    if (srv_a && srv_b) out.server_cpu_pct = cpu_percent(*srv_a, *srv_b);
    if (self_a && self_b) out.client_cpu_pct = cpu_percent(*self_a, *self_b);
    wait_until([&] { return sh.pubs_done.load() >= streams; }, 30);
    out.published = sh.published.load();
    out.publish_errors = sh.publish_errors.load();
    out.publish_rate = static_cast<double>(out.published) / out.publish_s;
    // Expected: what the publishers had accepted, times the subscribers of each topic that
    // connected (a failed connection is reported as a connect error, not as loss).
    const std::uint64_t expected = expected_deliveries(sh.accepted, sh.subs_on_topic);
    wait_until([&] { return sh.delivered.load() >= expected; }, o.drain_s);
  }

  if (!o.server_pids.empty()) {
    if (auto s = sample_processes(o.server_pids)) {
      out.server_rss_end = s->rss_bytes;
      out.server_rss_peak = s->hwm_bytes;
    }
  }
  sh.stopping.store(true);
  for (auto& g : guards) g.reset();
  for (auto& w : workers) w->ioc.stop();
  for (auto& w : workers) w->thread.join();

  histogram lat, conn, slow_lat, pub;
  for (auto& w : workers) {
    lat.merge(w->latency);
    conn.merge(w->connect_ms);
    slow_lat.merge(w->slow_latency);
    pub.merge(w->publish_ns);
  }
  workers.clear();  // destroys the pending coroutines (and their sockets) before `sh`

  out.delivered = sh.delivered.load();
  out.disconnects = sh.disconnects.load();
  out.last_close_code = sh.last_close.load();
  out.first_error = sh.first_error;
  for (std::size_t i = 0; i < o.subscribers; ++i) {
    const auto& tr = sh.trackers[i];
    const std::size_t topic = sh.topic_of[i];
    std::vector<std::uint64_t> acc(streams);
    for (std::size_t p = 0; p < streams; ++p) acc[p] = sh.accepted[p][topic];
    if (sh.slow[i]) {  // may be cut for reading slowly: counted apart, never as loss
      ++out.slow_subscribers;
      for (auto a : acc) out.slow_expected += a;
      continue;
    }
    // A subscriber that never subscribed cannot lose anything: it is a connect error.
    if (sh.subscribed[i]) {
      std::uint64_t exp_i = 0;
      for (auto a : acc) exp_i += a;
      out.expected += exp_i;
      const std::uint64_t missing = tr.lost(acc), skipped = std::min(missing, tr.skipped());
      out.lost += skipped;
      out.undelivered += missing - skipped;
    }
    out.duplicates += tr.duplicates();
    out.reordered += tr.reordered();
    out.seq_gaps += tr.seq_gaps();
    out.seq_backwards += tr.seq_backwards();
  }
  out.lat_p50_us = static_cast<double>(lat.percentile(0.50)) / 1e3;
  out.lat_p90_us = static_cast<double>(lat.percentile(0.90)) / 1e3;
  out.lat_p99_us = static_cast<double>(lat.percentile(0.99)) / 1e3;
  out.lat_p999_us = static_cast<double>(lat.percentile(0.999)) / 1e3;
  out.lat_max_us = static_cast<double>(lat.max()) / 1e3;
  out.lat_mean_us = lat.mean() / 1e3;
  out.connect_p50_ms = static_cast<double>(conn.percentile(0.5)) / 1e3;
  out.connect_p99_ms = static_cast<double>(conn.percentile(0.99)) / 1e3;
  out.client_bound = out.client_cpu_pct >= 90.0 * out.client_cpus;
  out.pub_requests = pub.count();
  out.pub_p50_us = static_cast<double>(pub.percentile(0.50)) / 1e3;
  out.pub_p99_us = static_cast<double>(pub.percentile(0.99)) / 1e3;
  out.pub_max_us = static_cast<double>(pub.max()) / 1e3;
  out.slow_delivered = sh.slow_delivered.load();
  out.slow_disconnects = sh.slow_disconnects.load();
  out.slow_last_close_code = sh.slow_last_close.load();
  out.slow_lat_p99_us = static_cast<double>(slow_lat.percentile(0.99)) / 1e3;
  return out;
}

// --- the resume storm's orchestration -------------------------------------------------------

namespace {

// Publishes `per_topic` events on every topic through POST /v1/events (100 a request), stamped
// as publisher `id`. Returns the events accepted.
std::uint64_t publish_each_topic(const load_options& o, std::uint32_t id, std::size_t per_topic,
                                 std::vector<std::uint64_t>& counters) {
  const std::string base = "http://" + o.servers.at(0).host + ":" + o.servers.at(0).port;
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + o.pub_key},
                                                {"Content-Type", "application/json"}};
  std::uint64_t accepted = 0;
  std::string body;
  std::size_t in_body = 0;
  auto flush = [&] {
    if (in_body == 0) return;
    body += ']';
    auto r = client::http_call(base, "POST", "/v1/events", body, auth);
    if (r.status != 201)
      throw std::runtime_error("storm publish: HTTP " + std::to_string(r.status) + " " +
                               r.body.substr(0, 200));
    accepted += in_body;
    in_body = 0;
  };
  for (std::size_t k = 0; k < per_topic; ++k)
    for (std::size_t t = 0; t < o.topics; ++t) {
      body += in_body == 0 ? "[" : ",";
      body += R"({"topic":")" + topic_name(server_kind::herald, t) + R"(","type":"bench","data":)" +
              make_payload(stamp{id, counters[t]++, now_ns()}, o.payload_bytes) + "}";
      if (++in_body == 100) {
        flush();
        body.clear();
      }
    }
  flush();
  return accepted;
}

}  // namespace

load_result run_resume_storm(const load_options& o) {
  if (o.kind != server_kind::herald) throw std::runtime_error("the resume storm is Herald-only");
  if (o.servers.size() != 1)
    throw std::runtime_error("the resume storm drives one server: give one --url");
  if (o.threads == 0 || o.topics == 0)
    throw std::runtime_error("threads and topics must be at least 1");
  shared_state sh(o);
  sh.servers = resolve_servers(o);
  const std::size_t n = o.subscribers;
  sh.trackers.resize(n);
  sh.slow.assign(n, 0);
  sh.subscribed.assign(n, 0);
  sh.topic_of.resize(n);
  for (std::size_t i = 0; i < n; ++i) sh.topic_of[i] = i % o.topics;
  sh.tokens.resize(n);
  sh.last_seq.assign(n, 0);
  sh.sessions.resize(n);
  sh.mode = shared_state::phase::storm_subscribe;

  std::vector<std::unique_ptr<worker>> workers;
  std::vector<guard_t> guards;
  start_workers(o, workers, guards);
  load_result out;
  out.client_cpus = usable_cpus();
  auto finish = [&] {
    sh.stopping.store(true);
    for (auto& g : guards) g.reset();
    for (auto& w : workers) w->ioc.stop();
    for (auto& w : workers) w->thread.join();
    workers.clear();
  };

  // 1. Subscribe every session; one event per topic, every session gets it.
  const std::int64_t c0 = now_ns();
  for (auto& w : workers) {
    worker* wp = w.get();
    net::post(w->ioc, [&sh, wp] { launch_more(sh, *wp); });
  }
  wait_until([&] { return sh.ready.load() + sh.failed.load() >= n; }, o.connect_timeout_s);
  out.connected = sh.ready.load();
  out.connect_errors = n - out.connected;
  out.connect_s = static_cast<double>(now_ns() - c0) / 1e9;
  out.connect_rate = out.connect_s > 0 ? static_cast<double>(out.connected) / out.connect_s : 0;
  std::vector<std::uint64_t> counters(o.topics, 1);
  std::size_t subscribed = 0;
  for (std::size_t i = 0; i < n; ++i) subscribed += sh.subscribed[i] ? 1 : 0;
  try {
    out.published = publish_each_topic(o, 0, 1, counters);
  } catch (...) {
    finish();
    throw;
  }
  wait_until([&] { return sh.delivered.load() >= subscribed; }, 30);
  out.delivered = sh.delivered.load();
  out.expected = subscribed;

  // 2. Tell the driver to drain the server; wait for every socket's close and the restart.
  const std::int64_t r0 = now_ns();
  if (!o.storm_ready_file.empty()) std::ofstream(o.storm_ready_file) << "ready\n";
  wait_until([&] { return sh.drain_closes.load() >= subscribed; }, o.storm_restart_timeout_s);
  out.storm_drain_closes = sh.drain_closes.load();
  out.storm_drain_close_code = sh.drain_close_code.load();
  const std::string base = "http://" + o.servers.at(0).host + ":" + o.servers.at(0).port;
  const bool back = wait_until(
      [&] {
        try {
          return client::http_call(base, "GET", "/readyz", "").status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      o.storm_restart_timeout_s);
  out.storm_restart_s = static_cast<double>(now_ns() - r0) / 1e9;
  if (!back) {
    finish();
    throw std::runtime_error("resume storm: the server did not come back on " + base);
  }
  // 3. Events the detached sessions miss, then every session resumes at once.
  out.published += publish_each_topic(o, 1, o.storm_missed, counters);
  sh.storm_missed = o.storm_missed;
  for (std::size_t i = 0; i < n; ++i) sh.sessions[i].before_drain(sh.last_seq[i]);
  sh.mode = shared_state::phase::storm_resume;
  sh.ready.store(0);
  sh.failed.store(0);
  std::vector<std::size_t> resuming;
  for (std::size_t i = 0; i < n; ++i)
    if (sh.subscribed[i]) resuming.push_back(i);
  sh.storm_t0.store(now_ns());
  for (std::size_t t = 0; t < workers.size(); ++t) {
    worker* wp = workers[t].get();
    net::post(wp->ioc, [&sh, wp, &resuming, t, k = workers.size()] {
      wp->subs.clear();
      for (std::size_t j = t; j < resuming.size(); j += k) wp->subs.push_back(resuming[j]);
      wp->next = 0;
      wp->in_flight = 0;
      wp->limit = wp->subs.size();  // at once
      launch_more(sh, *wp);
    });
  }
  wait_until([&] { return sh.storm_done.load() >= resuming.size(); }, o.connect_timeout_s);
  sleep_s(0.5);  // a late duplicate would still be counted
  finish();

  std::vector<resume_session> tally;
  std::vector<std::uint64_t> expected;
  for (auto i : resuming) {
    tally.push_back(sh.sessions[i]);
    expected.push_back(o.storm_missed);
  }
  const storm_summary ss = summarize_storm(tally, expected);
  out.storm_sessions = ss.sessions;
  out.storm_welcomed = ss.welcomed;
  out.storm_recovered = ss.recovered;
  out.storm_caught_up = ss.caught_up;
  out.storm_errors = ss.errors;
  out.storm_gaps = ss.gaps;
  out.storm_duplicates = ss.duplicates;
  out.storm_replayed = ss.replayed;
  out.storm_expected = static_cast<std::uint64_t>(ss.sessions) * o.storm_missed;
  out.storm_last_recovered_s = ss.last_recovered_s;
  out.storm_last_caught_up_s = ss.last_caught_up_s;
  out.storm_welcome_p50_ms = ss.welcome_p50_ms;
  out.storm_welcome_p99_ms = ss.welcome_p99_ms;
  for (const auto& [why, count] : ss.recovery_errors)
    out.storm_recovery_errors +=
        (out.storm_recovery_errors.empty() ? "" : ",") + why + ":" + std::to_string(count);
  out.first_error = !ss.first_error.empty() ? ss.first_error : sh.first_error;
  return out;
}

}  // namespace herald::bench
