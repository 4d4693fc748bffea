// The reply parser: hiredis's redisReader (RESP2, the one Debian ships: 0.14) building our
// `reply` values, with a bound on the size of one reply. Why hiredis and not our own parser:
// its reader is the codec every C client of Redis uses, fuzzed and exercised for a decade,
// with no I/O of its own; its object-function hooks let it build `reply` directly, so there
// is no second copy. What it lacks, we add here: the size bound (it would buffer a 512 MB bulk
// string), and a cap on an array's declared element count before anything is allocated.
// Its own limit: arrays nest at most 7 deep (Redis replies nest 3 at most: XREAD).
// Owned by one thread (a connection's). Not copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "store/redis/reply.h"

struct redisReader;

namespace herald::redis {

class resp_reader {
 public:
  // `max_reply_bytes`: the most bytes one reply may take on the wire (nested elements
  // included); past it next() answers error naming the limit.
  explicit resp_reader(std::size_t max_reply_bytes);
  ~resp_reader();
  resp_reader(const resp_reader&) = delete;
  resp_reader& operator=(const resp_reader&) = delete;

  void feed(const char* data, std::size_t n);
  enum class status : std::uint8_t { reply, incomplete, error };
  // The next complete reply into `out`; `incomplete` when more bytes are needed; `error` (then
  // error_message()) on a protocol error or the size bound: the stream cannot be resynced, the
  // connection must be dropped.
  status next(reply& out);
  const std::string& error_message() const noexcept { return error_; }
  bool limit_hit() const noexcept { return limit_hit_; }  // the error is the size bound
  std::size_t max_reply_bytes() const noexcept { return max_reply_bytes_; }
  // Bytes fed and not yet returned as replies (the reply being read).
  std::size_t pending_bytes() const noexcept;

  struct hooks;  // the hiredis object functions (resp_reader.cc)

 private:
  status fail(std::string message);

  redisReader* reader_;
  std::size_t max_reply_bytes_;
  std::uint64_t fed_ = 0;          // bytes fed since construction
  std::uint64_t reply_start_ = 0;  // offset of the first byte of the reply being read
  bool too_many_elements_ = false;
  bool negative_length_ = false;
  bool limit_hit_ = false;
  std::string error_;
};

}  // namespace herald::redis
