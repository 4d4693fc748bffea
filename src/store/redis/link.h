// The socket machinery shared by `connection` and `subscriber`: connect with a timeout, the
// handshake (CLIENT SETNAME, SELECT), one writer draining a bounded outgoing buffer, one reader
// feeding resp_reader and matching replies to commands in order, per-command timeouts, and
// reconnection with exponential backoff. Private to store/redis/*.cc: it includes Asio.
// Owned by its io_thread: every member runs there (the public wrappers post to it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/errc.h"
#include "store/redis/io_thread.h"
#include "store/redis/options.h"
#include "store/redis/reply.h"
#include "store/redis/resp_reader.h"

namespace herald::redis {

struct io_thread::impl {
  boost::asio::io_context ctx{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ctx.get_executor()};
  std::thread thread;
};

using reply_handler = std::function<void(result<reply>)>;

class link : public std::enable_shared_from_this<link> {
 public:
  using clock = std::chrono::steady_clock;
  link(io_thread& io, options opts);

  // Set by the owner before start(): replies no command waits for (pub/sub pushes); up once
  // the handshake is done, down on every drop and on every failed attempt, with the reason.
  std::function<void(reply&&)> on_push;
  std::function<void(bool up, const std::string& why)> on_state;
  // Raw commands sent after the handshake on every connection (the subscriber's SUBSCRIBEs).
  std::function<std::string()> after_handshake;

  void start();
  // Completes every pending command with "closed" (inline) and stops reconnecting.
  void close();
  // Queues a command awaiting one reply. Fails at once (inline) when not connected, or past a
  // bound. `timeout_ms` 0: options.command_timeout_ms.
  void send(const std::string& wire, std::int64_t timeout_ms, reply_handler h);
  // Queues bytes whose replies go to on_push (subscriber mode). False when not connected.
  bool send_raw(const std::string& wire);
  bool up() const noexcept { return state_ == state::ready; }
  const std::string& last_error() const noexcept { return last_error_; }
  std::uint64_t connects() const noexcept { return connects_; }
  const options& opts() const noexcept { return opts_; }

 private:
  enum class state : std::uint8_t { idle, connecting, handshake, ready, closed };
  struct entry {
    std::uint64_t seq;
    std::int64_t timeout_ms;
    clock::time_point queued;
    clock::time_point deadline;
    reply_handler handler;  // empty once completed (timed out): its reply is skipped
  };

  void connect();
  void on_connected();
  void start_read();
  void flush();
  void queue(const std::string& wire, std::int64_t timeout_ms, reply_handler h);
  void dispatch(reply&& r);
  void arm_timeouts();
  void on_timeouts();
  void arm_ping();
  // Closes the socket, fails what is pending with `why`, and schedules the reconnection.
  void drop(const std::string& why);
  void fail_all(errc code, const std::string& why);
  void ready();
  void retry();

  io_thread& io_;
  options opts_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_, retry_timer_, timeout_timer_, ping_timer_;
  state state_ = state::idle;
  std::uint64_t generation_ = 0;  // bumped on each drop: stale completions see a new value
  std::uint64_t connects_ = 0;
  std::int64_t backoff_ms_ = 0;
  std::string last_error_;
  std::unique_ptr<resp_reader> reader_;
  std::vector<char> read_buf_;
  std::string out_, writing_;  // queued bytes; bytes of the write in flight
  bool write_busy_ = false;
  std::deque<entry> pending_;
  std::uint64_t next_seq_ = 0;
  std::set<std::pair<clock::time_point, std::uint64_t>> deadlines_;
  clock::time_point timer_at_ = clock::time_point::max();
  clock::time_point last_read_{};
  clock::time_point ping_sent_{};
  std::size_t handshake_left_ = 0;
};

// What a public wrapper shows other threads of its link: up or down, and why. Thread-safe.
struct link_status {
  void set(bool up, const std::string& why);  // from the link's on_state
  // Blocks until up, or fails after timeout_ms naming `what` and the last error.
  status wait(std::int64_t timeout_ms, const char* what);
  bool up() const;
  std::uint64_t connects() const;
  std::int64_t confirmed() const;  // subscriber: Redis's last subscription count
  void set_confirmed(std::int64_t n);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = false;
  std::uint64_t connects_ = 0;
  std::int64_t confirmed_ = 0;
  std::string last_error_;
};

// Closes `l` on its thread and waits (inline when called there): what the public wrappers'
// destructors do, so no handler runs after they return.
void close_link(io_thread& io, const std::shared_ptr<link>& l);

}  // namespace herald::redis
