// Tests only: what the store test programs share — a draft event, a one-event batch, and a
// bounded wait for a condition.
// Thread-safe: pure functions (eventually polls from the calling thread).
#pragma once

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/event.h"

namespace herald::test {

inline event_draft draft(std::string tenant, std::string subject = "", bool retain = false,
                         std::string data = R"({"n":1})", std::string type = "thing.happened") {
  event_draft d;
  d.topic = "/t/" + tenant + "/things";
  d.type = std::move(type);
  d.tenant = std::move(tenant);
  d.subject = std::move(subject);
  d.data = std::move(data);
  d.retain = retain;
  return d;
}

inline std::vector<event_draft> one(event_draft d) {
  std::vector<event_draft> v;
  v.push_back(std::move(d));
  return v;
}

// Polls `pred` every 5 ms until it holds or `limit` has passed; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace herald::test
