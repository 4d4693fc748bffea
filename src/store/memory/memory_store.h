// The in-memory store back end (tests, and `[core] store = "memory"`): the whole log, registry
// and replay guard in maps, lost at exit. Thread-safe: appends are serialized by one mutex
// (which also keeps listener calls in offset order); data sits behind a shared_mutex so reads,
// including reads made from inside the append listener, run concurrently. The listener must
// not call append() (it runs with the append mutex held). Lock order: append_mu_, then mu_.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/store.h"

namespace herald {

class memory_store final : public store {
 public:
  memory_store() = default;
  ~memory_store() override = default;

  void set_append_listener(append_listener l) override;
  using store::append;
  result<std::vector<event_ptr>> append(std::vector<event_draft> batch,
                                        append_record with) override;
  result<std::vector<event_ptr>> read(const log_query& q) override;
  result<std::optional<event_ptr>> state(std::string_view tenant,
                                         std::string_view subject) override;
  result<std::vector<event_ptr>> states(const std::vector<std::string>& tenants) override;
  result<bool> subject_seen(std::string_view tenant, std::string_view subject) override;
  status put_record(std::string_view kind, std::string_view key, std::string_view json) override;
  status erase_record(std::string_view kind, std::string_view key) override;
  result<std::optional<std::string>> get_record(std::string_view kind,
                                                std::string_view key) override;
  result<std::vector<stored_record>> load_records(std::string_view kind) override;
  status write_records(std::string_view kind, std::vector<record_write> writes) override;
  result<bool> claim_once(std::string_view key, std::int64_t expires_ms) override;
  status prune(std::int64_t before_ms) override;
  result<std::size_t> prune_records(std::string_view kind, std::int64_t now_ms) override;
  status ping() override;
  void close() override;
  result<event_lookup> find_event(std::string_view id) override;
  std::int64_t last_offset() const override;
  const char* name() const noexcept override { return "memory"; }

 private:
  using subject_key = std::pair<std::string, std::string>;  // (tenant, subject)

  std::mutex append_mu_;  // serializes append(): assignment, insertion, listener call
  append_listener listener_;

  mutable std::shared_mutex mu_;  // guards everything below
  bool closed_ = false;
  std::int64_t last_offset_ = 0;
  std::int64_t last_time_ms_ = 0;
  std::map<std::int64_t, event_ptr> events_;  // by offset
  // The offset of each event of events_ by id (find_event); the key views the event's own id,
  // which lives as long as the event stays in events_ (erased together).
  std::unordered_map<std::string_view, std::int64_t> by_id_;
  std::map<subject_key, event_ptr> states_;
  std::set<subject_key> seen_;
  std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> records_;
  std::unordered_map<std::string, std::int64_t> once_;  // key -> expires_ms
};

}  // namespace herald
