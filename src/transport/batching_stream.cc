#include "transport/batching_stream.h"

namespace herald {

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
