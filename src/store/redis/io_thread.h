// One thread running one Asio io_context{1}: where Redis connections live. Their sockets,
// timers, reply parsing and every callback they make run on this thread. No Asio in this
// header (the store's callers must not compile Asio); link.h reaches the context.
// Thread-safe: post() from anywhere; destroy after the connections made on it.
#pragma once

#include <functional>
#include <memory>

namespace herald::redis {

class io_thread {
 public:
  io_thread();   // starts the thread
  ~io_thread();  // stops the context and joins
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  void post(std::function<void()> fn);
  bool on_this_thread() const noexcept;

  struct impl;
  impl& get() noexcept { return *impl_; }

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace herald::redis
