// Delivery accounting for one subscriber connection: checks the server's per-connection `seq`
// (Herald: 1, 2, 3, ... with no gaps) and the per-(publisher, topic) counter each payload
// carries (1, 2, 3, ... per publisher on the topic this connection follows). From these it
// tells duplicates (a counter seen twice), reordering (a counter that arrives after a higher
// one, filling a gap) and, given what the publishers had accepted, loss.
// Thread ownership: owned by the load thread of its connection; read by the main thread only
// after that thread has joined.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace herald::bench {

class delivery_tracker {
 public:
  // The server-assigned sequence number of a delivery (Herald's `seq`).
  void on_seq(std::uint64_t seq);
  // A payload counter from `publisher` (counters start at 1).
  void on_payload(std::uint32_t publisher, std::uint64_t counter);

  std::uint64_t received() const noexcept { return received_; }
  std::uint64_t duplicates() const noexcept { return duplicates_; }
  std::uint64_t reordered() const noexcept { return reordered_; }
  std::uint64_t seq_gaps() const noexcept { return seq_gaps_; }            // seq numbers skipped
  std::uint64_t seq_backwards() const noexcept { return seq_backwards_; }  // seq ≤ a previous one
  // Distinct counters received from `publisher`.
  std::uint64_t distinct(std::uint32_t publisher) const;
  // Counters in 1..accepted[publisher] never received (`accepted` indexed by publisher).
  std::uint64_t lost(const std::vector<std::uint64_t>& accepted) const;
  // Of those, the ones skipped: a higher counter of the same publisher arrived, they did not.
  // The rest of lost() is the tail that had not arrived yet (a server behind, not a drop).
  std::uint64_t skipped() const;

 private:
  // Counters below `next` not received yet, as disjoint ranges [first, last].
  struct publisher_state {
    std::uint64_t next = 1;
    std::uint64_t distinct = 0;
    std::map<std::uint64_t, std::uint64_t> missing;  // first -> last
  };
  std::vector<publisher_state> publishers_;
  std::uint64_t last_seq_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t reordered_ = 0;
  std::uint64_t seq_gaps_ = 0;
  std::uint64_t seq_backwards_ = 0;
};

}  // namespace herald::bench
