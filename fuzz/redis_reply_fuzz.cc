// The Redis reply parser (hiredis's reader behind resp_reader, with its size bound): for any
// bytes, fed whole or split at any point, the same replies come out, then the same ending
// (incomplete, or an error and whether it is the size bound); never a crash, a leak or an
// allocation sized by a declared length. The first input byte picks the split point.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "store/redis/resp_reader.h"

namespace {

struct outcome {
  std::vector<std::string> replies;
  herald::redis::resp_reader::status end;
  bool limit = false;
};

// Feeds the chunks, draining replies after each; stops at the first error.
outcome run(const std::vector<std::string>& chunks) {
  herald::redis::resp_reader rd(512);
  outcome o{{}, herald::redis::resp_reader::status::incomplete};
  for (const auto& c : chunks) {
    rd.feed(c.data(), c.size());
    herald::redis::reply r;
    for (;;) {
      auto s = rd.next(r);
      if (s == herald::redis::resp_reader::status::reply) {
        o.replies.push_back(r.to_string() + "/" + std::to_string(r.str.size()));
        continue;
      }
      o.end = s;
      if (s == herald::redis::resp_reader::status::error) {
        o.limit = rd.limit_hit();
        return o;
      }
      break;
    }
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t cut = data[0] % (in.size() + 1);
  outcome whole = run({in});
  outcome split = run({in.substr(0, cut), in.substr(cut)});
  if (whole.replies != split.replies || whole.end != split.end || whole.limit != split.limit) {
    std::abort();
  }
  return 0;
}
