// The bench's run-level accounting that needs no sockets, unit-tested in bench_test.cc:
// publisher streams (--inflight), the slow-subscriber split (--slow-fraction), expected
// deliveries, and the resume storm's per-session tally (--resume-storm).
// Thread ownership: a resume_session is owned by the load thread of its connection and read
// by the main thread after that thread joined; the free functions are pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace herald::bench {

// --inflight N: each of P publishers keeps N requests outstanding by running N streams, each
// its own keep-alive connection sending a request, waiting for its reply, sending the next.
// A stream has its own payload counters, so the tracker's order checks hold per stream.
std::size_t stream_count(std::size_t publishers, std::size_t inflight);
// Stream `slot` (0..inflight-1) of publisher `publisher`: ids 0..stream_count-1, dense.
std::uint32_t stream_id(std::size_t publisher, std::size_t slot, std::size_t inflight);

// --slow-fraction F: subscriber i is slow when it falls on the stride round(1/F) (i % k == 0),
// so F × N of them, spread over topics and load threads. F = 0: none; F ≥ 1: all.
bool is_slow(std::size_t index, double fraction);

// What the subscribers should have received: accepted[stream][topic] × subscribers of topic.
std::uint64_t expected_deliveries(const std::vector<std::vector<std::uint64_t>>& accepted,
                                  const std::vector<std::size_t>& subs_on_topic);

// One session through a resume storm: the seq it had before the drain, then its welcome after
// the restart and the events that followed. The events it missed must come back in order with
// the next seqs: a skipped seq is a gap, a repeated or backwards one a duplicate.
class resume_session {
 public:
  void before_drain(std::uint64_t last_seq) { last_seq_ = last_seq; }
  std::uint64_t last_seq_before() const noexcept { return last_seq_; }
  // The resume's welcome: `now_ns` from the storm's start.
  void on_welcome(bool recovered, const std::string& recovery_error, std::int64_t now_ns);
  // An event after the welcome; `expected` is how many this session missed while away.
  void on_event(std::uint64_t seq, std::uint64_t expected, std::int64_t now_ns);
  void on_error(const std::string& e) {
    if (error_.empty()) error_ = e;
  }

  bool welcomed() const noexcept { return welcomed_; }
  bool recovered() const noexcept { return recovered_; }
  const std::string& recovery_error() const noexcept { return recovery_error_; }
  const std::string& error() const noexcept { return error_; }
  std::uint64_t events() const noexcept { return events_; }
  std::uint64_t gaps() const noexcept { return gaps_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::int64_t welcome_ns() const noexcept { return welcome_ns_; }
  // When the last missed event arrived (0: not all arrived; the welcome time when none missed).
  std::int64_t caught_up_ns() const noexcept { return caught_up_ns_; }

 private:
  std::uint64_t last_seq_ = 0, next_ = 0, events_ = 0, gaps_ = 0, duplicates_ = 0;
  bool welcomed_ = false, recovered_ = false;
  std::string recovery_error_, error_;
  std::int64_t welcome_ns_ = 0, caught_up_ns_ = 0;
};

struct storm_summary {
  std::size_t sessions = 0, welcomed = 0, recovered = 0, caught_up = 0, errors = 0;
  std::uint64_t gaps = 0, duplicates = 0, replayed = 0;
  double last_recovered_s = 0, last_caught_up_s = 0, welcome_p50_ms = 0, welcome_p99_ms = 0;
  std::map<std::string, std::size_t> recovery_errors;  // recovery_error -> sessions
  std::string first_error;
};

// Sums the sessions; `expected` is the missed-event count per session (same index).
storm_summary summarize_storm(const std::vector<resume_session>& sessions,
                              const std::vector<std::uint64_t>& expected);

}  // namespace herald::bench
