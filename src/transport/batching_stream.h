// The next layer under every server WebSocket: a TCP socket whose writes are gathered in a
// buffer and sent with one write per flush, so the shard writes every queued frame of a socket
// with one system call instead of one per message. Beast writes through it unchanged —
// its frames, its automatic pongs and its close frames all land in the same ordered buffer, so
// nothing can interleave inside a frame. Reads go straight to the socket.
// A template on the layer below only so that tests can put Beast's in-memory test stream (with
// its failure injection) under it; the server uses batching_stream (a conn_stream: TCP, or TLS
// over TCP).
// Owned by its ws_session, on one shard's thread; not thread-safe.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/lazy_deque.h"
#include "core/metrics.h"
#include "transport/net.h"
#include "transport/tls_stream.h"

namespace herald {

// Hands `b` to the kernel now if it takes it without blocking; returns the bytes taken (0 on
// EAGAIN, or for a layer that cannot: TLS, test streams). Sets ec on a failed socket.
template <class NextLayer>
std::size_t send_now(NextLayer& /*layer*/, net::const_buffer /*b*/, beast::error_code& /*ec*/) {
  return 0;
}
std::size_t send_now(conn_stream& s, net::const_buffer b, beast::error_code& ec);

// The flushes of one shard's sockets, run as background work: each pass writes a few sockets
// and then yields (re-posts itself) so that fan-outs already queued on the shard run first and
// append to sockets still waiting — under load, later events join earlier ones in the same
// write instead of each costing a system call; an idle shard writes at once. Once a socket had
// `no_yield_bytes` to write the shard is behind: the pass goes on without yielding, so writes
// keep pace and backlogs stay far below the send-queue bound (a healthy client is never cut
// as a slow consumer because the shard put its writes last). One per thread (a shard is one
// thread); not thread-safe.
class write_scheduler {
 public:
  static write_scheduler& local();
  // A stream's flush: starts its write, returns the bytes it had to write (since its last
  // flush, those its appends already sent directly included).
  using flush_fn = std::size_t (*)(void* stream);
  // Schedules flush(s) (whose liveness is `alive`) on `ex`, the calling thread's shard.
  void add(void* s, flush_fn flush, std::shared_ptr<bool> alive, const net::any_io_executor& ex);
  // Sockets written per pass before yielding to other work.
  static constexpr std::size_t per_pass = 8;
  static constexpr std::size_t no_yield_bytes = 64 * 1024;

 private:
  void run();
  struct entry {
    void* stream;
    flush_fn flush;
    std::shared_ptr<bool> alive;
  };
  std::vector<entry> dirty_;
  std::size_t next_ = 0;
  bool posted_ = false;
  std::optional<net::any_io_executor> ex_;
};

template <class NextLayer>
class basic_batching_stream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;
  using lowest_layer_type = beast::lowest_layer_type<NextLayer>;

  explicit basic_batching_stream(NextLayer s) : sock_(std::move(s)) {}

  executor_type get_executor() noexcept { return sock_.get_executor(); }
  NextLayer& next_layer() noexcept { return sock_; }
  const NextLayer& next_layer() const noexcept { return sock_; }
  lowest_layer_type& lowest_layer() noexcept { return beast::get_lowest_layer(sock_); }

  // While batching, writes only gather; flush() sends them. Outside it, every write schedules
  // a flush of its own (Beast's pongs and close frames when no batch is running).
  void batching(bool on) { batching_ = on; }
  // Bytes gathered or being written.
  std::size_t pending_bytes() const noexcept { return gather_.size() + in_flight_; }
  // Bytes gathered and not yet handed to a write.
  std::size_t gathered_bytes() const noexcept { return gather_.size(); }
  bool failed() const noexcept { return static_cast<bool>(error_); }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& b, ReadHandler&& h) {
    return sock_.async_read_some(b, std::forward<ReadHandler>(h));
  }

  // Completes at once (posted) with every byte accepted, unless the stream already failed.
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& b, WriteHandler&& h) {
    return net::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& bufs) {
          std::size_t n = 0;
          if (!error_) {
            for (auto it = net::buffer_sequence_begin(bufs); it != net::buffer_sequence_end(bufs);
                 ++it) {
              const net::const_buffer cb(*it);
              gather_.append(static_cast<const char*>(cb.data()), cb.size());
              n += cb.size();
            }
            unaccounted_ += n;
            if (!batching_) schedule_flush();
          }
          auto ex = net::get_associated_executor(handler, sock_.get_executor());
          net::post(ex,
                    [h = std::move(handler), ec = error_, n]() mutable { std::move(h)(ec, n); });
        },
        h, b);
  }

  // Appends one complete unmasked server text message (RFC 6455 §5.2), framed here. Only for
  // connections without permessage-deflate; Beast frames the others. Safe beside Beast's own
  // writes: each of them is appended whole, so frames never interleave.
  void append_text_message(std::string_view a, std::string_view b, std::string_view c) {
    if (error_) return;
    const std::size_t n = a.size() + b.size() + c.size();
    char h[10];
    std::size_t hn = 0;
    h[hn++] = static_cast<char>(0x81);  // FIN + text
    if (n < 126) {
      h[hn++] = static_cast<char>(n);
    } else if (n <= 0xffff) {
      h[hn++] = 126;
      h[hn++] = static_cast<char>((n >> 8) & 0xff);
      h[hn++] = static_cast<char>(n & 0xff);
    } else {
      h[hn++] = 127;
      for (int shift = 56; shift >= 0; shift -= 8)
        h[hn++] = static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff);
    }
    gather_.reserve(gather_.size() + hn + n);
    gather_.append(h, hn);
    gather_.append(a);
    gather_.append(b);
    gather_.append(c);
    unaccounted_ += hn + n;
    if (gather_.size() >= direct_send_bytes && !writing_ && !kernel_full_) send_gathered_now();
  }

  // Gathered bytes past which an append hands them to the kernel at once (when no write is in
  // flight) instead of waiting for the flush: a fan-out of thousands of events per socket
  // then reuses one small buffer per socket, where gathering it all first grew every socket's
  // buffer to the whole backlog (fresh pages: a page fault per 4 KiB, hundreds of MiB).
  static constexpr std::size_t direct_send_bytes = 16 * 1024;

  // Appends an empty RFC 6455 ping control frame (server frames are unmasked). Messages are
  // never fragmented here, so a control frame between two of them is always well placed.
  void append_ping() {
    if (error_) return;
    gather_.append("\x89\x00", 2);
    unaccounted_ += 2;
  }

  // Frees the send buffers of a socket that wrote nothing since the last call (once a tick): an
  // idle connection holds none, a busy one keeps their capacity. True when it was idle.
  bool trim_if_idle() {
    const bool idle = written_ == written_at_trim_ && !writing_ && gather_.empty();
    if (idle) {
      std::string().swap(gather_);
      std::string().swap(sending_);
    }
    written_at_trim_ = written_;
    return idle;
  }

  // Counts one message sent by the fast path in the frames-sent metric (published per write).
  void note_frame() noexcept { ++unpublished_frames_; }

  // Sends everything gathered so far; completes when it is all written (or the socket failed).
  template <class Handler>
  auto async_flush(Handler&& h) {
    return net::async_initiate<Handler, void(beast::error_code)>(
        [this](auto handler) {
          waiters_.emplace_back(std::make_unique<waiter_impl<decltype(handler)>>(
              std::move(handler), sock_.get_executor()));
          waiter_marks_.push_back(written_ + in_flight_ + gather_.size());
          start_write();
          complete_waiters();
        },
        h);
  }

 private:
  struct waiter {
    virtual ~waiter() = default;
    virtual void complete(beast::error_code ec) = 0;
  };
  template <class H>
  struct waiter_impl final : waiter {
    waiter_impl(H h, executor_type ex) : handler(std::move(h)), fallback(ex) {}
    void complete(beast::error_code ec) override {
      auto ex = net::get_associated_executor(handler, fallback);
      net::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
    }
    H handler;
    executor_type fallback;
  };

  // Counts gathered and unwritten bytes in the process-wide queued-bytes gauge. Appends only
  // add to unaccounted_, published here once per write: a shared atomic per message would be
  // contended across shards.
  void account(std::int64_t delta) {
    accounted_ += delta;
    global_metrics().queued_bytes.fetch_add(delta, std::memory_order_relaxed);
  }

 public:
  // Sends what is gathered once the current handler returns, through the shard's
  // write_scheduler (at most one flush pending).
  void schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    write_scheduler::local().add(this, &flush_thunk, alive_, sock_.get_executor());
  }

 private:
  // The write_scheduler's flush: returns the bytes it had to write.
  static std::size_t flush_thunk(void* stream) {
    return static_cast<basic_batching_stream*>(stream)->scheduled_flush();
  }
  std::size_t scheduled_flush() {
    flush_scheduled_ = false;
    // What this round had to write: gathered, and what appends sent directly meanwhile.
    const std::size_t n = gather_.size() + std::exchange(sent_directly_, 0);
    start_write();
    return n;
  }

  // What the kernel takes now leaves the buffer; the rest waits for the scheduled flush (an
  // asynchronous write, which also waits for the socket to drain).
  void send_gathered_now() {
    beast::error_code ec;
    const std::size_t n = send_now(sock_, net::buffer(gather_), ec);
    if (ec) {
      error_ = ec;
      return;
    }
    // A socket that did not take everything is full: no more direct sends (one failing system
    // call per message) until an asynchronous write has drained it.
    if (n < gather_.size()) kernel_full_ = true;
    if (n == 0) return;
    settle_queued();
    note_written(n);
    sent_directly_ += n;
    if (n == gather_.size())
      gather_.clear();
    else
      gather_.erase(0, n);
    if (!waiters_.empty()) complete_waiters();
  }

  // Bytes appended since the last write count as queued from now on.
  void settle_queued() {
    if (unaccounted_ != 0) {
      account(static_cast<std::int64_t>(unaccounted_));
      unaccounted_ = 0;
    }
  }
  // `n` bytes reached the kernel: no longer queued.
  void note_written(std::size_t n) {
    written_ += n;
    account(-static_cast<std::int64_t>(n));
  }

  void start_write() {
    settle_queued();
    if (unpublished_frames_ != 0) {
      global_metrics().frames_sent.fetch_add(unpublished_frames_, std::memory_order_relaxed);
      unpublished_frames_ = 0;
    }
    if (writing_ || gather_.empty() || error_) return;
    writing_ = true;
    sending_.swap(gather_);
    gather_.clear();
    in_flight_ = sending_.size();
    net::async_write(sock_, net::buffer(sending_),
                     [this, alive = alive_](beast::error_code ec, std::size_t n) {
                       if (!*alive) return;
                       writing_ = false;
                       kernel_full_ = false;
                       in_flight_ = 0;
                       note_written(n);
                       if (ec) error_ = ec;
                       sending_.clear();
                       // A big buffer is not kept; nor is a small write's: a socket that writes
                       // little (a reply, a ping, one event) holds no buffer between writes,
                       // one that streams keeps its capacity.
                       if (sending_.capacity() > (1u << 20) || (n < 1024 && gather_.empty()))
                         std::string().swap(sending_);
                       complete_waiters();
                       start_write();
                     });
  }

  void complete_waiters() {
    while (!waiters_.empty() && (error_ || waiter_marks_.front() <= written_)) {
      auto w = std::move(waiters_.front());
      waiters_.pop_front();
      waiter_marks_.pop_front();
      w->complete(error_);
    }
  }

  NextLayer sock_;
  std::string gather_, sending_;
  std::size_t in_flight_ = 0;
  std::uint64_t written_ = 0, written_at_trim_ = 0;
  bool writing_ = false, batching_ = false, flush_scheduled_ = false, kernel_full_ = false;
  beast::error_code error_;
  lazy_deque<std::unique_ptr<waiter>> waiters_;
  lazy_deque<std::uint64_t> waiter_marks_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::int64_t accounted_ = 0;
  std::size_t unaccounted_ = 0, unpublished_frames_ = 0, sent_directly_ = 0;

 public:
  ~basic_batching_stream() {
    *alive_ = false;
    global_metrics().queued_bytes.fetch_sub(accounted_, std::memory_order_relaxed);
  }
  basic_batching_stream(basic_batching_stream&&) = delete;
  basic_batching_stream& operator=(basic_batching_stream&&) = delete;
};

using batching_stream = basic_batching_stream<conn_stream>;

// Beast's websocket teardown for this layer: the next layer's (found as Beast finds it: its
// overloads for sockets, or the layer's own by argument-dependent lookup).
template <class NextLayer>
void teardown(beast::role_type role, basic_batching_stream<NextLayer>& s, beast::error_code& ec) {
  using websocket::teardown;
  teardown(role, s.next_layer(), ec);
}

template <class NextLayer, class TeardownHandler>
void async_teardown(beast::role_type role, basic_batching_stream<NextLayer>& s,
                    TeardownHandler&& h) {
  using websocket::async_teardown;
  async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(h));
}

}  // namespace herald
