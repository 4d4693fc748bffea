// One WebSocket connection: Beast stream, bounded send queue, the single writer loop, the
// closing handshake with its deadline. Lives on one shard and every member runs on that shard's
// thread. Kept alive by shared_ptrs in its pending operations (the handshake coroutine, then
// the one pending read's completion handler, the write loop while it runs); timers, offloaded
// work and after_written callbacks hold weak_ptrs and do nothing once it is gone or finished.
// The shard's socket set, timer heap and active list hold plain pointers, checked against
// serial() (an address may be reused). The dialect's ws_handler is owned here.
#pragma once

#include <deque>

#include "core/lazy_deque.h"
#include "core/metrics.h"
#include "transport/batching_stream.h"
#include "transport/server_impl.h"

namespace herald {

class ws_session final : public ws_connection, public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(server::impl& srv, shard_ctx& sh, conn_stream stream, conn_slot slot,
             const ws_mount& mount);
  ~ws_session() override;

  // Completes the upgrade, creates the handler and reads until the socket closes.
  void start(http::request<http::string_body> req, http_request parsed);
  // The shard's timer heap (server.cc): this socket's time has come; runs the handler's and
  // the closing handshake's timers and asks for the next visit.
  void tick(std::int64_t now_ms);
  std::uint64_t serial() const noexcept { return serial_; }
  std::int64_t due() const noexcept { return due_ms_; }
  // On the shard's list of sockets that wrote lately: frees the send buffers once a tick
  // passed without writes, and then leaves the list (true).
  bool trim_if_idle();
  void drain();

  bool send(out_frame f) override;
  bool send(const frame_parts& parts) override;
  void close(int code, std::string reason, bool discard_queue) override;
  void hold(bool on) override;
  void ping() override;
  void after_written(std::function<void()> done) override;
  std::size_t queued_bytes() const override;
  bool closing() const override { return closing_ || finished_; }
  std::size_t shard() const override { return sh_.index; }
  const std::string& remote() const override { return remote_; }
  void offload(std::function<void()> work, std::function<void()> then) override;
  void after(std::int64_t delay_ms, std::function<void()> fn) override;

 private:
  // The upgrade request, held on the heap and released as soon as the handler is made (the
  // handler keeps what it needs): a connection does not carry its headers for life.
  struct upgrade {
    http::request<http::string_body> req;
    http_request parsed;
  };
  // The handshake (a coroutine), then the reads (completion handlers, see read_next).
  net::awaitable<void> read_loop(std::unique_ptr<upgrade> up);
  void read_next(std::size_t limit);
  void on_read(beast::error_code ec);
  net::awaitable<void> write_loop();
  // Frames a message straight into the socket's batch when nothing is queued ahead of it.
  bool send_direct(std::string_view head, std::string_view body, std::string_view tail);
  void enqueue(out_frame f);
  void pump();
  void drop_queue();
  void finish(int code);
  // The queue's bound: the small unauthenticated one until the handler admitted a principal.
  std::size_t bound() const;
  // `n` more bytes transport queues by itself (a pong, a ping): past the bound the socket
  // closes as a slow consumer; a socket already closing and still over it is dropped. False
  // when the frame must not be queued.
  bool control_fits(std::size_t n);
  // The queue passed its bound through a control frame: the handler's slow-consumer close, or
  // (already closing) the TCP connection dropped. Runs as a task of its own, never inside a
  // Beast operation.
  void on_overflow();
  // Asks the shard's tick to visit at `due` (an earlier visit already asked for stands: it
  // asks again for what is still pending then).
  void schedule(std::int64_t due);
  void mark_active() {
    if (active_) return;
    active_ = true;
    sh_.active.emplace_back(this, serial_);
  }

  server::impl& srv_;
  shard_ctx& sh_;
  conn_slot slot_;
  const ws_mount& mount_;
  // The closing handshake's bound: the mount's own (a dialect's close grace), else the server's.
  std::int64_t close_timeout_ms() const noexcept;
  websocket::stream<batching_stream> ws_;
  beast::flat_buffer buf_;
  std::string remote_;
  std::unique_ptr<ws_handler> handler_;

  lazy_deque<out_frame> queue_;
  std::size_t queued_ = 0;
  std::uint64_t queued_total_ = 0, written_total_ = 0;
  lazy_deque<std::pair<std::uint64_t, std::function<void()>>> after_written_;
  bool writing_ = false, holding_ = false, ping_pending_ = false;
  bool closing_ = false, discard_ = false, close_sent_ = false, finished_ = false;
  int close_code_ = 0;
  std::string close_reason_;
  std::int64_t close_started_ms_ = 0;
  const std::uint64_t serial_;
  std::int64_t due_ms_ = 0;       // the visit asked of the shard's timer heap (0: none)
  bool active_ = false;           // on sh_.active
  bool overflow_posted_ = false;  // an on_overflow() task is queued
};

}  // namespace herald
