#include "bench/accounting.h"

#include <algorithm>
#include <cmath>

#include "bench/histogram.h"

namespace herald::bench {

std::size_t stream_count(std::size_t publishers, std::size_t inflight) {
  return publishers * std::max<std::size_t>(1, inflight);
}

std::uint32_t stream_id(std::size_t publisher, std::size_t slot, std::size_t inflight) {
  return static_cast<std::uint32_t>(publisher * std::max<std::size_t>(1, inflight) + slot);
}

bool is_slow(std::size_t index, double fraction) {
  if (!(fraction > 0)) return false;
  if (fraction >= 1) return true;
  const auto stride = static_cast<std::size_t>(std::max(1.0, std::round(1.0 / fraction)));
  return index % stride == 0;
}

std::uint64_t expected_deliveries(const std::vector<std::vector<std::uint64_t>>& accepted,
                                  const std::vector<std::size_t>& subs_on_topic) {
  std::uint64_t n = 0;
  for (const auto& per_topic : accepted)
    for (std::size_t t = 0; t < per_topic.size() && t < subs_on_topic.size(); ++t)
      n += per_topic[t] * subs_on_topic[t];
  return n;
}

void resume_session::on_welcome(bool recovered, const std::string& recovery_error,
                                std::int64_t now_ns) {
  welcomed_ = true;
  recovered_ = recovered;
  recovery_error_ = recovery_error;
  welcome_ns_ = now_ns;
  next_ = last_seq_ + 1;
}

void resume_session::on_event(std::uint64_t seq, std::uint64_t expected, std::int64_t now_ns) {
  if (seq < next_) {
    ++duplicates_;
    return;
  }
  if (seq > next_) gaps_ += seq - next_;
  next_ = seq + 1;
  ++events_;
  if (events_ == expected && gaps_ == 0) caught_up_ns_ = now_ns;
}

storm_summary summarize_storm(const std::vector<resume_session>& sessions,
                              const std::vector<std::uint64_t>& expected) {
  storm_summary s;
  histogram welcome;
  std::int64_t last_rec = 0, last_caught = 0;
  s.sessions = sessions.size();
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    const auto& r = sessions[i];
    const std::uint64_t exp = i < expected.size() ? expected[i] : 0;
    if (!r.error().empty()) {
      ++s.errors;
      if (s.first_error.empty()) s.first_error = r.error();
    }
    s.gaps += r.gaps();
    s.duplicates += r.duplicates();
    s.replayed += r.events();
    if (!r.welcomed()) continue;
    ++s.welcomed;
    welcome.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.welcome_ns())));
    if (!r.recovered()) {
      ++s.recovery_errors[r.recovery_error().empty() ? "none given" : r.recovery_error()];
      continue;
    }
    ++s.recovered;
    last_rec = std::max(last_rec, r.welcome_ns());
    const std::int64_t caught =
        exp == 0 ? r.welcome_ns() : (r.events() >= exp && r.gaps() == 0 ? r.caught_up_ns() : 0);
    if (caught > 0 || (exp == 0 && r.welcomed())) {
      ++s.caught_up;
      last_caught = std::max(last_caught, caught);
    }
  }
  s.last_recovered_s = static_cast<double>(last_rec) / 1e9;
  s.last_caught_up_s = static_cast<double>(last_caught) / 1e9;
  s.welcome_p50_ms = static_cast<double>(welcome.percentile(0.5)) / 1e6;
  s.welcome_p99_ms = static_cast<double>(welcome.percentile(0.99)) / 1e6;
  return s;
}

}  // namespace herald::bench
