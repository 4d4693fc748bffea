#include "transport/ws_session.h"

#include <algorithm>
#include <chrono>
#include <functional>

#include "core/clock.h"

namespace herald {

namespace {
constexpr std::size_t first_read = 64;
}

ws_session::ws_session(server::impl& srv, shard_ctx& sh, conn_stream stream, conn_slot slot,
                       const ws_mount& mount)
    : srv_(srv),
      sh_(sh),
      slot_(std::move(slot)),
      mount_(mount),
      ws_(std::move(stream)),
      serial_(sh.next_serial++) {
  beast::error_code ec;
  const auto ep = beast::get_lowest_layer(ws_).remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  auto& m = global_metrics();
  m.connections_open.fetch_add(1, std::memory_order_relaxed);
  m.connections_total.fetch_add(1, std::memory_order_relaxed);
}

ws_session::~ws_session() {
  global_metrics().connections_open.fetch_sub(1, std::memory_order_relaxed);
  global_metrics().queued_bytes.fetch_sub(static_cast<std::int64_t>(queued_),
                                          std::memory_order_relaxed);
}

void ws_session::start(http::request<http::string_body> req, http_request parsed) {
  net::co_spawn(sh_.ctx,
                read_loop(std::make_unique<upgrade>(upgrade{std::move(req), std::move(parsed)})),
                [self = shared_from_this()](const std::exception_ptr&) {});
}

net::awaitable<void> ws_session::read_loop(std::unique_ptr<upgrade> up) {
  auto self = shared_from_this();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::seconds(30);
  t.idle_timeout = websocket::stream_base::none();  // our own tick enforces the dialect's timers
  t.keep_alive_pings = false;
  ws_.set_option(t);
  // A bound SIGHUP may change is checked in on_read at each step of a message (Beast's would
  // be fixed when a read is armed: an idle socket's pending read would keep the old one).
  ws_.read_message_max(mount_.current_max_message_bytes ? 0 : mount_.max_message_bytes);
  if (mount_.compress) {
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    pmd.msg_size_threshold = 0;  // compress every message when the client offered it
    ws_.set_option(pmd);
  }
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "herald"); }));
  ws_.auto_fragment(false);
  auto [ec] = co_await ws_.async_accept(up->req, use_nothrow);
  if (ec) {
    finish(1006);
    co_return;
  }
  ws_.control_callback([this](websocket::frame_type kind, beast::string_view payload) {
    if (!handler_ || finished_) return;
    handler_->on_traffic();
    // Beast answers a ping with a pong of the same payload, written through our batching
    // layer: a client that pings and never reads would grow it without end. It counts.
    if (kind == websocket::frame_type::ping) (void)control_fits(2 + payload.size());
  });
  handler_ = mount_.factory(*this, up->parsed);
  up.reset();  // the handler kept what it needs of the upgrade
  sh_.sockets.insert(this);
  mark_active();  // the handshake's response left a send buffer behind
  handler_->on_open();
  schedule(now_ms() + 1000);
  // From here on the socket is read with plain completion handlers: this coroutine's frames
  // end, and an idle socket holds only its one pending read.
  read_next(first_read);
}

// A message in steps: the first read prepares only first_read bytes in buf_ (an idle socket's
// pending read holds that much, not Beast's 1.5 KB default; a subscriber's messages are pongs),
// longer messages continue in larger steps from what Beast already read into its own buffer.
// read_message_max still bounds the whole message.
void ws_session::read_next(std::size_t limit) {
  ws_.async_read_some(buf_, limit, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_read(ec);
  });
}

void ws_session::on_read(beast::error_code rec) {
  if (rec) {
    int code = 1006;
    if (rec == websocket::error::message_too_big)
      code = 1009;
    else if (close_sent_)
      code = close_code_;
    else if (rec == websocket::error::closed)
      code = ws_.reason().code;
    finish(code);
    return;
  }
  // Once our close frame is sent, Beast's close operation reads (and discards) until the peer's
  // close: a read of ours started beside it finds the stream mid-frame (debug builds assert
  // rd_remain > 0 in Beast's read_size_hint).
  if (finished_ || close_sent_) return;
  // The bound in force now, over the message so far (at most one step past it is buffered).
  if (mount_.current_max_message_bytes && buf_.size() > mount_.current_max_message_bytes())
    return close(1009, "message too big", true);
  if (!ws_.is_message_done()) return read_next(64 * 1024);
  handler_->on_traffic();
  const auto data = buf_.cdata();
  try {
    handler_->on_message(std::string_view(static_cast<const char*>(data.data()), data.size()),
                         ws_.got_binary());
  } catch (const std::exception&) {
    // A fault in a handler must not take the shard's thread down: this socket ends (1011).
    close(1011, "internal error", true);
  }
  buf_.consume(buf_.size());
  // Subscribers read rarely (pongs, a subscribe): hold no read buffer between messages.
  if (buf_.capacity() > first_read) buf_.shrink_to_fit();
  if (!finished_ && !close_sent_) read_next(first_read);
}

std::int64_t ws_session::close_timeout_ms() const noexcept {
  return mount_.close_timeout_ms > 0 ? mount_.close_timeout_ms : srv_.opts.limits.close_timeout_ms;
}

std::size_t ws_session::queued_bytes() const { return queued_ + ws_.next_layer().pending_bytes(); }

std::size_t ws_session::bound() const {
  if (handler_ && !handler_->admitted()) return srv_.opts.limits.unauth_send_queue_bytes;
  return srv_.opts.limits.send_queue_bytes;
}

bool ws_session::control_fits(std::size_t n) {
  if (finished_) return false;
  if (queued_bytes() + n <= bound()) return true;
  // This may run inside Beast's read operation (the control callback): closing or writing from
  // there breaks the stream's read state (Beast asserts rd_remain > 0 in debug builds). The
  // overflow is handled from a task of its own, once per overflow.
  if (!overflow_posted_) {
    overflow_posted_ = true;
    net::post(sh_.ctx, [self = shared_from_this()] { self->on_overflow(); });
  }
  return false;
}

void ws_session::on_overflow() {
  overflow_posted_ = false;
  if (finished_) return;
  if (!closing_) {
    handler_->on_send_overflow();
    if (!closing_ && !finished_) close(4010, "slow consumer", true);
    return;
  }
  // Closing, and the peer still does not read while it keeps sending: end it now rather than
  // at close_timeout.
  beast::error_code ec;
  beast::get_lowest_layer(ws_).close(ec);
  finish(close_code_);
}

bool ws_session::send(out_frame f) {
  if (closing_ || finished_) return false;
  const std::size_t n = f.size();
  if (queued_bytes() + n > bound()) return false;
  if (!send_direct(f.head, f.shared ? std::string_view(*f.shared) : std::string_view(), f.tail))
    enqueue(std::move(f));
  return true;
}

bool ws_session::send(const frame_parts& p) {
  if (closing_ || finished_) return false;
  if (queued_bytes() + p.size() > bound()) return false;
  if (!send_direct(p.head, p.body, p.tail)) enqueue(p.own(p, p.ctx));
  return true;
}

bool ws_session::send_direct(std::string_view head, std::string_view body, std::string_view tail) {
  if (mount_.compress || !queue_.empty() || holding_ || writing_) return false;
  // The fast path: frame it straight into the socket's batch; one write per socket leaves
  // once this handler (a whole fan-out batch) is done.
  batching_stream& out = ws_.next_layer();
  out.append_text_message(head, body, tail);
  out.note_frame();
  out.schedule_flush();
  mark_active();
  return true;
}

void ws_session::enqueue(out_frame f) {
  const std::size_t n = f.size();
  queued_ += n;
  queued_total_ += n;
  global_metrics().queued_bytes.fetch_add(static_cast<std::int64_t>(n), std::memory_order_relaxed);
  queue_.push_back(std::move(f));
  mark_active();
  pump();
}

void ws_session::pump() {
  if (writing_ || finished_) return;
  writing_ = true;
  net::co_spawn(sh_.ctx, write_loop(), [self = shared_from_this()](const std::exception_ptr&) {});
}

net::awaitable<void> ws_session::write_loop() {
  auto self = shared_from_this();
  batching_stream& out = ws_.next_layer();
  constexpr std::size_t max_pass_bytes = 256 * 1024;
  while (!finished_) {
    if (!queue_.empty() && !holding_ && !discard_) {
      // One pass: every queued message (up to max_pass_bytes) goes through Beast into the
      // batching layer, then one write sends them all.
      out.batching(true);
      std::size_t taken = 0, bytes = 0;
      bool failed = false;
      if (!mount_.compress) {
        // No permessage-deflate here: frame the messages ourselves, straight into the batch.
        while (taken < queue_.size() && bytes < max_pass_bytes) {
          const out_frame& f = queue_[taken];
          out.append_text_message(
              f.head, f.shared ? std::string_view(*f.shared) : std::string_view(), f.tail);
          bytes += f.size();
          ++taken;
        }
      }
      while (taken < queue_.size() && bytes < max_pass_bytes && !holding_ && !discard_) {
        const out_frame& f = queue_[taken];
        std::array<net::const_buffer, 3> bufs{
            net::buffer(f.head), f.shared ? net::buffer(*f.shared) : net::const_buffer{},
            net::buffer(f.tail)};
        ws_.text(true);
        auto [ec, n] = co_await ws_.async_write(bufs, use_nothrow);
        if (finished_) co_return;
        if (ec) {
          failed = true;
          break;
        }
        bytes += queue_[taken].size();
        ++taken;
      }
      out.batching(false);
      if (failed) break;
      auto [fec] = co_await out.async_flush(use_nothrow);
      if (finished_) co_return;
      if (fec) break;
      for (std::size_t i = 0; i < taken; ++i) {
        const std::size_t sz = queue_.front().size();
        queue_.pop_front();
        queued_ -= sz;
        written_total_ += sz;
      }
      global_metrics().queued_bytes.fetch_sub(static_cast<std::int64_t>(bytes),
                                              std::memory_order_relaxed);
      global_metrics().frames_sent.fetch_add(taken, std::memory_order_relaxed);
      while (!after_written_.empty() && after_written_.front().first <= written_total_) {
        auto fn = std::move(after_written_.front().second);
        after_written_.pop_front();
        fn();
      }
      continue;
    }
    if (ping_pending_ && !closing_) {
      ping_pending_ = false;
      auto [ec] = co_await ws_.async_ping({}, use_nothrow);
      if (ec) break;
      continue;
    }
    if (closing_ && !close_sent_ && (queue_.empty() || discard_)) {
      close_sent_ = true;
      websocket::close_reason cr(static_cast<std::uint16_t>(close_code_));
      cr.reason = close_reason_.substr(0, 120);
      auto [ec] = co_await ws_.async_close(cr, use_nothrow);
      (void)ec;
      finish(close_code_);
    }
    break;
  }
  writing_ = false;
}

void ws_session::drop_queue() {
  global_metrics().queued_bytes.fetch_sub(static_cast<std::int64_t>(queued_),
                                          std::memory_order_relaxed);
  // The front frame may be mid-write; the loop stops after it (discard_).
  queue_.clear();
  queued_ = 0;
}

void ws_session::close(int code, std::string reason, bool discard_queue) {
  if (closing_ || finished_) return;
  closing_ = true;
  discard_ = discard_queue;
  close_code_ = code;
  close_reason_ = std::move(reason);
  close_started_ms_ = now_ms();
  schedule(close_started_ms_ + close_timeout_ms() + 1);
  mark_active();
  if (discard_queue && !writing_) drop_queue();
  holding_ = false;
  pump();
}

void ws_session::hold(bool on) {
  holding_ = on;
  if (!on) pump();
}

void ws_session::ping() {
  if (closing_ || finished_) return;
  if (!control_fits(2)) return;
  if (!mount_.compress && queue_.empty() && !holding_ && !writing_) {
    // Nothing queued: the ping frame goes straight into the batch (no write coroutine).
    ws_.next_layer().append_ping();
    ws_.next_layer().schedule_flush();
    mark_active();
    return;
  }
  ping_pending_ = true;
  pump();
}

void ws_session::after_written(std::function<void()> done) {
  if (written_total_ >= queued_total_) {
    // Nothing of ours waits in queue_: done once the batching layer has written what it holds.
    std::weak_ptr<ws_session> weak = shared_from_this();
    ws_.next_layer().async_flush([weak, done = std::move(done)](beast::error_code) {
      if (auto s = weak.lock(); s && !s->finished_) done();
    });
    return;
  }
  after_written_.emplace_back(queued_total_, std::move(done));
}

void ws_session::offload(std::function<void()> work, std::function<void()> then) {
  std::weak_ptr<ws_session> weak = shared_from_this();
  srv_.offload([weak, &ctx = sh_.ctx, work = std::move(work), then = std::move(then)] {
    work();
    net::post(ctx, [weak, then] {
      if (auto s = weak.lock(); s && !s->finished_) then();
    });
  });
}

void ws_session::after(std::int64_t delay_ms, std::function<void()> fn) {
  auto t = std::make_shared<net::steady_timer>(sh_.ctx, std::chrono::milliseconds(delay_ms));
  std::weak_ptr<ws_session> weak = shared_from_this();
  t->async_wait([t, weak, fn = std::move(fn)](beast::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock(); s && !s->finished_) fn();
  });
}

void ws_session::tick(std::int64_t now) {
  due_ms_ = 0;
  if (finished_) return;
  if (closing_ && now - close_started_ms_ > close_timeout_ms()) {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).close(ec);  // the peer never completed the handshake
    finish(close_code_);
    return;
  }
  if (closing_) schedule(close_started_ms_ + close_timeout_ms() + 1);
  const std::int64_t next = handler_ ? handler_->on_tick(now) : 0;
  if (next != 0) schedule(std::max(next, now + 1));
}

void ws_session::schedule(std::int64_t due) {
  if (finished_ || (due_ms_ != 0 && due_ms_ <= due)) return;
  due_ms_ = due;
  sh_.timers.push_back(tick_entry{due, this, serial_});
  std::push_heap(sh_.timers.begin(), sh_.timers.end(), std::greater<>{});
}

bool ws_session::trim_if_idle() {
  if (!ws_.next_layer().trim_if_idle()) return false;
  active_ = false;
  return true;
}

void ws_session::drain() {
  if (handler_ && !finished_) handler_->on_drain();
}

// The order matters: finished_ first, so that whatever the handler does from on_closed (give
// back its slot, detach its session, which may try to send) finds the socket closed; the
// handler is told last, once the socket is out of the shard's set and its queue is gone.
void ws_session::finish(int code) {
  if (finished_) return;
  finished_ = true;
  sh_.sockets.erase(this);
  drop_queue();
  after_written_.clear();
  beast::error_code ec;
  beast::get_lowest_layer(ws_).close(ec);
  if (handler_) handler_->on_closed(code);
}

void start_ws_session(server::impl& srv, shard_ctx& sh, conn_stream stream, conn_slot slot,
                      http::request<http::string_body> req, http_request parsed,
                      const ws_mount& mount) {
  auto s = std::make_shared<ws_session>(srv, sh, std::move(stream), std::move(slot), mount);
  s->start(std::move(req), std::move(parsed));
}

}  // namespace herald
