#include "transport/batching_stream.h"

#include <sys/socket.h>

#include <cerrno>

namespace herald {

std::size_t send_now(conn_stream& s, net::const_buffer b, beast::error_code& ec) {
  if (s.is_tls() || b.size() == 0) return 0;
  // MSG_DONTWAIT: never blocks, whatever the socket's mode; MSG_NOSIGNAL: a closed peer is an
  // error here, not a SIGPIPE.
  for (;;) {
    const ssize_t n =
        ::send(s.socket().native_handle(), b.data(), b.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      ec = beast::error_code(errno, beast::system_category());
    return 0;
  }
}

write_scheduler& write_scheduler::local() {
  thread_local write_scheduler w;
  return w;
}

void write_scheduler::add(void* s, flush_fn flush, std::shared_ptr<bool> alive,
                          const net::any_io_executor& ex) {
  dirty_.push_back(entry{s, flush, std::move(alive)});
  if (posted_) return;
  posted_ = true;
  ex_.emplace(ex);
  net::post(*ex_, [this] { run(); });
}

void write_scheduler::run() {
  std::size_t end = std::min(dirty_.size(), next_ + per_pass);
  for (; next_ < end; ++next_) {
    entry& e = dirty_[next_];
    if (*e.alive && e.flush(e.stream) >= no_yield_bytes) end = dirty_.size();
    e.alive.reset();
  }
  if (next_ < dirty_.size()) {
    net::post(*ex_, [this] { run(); });  // the rest after what queued up meanwhile
    return;
  }
  dirty_.clear();
  next_ = 0;
  posted_ = false;
}

}  // namespace herald
