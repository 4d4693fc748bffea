// The tracker wire on arbitrary bytes (tracker.md §3, §4, §8): the client frame decoder, the
// heartbeat check, the id and hash parsers and the UTF-16 length the prefix carries. Beyond not
// crashing: a decoded frame is consistent (an early error leaves no hash; a valid one has a
// well-formed hash, distinct ids in 1…2147483647, at most the limit, and an echo that parses as a
// JSON object); its error frame and replies are JSON; the prefix counts no more units than bytes
// and a prefixed frame starts with that count; an id that parses prints back to the same text.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>

#include "dialect/tracker/tracker_codec.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool is_json(std::string_view s, bool object) {
  boost::system::error_code ec;
  auto v = boost::json::parse(s, ec);
  return !ec && (!object || v.is_object());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace tr = herald::tracker;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::size_t limit = 1 + size % 7;
  const tr::request r = tr::decode(text, limit);
  if (r.error == tr::wrong_format) {
    check(r.act == tr::action::none || !r.detail.empty());
    check(r.hash.empty() && r.trackers.empty());
    check(is_json(tr::error_frame(tr::action::none, r.error, "\"" + r.detail + "\""), true));
  } else {
    check(r.act != tr::action::none);
    check(is_json(r.echo, true));
    check(is_json(tr::error_frame(r.act, r.error ? r.error : 4, r.echo), true));
    if (r.error == 0) {
      check(tr::valid_hash(r.hash));
      check(r.late_error == 0 || r.trackers.empty());
      check(r.trackers.size() <= limit);
      std::set<std::int64_t> seen;
      for (auto id : r.trackers) {
        check(id >= 1 && id <= tr::max_tracker_id);
        check(seen.insert(id).second);
      }
      check(is_json(tr::unsubscribe_reply(r.trackers), true));
    }
  }
  (void)tr::is_heartbeat(text);
  (void)tr::valid_uuid(text);
  if (auto id = tr::parse_tracker_id(text)) check(std::to_string(*id) == text);
  const std::size_t units = tr::utf16_units(text);
  check(units <= size);
  const std::string framed = tr::frame(text, true);
  check(framed.substr(0, framed.find('|')) == std::to_string(units));
  return 0;
}
