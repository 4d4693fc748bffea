#include "bench/tracker.h"

namespace herald::bench {

void delivery_tracker::on_seq(std::uint64_t seq) {
  if (seq > last_seq_) {
    seq_gaps_ += seq - last_seq_ - 1;
    last_seq_ = seq;
  } else {
    ++seq_backwards_;
  }
}

void delivery_tracker::on_payload(std::uint32_t publisher, std::uint64_t counter) {
  ++received_;
  if (publisher >= publishers_.size()) publishers_.resize(publisher + 1);
  publisher_state& p = publishers_[publisher];
  if (counter >= p.next) {
    if (counter > p.next) p.missing.emplace(p.next, counter - 1);
    p.next = counter + 1;
    ++p.distinct;
    return;
  }
  // Below the highest seen: either it fills a gap (late, i.e. reordered) or it is a repeat.
  auto it = p.missing.upper_bound(counter);
  if (it == p.missing.begin()) {
    ++duplicates_;
    return;
  }
  --it;
  const std::uint64_t first = it->first, last = it->second;
  if (counter > last) {
    ++duplicates_;
    return;
  }
  ++reordered_;
  ++p.distinct;
  p.missing.erase(it);
  if (first < counter) p.missing.emplace(first, counter - 1);
  if (counter < last) p.missing.emplace(counter + 1, last);
}

std::uint64_t delivery_tracker::distinct(std::uint32_t publisher) const {
  return publisher < publishers_.size() ? publishers_[publisher].distinct : 0;
}

std::uint64_t delivery_tracker::lost(const std::vector<std::uint64_t>& accepted) const {
  std::uint64_t out = 0;
  for (std::size_t i = 0; i < accepted.size(); ++i) {
    const std::uint64_t got = distinct(static_cast<std::uint32_t>(i));
    if (accepted[i] > got) out += accepted[i] - got;
  }
  return out;
}

std::uint64_t delivery_tracker::skipped() const {
  std::uint64_t out = 0;
  for (const auto& p : publishers_)
    for (const auto& [first, last] : p.missing) out += last - first + 1;
  return out;
}

}  // namespace herald::bench
