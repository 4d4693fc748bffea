#include "store/redis/io_thread.h"

#include "store/redis/link.h"

namespace herald::redis {

io_thread::io_thread() : impl_(std::make_unique<impl>()) {
  impl_->thread = std::thread([this] { impl_->ctx.run(); });
}

io_thread::~io_thread() {
  impl_->work.reset();
  impl_->ctx.stop();
  impl_->thread.join();
}

void io_thread::post(std::function<void()> fn) { boost::asio::post(impl_->ctx, std::move(fn)); }

bool io_thread::on_this_thread() const noexcept {
  return impl_->thread.get_id() == std::this_thread::get_id();
}

}  // namespace herald::redis
