#include "store/redis/link.h"

#include <future>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

namespace herald::redis {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

namespace {
constexpr std::size_t read_chunk_bytes = 65536;
}  // namespace

link::link(io_thread& io, options opts)
    : io_(io),
      opts_(std::move(opts)),
      resolver_(io.get().ctx),
      socket_(io.get().ctx),
      connect_timer_(io.get().ctx),
      retry_timer_(io.get().ctx),
      timeout_timer_(io.get().ctx),
      ping_timer_(io.get().ctx) {}

void link::start() {
  if (state_ == state::idle) connect();
}

void link::connect() {
  state_ = state::connecting;
  auto gen = generation_;
  auto self = shared_from_this();
  connect_timer_.expires_after(milliseconds(opts_.connect_timeout_ms));
  connect_timer_.async_wait([self, gen](boost::system::error_code ec) {
    if (ec || gen != self->generation_) return;
    self->drop(fmt::format("connect to {} timed out after {} ms", self->opts_.address.to_string(),
                           self->opts_.connect_timeout_ms));
  });
  resolver_.async_resolve(
      opts_.address.host, std::to_string(opts_.address.port),
      [self, gen](boost::system::error_code ec, const tcp::resolver::results_type& results) {
        if (gen != self->generation_) return;
        if (ec) {
          self->drop(fmt::format("resolve {}: {}", self->opts_.address.host, ec.message()));
          return;
        }
        net::async_connect(
            self->socket_, results,
            [self, gen](boost::system::error_code cec, const tcp::endpoint&) {
              if (gen != self->generation_) return;
              if (cec) {
                self->drop(fmt::format("connect to {}: {}", self->opts_.address.to_string(),
                                       cec.message()));
                return;
              }
              self->on_connected();
            });
      });
}

void link::on_connected() {
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  reader_ = std::make_unique<resp_reader>(opts_.max_reply_bytes);
  state_ = state::handshake;
  last_read_ = ping_sent_ = clock::time_point{};
  start_read();
  // The handshake: each step must answer +OK; an error reply names the step and drops.
  std::vector<std::pair<std::string, command>> steps;
  if (!opts_.client_name.empty()) {
    steps.emplace_back("CLIENT SETNAME", command{"CLIENT", "SETNAME", opts_.client_name});
  }
  if (opts_.address.db != 0) {
    steps.emplace_back(fmt::format("SELECT {}", opts_.address.db),
                       command{"SELECT"}.arg(static_cast<std::int64_t>(opts_.address.db)));
  }
  if (steps.empty()) {
    ready();
    return;
  }
  handshake_left_ = steps.size();
  auto self = shared_from_this();
  auto gen = generation_;
  for (auto& [what, cmd] : steps) {
    queue(cmd.wire(), opts_.connect_timeout_ms, [self, gen, what = what](result<reply> r) {
      if (gen != self->generation_ || !r) return;  // dropped: the drop reported it
      if (r->is_error()) {
        self->drop(fmt::format("{}: {}", what, r->str));
        return;
      }
      if (--self->handshake_left_ == 0) self->ready();
    });
  }
}

void link::ready() {
  connect_timer_.cancel();
  state_ = state::ready;
  backoff_ms_ = 0;
  ++connects_;
  last_error_.clear();
  auto gen = generation_;
  if (after_handshake) send_raw(after_handshake());
  if (gen != generation_) return;  // past the outgoing bound: dropped, retrying
  if (on_push && opts_.ping_interval_ms > 0) arm_ping();
  if (on_state) on_state(true, "");
}

void link::start_read() {
  read_buf_.resize(read_chunk_bytes);
  auto self = shared_from_this();
  auto gen = generation_;
  socket_.async_read_some(
      net::buffer(read_buf_), [self, gen](boost::system::error_code ec, std::size_t n) {
        if (gen != self->generation_) return;
        if (ec) {
          self->drop(ec == net::error::eof ? std::string("connection closed by the server")
                                           : "read: " + ec.message());
          return;
        }
        self->last_read_ = clock::now();
        self->reader_->feed(self->read_buf_.data(), n);
        reply r;
        for (;;) {
          auto s = self->reader_->next(r);
          if (s == resp_reader::status::incomplete) break;
          if (s == resp_reader::status::error) {
            std::string why = self->reader_->error_message();
            // The reply being read is the front command's: it fails with the limit's name.
            if (self->reader_->limit_hit() && !self->pending_.empty() &&
                self->pending_.front().handler) {
              auto h = std::move(self->pending_.front().handler);
              self->pending_.front().handler = nullptr;
              h(error{errc::too_large, why});
              if (gen != self->generation_) return;
            }
            self->drop(why);
            return;
          }
          self->dispatch(std::move(r));
          if (gen != self->generation_) return;  // a handler closed or dropped the link
        }
        self->start_read();
      });
}

void link::dispatch(reply&& r) {
  if (pending_.empty()) {
    if (on_push) {
      on_push(std::move(r));
    } else {
      drop("protocol error: a reply no command waits for: " + r.to_string());
    }
    return;
  }
  entry e = std::move(pending_.front());
  pending_.pop_front();
  if (!e.handler) return;  // timed out: its late reply is skipped
  deadlines_.erase({e.deadline, e.seq});
  e.handler(std::move(r));
}

void link::queue(const std::string& wire, std::int64_t timeout_ms, reply_handler h) {
  auto now = clock::now();
  entry e{next_seq_++, timeout_ms, now, now + milliseconds(timeout_ms), std::move(h)};
  deadlines_.emplace(e.deadline, e.seq);
  bool earliest = e.deadline < timer_at_;
  pending_.push_back(std::move(e));
  out_ += wire;
  flush();
  if (earliest) arm_timeouts();
}

void link::send(const std::string& wire, std::int64_t timeout_ms, reply_handler h) {
  if (state_ == state::closed) {
    h(error{errc::unavailable, "redis: connection closed"});
    return;
  }
  if (state_ != state::ready) {
    h(error{errc::unavailable,
            fmt::format("redis: not connected to {}{}{}", opts_.address.to_string(),
                        last_error_.empty() ? "" : ": ", last_error_)});
    return;
  }
  if (pending_.size() >= opts_.max_pending_commands) {
    h(error{errc::too_many_requests,
            fmt::format("redis: more than redis.max_pending_commands ({}) awaiting replies",
                        opts_.max_pending_commands)});
    return;
  }
  if (out_.size() + writing_.size() + wire.size() > opts_.max_send_buffer_bytes) {
    h(error{errc::too_large,
            fmt::format("redis: outgoing buffer past redis.max_send_buffer_bytes ({} bytes)",
                        opts_.max_send_buffer_bytes)});
    return;
  }
  queue(wire, timeout_ms > 0 ? timeout_ms : opts_.command_timeout_ms, std::move(h));
}

bool link::send_raw(const std::string& wire) {
  if (state_ != state::ready) return false;
  if (out_.size() + writing_.size() + wire.size() > opts_.max_send_buffer_bytes) {
    drop(fmt::format("outgoing buffer past redis.max_send_buffer_bytes ({} bytes)",
                     opts_.max_send_buffer_bytes));
    return false;
  }
  out_ += wire;
  flush();
  return true;
}

void link::flush() {
  if (write_busy_ || out_.empty()) return;
  if (state_ != state::handshake && state_ != state::ready) return;
  write_busy_ = true;
  writing_.clear();
  writing_.swap(out_);
  auto self = shared_from_this();
  auto gen = generation_;
  net::async_write(socket_, net::buffer(writing_),
                   [self, gen](boost::system::error_code ec, std::size_t) {
                     if (gen != self->generation_) return;
                     self->write_busy_ = false;
                     self->writing_.clear();
                     if (ec) {
                       self->drop("write: " + ec.message());
                       return;
                     }
                     self->flush();
                   });
}

void link::arm_timeouts() {
  if (deadlines_.empty()) {
    timer_at_ = clock::time_point::max();
    timeout_timer_.cancel();
    return;
  }
  auto at = deadlines_.begin()->first;
  if (at == timer_at_) return;
  timer_at_ = at;
  timeout_timer_.expires_at(at);
  auto self = shared_from_this();
  auto gen = generation_;
  timeout_timer_.async_wait([self, gen](boost::system::error_code ec) {
    if (ec || gen != self->generation_) return;
    self->timer_at_ = clock::time_point::max();
    self->on_timeouts();
  });
}

void link::on_timeouts() {
  auto gen = generation_;
  auto now = clock::now();
  bool stalled = false;
  std::int64_t stalled_ms = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto seq = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    entry& e = pending_[static_cast<std::size_t>(seq - pending_.front().seq)];
    auto h = std::move(e.handler);
    e.handler = nullptr;
    if (last_read_ < e.queued) {
      stalled = true;
      stalled_ms = e.timeout_ms;
    }
    h(error{errc::unavailable, fmt::format("redis: no reply within {} ms", e.timeout_ms)});
    if (gen != generation_) return;
  }
  if (stalled) {
    drop(fmt::format("no byte from the server in {} ms: connection deemed dead", stalled_ms));
    return;
  }
  arm_timeouts();
}

void link::arm_ping() {
  ping_timer_.expires_after(milliseconds(opts_.ping_interval_ms));
  auto self = shared_from_this();
  auto gen = generation_;
  ping_timer_.async_wait([self, gen](boost::system::error_code ec) {
    if (ec || gen != self->generation_) return;
    if (self->ping_sent_ != clock::time_point{} && self->last_read_ < self->ping_sent_) {
      self->drop(fmt::format("no reply to PING within {} ms", self->opts_.ping_interval_ms));
      return;
    }
    self->ping_sent_ = clock::now();
    if (!self->send_raw(command{"PING"}.wire())) return;
    self->arm_ping();
  });
}

void link::fail_all(errc code, const std::string& why) {
  auto failed = std::move(pending_);
  pending_.clear();
  deadlines_.clear();
  timer_at_ = clock::time_point::max();
  for (auto& e : failed) {
    if (e.handler) e.handler(error{code, why});
  }
}

void link::drop(const std::string& why) {
  if (state_ == state::closed || state_ == state::idle) return;
  bool was_up = state_ == state::ready;
  last_error_ = why;
  ++generation_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  timeout_timer_.cancel();
  ping_timer_.cancel();
  out_.clear();
  write_busy_ = false;
  reader_.reset();
  state_ = state::idle;
  fail_all(errc::unavailable, "redis: connection lost: " + why);
  if (on_state) on_state(false, was_up ? why : "reconnecting: " + why);
  if (state_ == state::idle) retry();  // a callback may have closed the link
}

void link::retry() {
  backoff_ms_ =
      backoff_ms_ == 0 ? opts_.reconnect_min_ms : std::min(backoff_ms_ * 2, opts_.reconnect_max_ms);
  retry_timer_.expires_after(milliseconds(backoff_ms_));
  auto self = shared_from_this();
  auto gen = generation_;
  retry_timer_.async_wait([self, gen](boost::system::error_code ec) {
    if (ec || gen != self->generation_ || self->state_ != state::idle) return;
    self->connect();
  });
}

void link::close() {
  if (state_ == state::closed) return;
  state_ = state::closed;
  ++generation_;
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  connect_timer_.cancel();
  retry_timer_.cancel();
  timeout_timer_.cancel();
  ping_timer_.cancel();
  on_state = nullptr;
  on_push = nullptr;
  after_handshake = nullptr;
  fail_all(errc::unavailable, "redis: connection closed");
}

void close_link(io_thread& io, const std::shared_ptr<link>& l) {
  if (io.on_this_thread()) {
    l->close();
    return;
  }
  std::promise<void> done;
  io.post([l, &done] {
    l->close();
    done.set_value();
  });
  done.get_future().wait();
}

void link_status::set(bool up, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    up_ = up;
    confirmed_ = 0;
    if (up) ++connects_;
    last_error_ = why;
  }
  cv_.notify_all();
}

status link_status::wait(std::int64_t timeout_ms, const char* what) {
  std::unique_lock lock(mu_);
  if (cv_.wait_for(lock, milliseconds(timeout_ms), [&] { return up_; })) return {};
  return error{errc::unavailable,
               fmt::format("redis: {} not connected after {} ms{}{}", what, timeout_ms,
                           last_error_.empty() ? "" : ": ", last_error_)};
}

bool link_status::up() const {
  std::lock_guard lock(mu_);
  return up_;
}

std::uint64_t link_status::connects() const {
  std::lock_guard lock(mu_);
  return connects_;
}

std::int64_t link_status::confirmed() const {
  std::lock_guard lock(mu_);
  return confirmed_;
}

void link_status::set_confirmed(std::int64_t n) {
  std::lock_guard lock(mu_);
  confirmed_ = n;
}

}  // namespace herald::redis
