#include "store/redis/resp_reader.h"

#include <memory>
#include <new>

#include <fmt/format.h>
#include <hiredis/read.h>

namespace herald::redis {

// Objects: the root reply is a `new reply`, owned by hiredis until redisReaderGetReply hands it
// over (hiredis frees only the root, with freeObject). An array's elements are sized at once
// (resize(n)), so the pointer to an element handed back for a nested array stays valid while
// its own elements are filled in.
struct resp_reader::hooks {
  static reply* slot(const redisReadTask* task) {
    if (task->parent == nullptr) return new (std::nothrow) reply;
    auto* parent = static_cast<reply*>(task->parent->obj);
    return &parent->elements[static_cast<std::size_t>(task->idx)];
  }
  static void* create_string(const redisReadTask* task, char* s, std::size_t len) {
    reply* r = slot(task);
    if (!r) return nullptr;
    r->type = task->type == REDIS_REPLY_ERROR    ? reply::kind::error
              : task->type == REDIS_REPLY_STATUS ? reply::kind::status
                                                 : reply::kind::string;
    r->str.assign(s, len);
    return r;
  }
  static void* create_array(const redisReadTask* task, int elements) {
    auto* self = static_cast<resp_reader*>(task->privdata);
    // Each element takes at least 3 bytes on the wire (":0\r\n" is 4): a header declaring more
    // than the bound allows is refused before the vector is sized.
    if (elements < 0) {  // hiredis passes *-2 and below on (*-1 is nil)
      self->negative_length_ = true;
      return nullptr;
    }
    if (static_cast<std::size_t>(elements) > self->max_reply_bytes_ / 3) {
      self->too_many_elements_ = true;
      return nullptr;
    }
    reply* r = slot(task);
    if (!r) return nullptr;
    r->type = reply::kind::array;
    r->elements.resize(static_cast<std::size_t>(elements));
    return r;
  }
  static void* create_integer(const redisReadTask* task, long long v) {
    reply* r = slot(task);
    if (!r) return nullptr;
    r->type = reply::kind::integer;
    r->integer = v;
    return r;
  }
  static void* create_nil(const redisReadTask* task) {
    reply* r = slot(task);
    if (r) r->type = reply::kind::nil;
    return r;
  }
  static void free_object(void* obj) { delete static_cast<reply*>(obj); }
};

namespace {
redisReplyObjectFunctions functions = {
    resp_reader::hooks::create_string, resp_reader::hooks::create_array,
    resp_reader::hooks::create_integer, resp_reader::hooks::create_nil,
    resp_reader::hooks::free_object};
}  // namespace

resp_reader::resp_reader(std::size_t max_reply_bytes)
    : reader_(redisReaderCreateWithFunctions(&functions)), max_reply_bytes_(max_reply_bytes) {
  if (!reader_) throw std::bad_alloc();
  reader_->privdata = this;
}

resp_reader::~resp_reader() { redisReaderFree(reader_); }

void resp_reader::feed(const char* data, std::size_t n) {
  if (n == 0 || !error_.empty()) return;
  if (redisReaderFeed(reader_, data, n) != REDIS_OK) {
    error_ = "redis: reply parser: out of memory";
    return;
  }
  fed_ += n;
}

std::size_t resp_reader::pending_bytes() const noexcept {
  return static_cast<std::size_t>(fed_ - reply_start_);
}

resp_reader::status resp_reader::fail(std::string message) {
  error_ = std::move(message);
  return status::error;
}

resp_reader::status resp_reader::next(reply& out) {
  if (!error_.empty()) return status::error;
  auto too_large = [&] {
    limit_hit_ = true;
    return fail(
        fmt::format("redis: reply larger than redis.max_reply_bytes ({} bytes)", max_reply_bytes_));
  };
  void* obj = nullptr;
  if (redisReaderGetReply(reader_, &obj) != REDIS_OK) {
    if (too_many_elements_) return too_large();
    if (negative_length_) return fail("redis: protocol error: negative array length");
    return fail(fmt::format("redis: protocol error: {}", reader_->errstr));
  }
  // Bytes fed but not consumed by hiredis belong to the replies after this one.
  std::uint64_t unread = reader_->len - reader_->pos;
  if (obj == nullptr) {
    if (pending_bytes() > max_reply_bytes_) return too_large();
    return status::incomplete;
  }
  std::unique_ptr<reply> r(static_cast<reply*>(obj));
  std::uint64_t end = fed_ - unread;
  std::uint64_t size = end - reply_start_;
  reply_start_ = end;
  if (size > max_reply_bytes_) return too_large();
  out = std::move(*r);
  return status::reply;
}

}  // namespace herald::redis
