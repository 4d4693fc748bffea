// The event: what publishers append and subscribers receive. Immutable once appended and shared
// by every shard and connection through event_ptr; `data` keeps the publisher's exact bytes.
// Thread-safe: const after construction; the lazily filled caches below are once_latch guarded.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "core/once_latch.h"

namespace herald {

struct event {
  std::string id;           // "evt_…"
  std::int64_t offset = 0;  // position in the tenant's stream (global, strictly increasing)
  std::string topic;
  std::string type;
  std::string tenant;
  std::string app;      // empty: the event names no app
  std::string subject;  // empty: none
  std::int64_t time_ms = 0;
  std::string data;  // a JSON object, byte-exact as published
  bool retain = false;

  event();
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  ~event();

  // `data` parsed once, for `where` filters; null when it does not parse as an object.
  const boost::json::object* data_object() const;

  // A rendering of this event cached per slot (one slot per dialect variant, see
  // render_slots below): `make` runs at most once per slot, whichever shard asks first.
  const std::string& rendered(std::size_t slot,
                              const std::function<std::string(const event&)>& make) const;

  static constexpr std::size_t render_slots = 8;

 private:
  struct parsed;
  mutable once_latch parse_once_;
  mutable std::unique_ptr<parsed> parsed_;
  mutable std::array<once_latch, render_slots> render_once_;
  mutable std::array<std::string, render_slots> render_;
};

using event_ptr = std::shared_ptr<const event>;

// What a publisher asks to append: an event without its server-given id, offset and time.
struct event_draft {
  std::string topic, type, tenant, app, subject, data;
  bool retain = false;
};

// Validation of the model's identifiers (native.md §1).
bool valid_tenant_id(std::string_view s) noexcept;   // [A-Za-z0-9_.-]{1,64}
bool valid_type(std::string_view s) noexcept;        // [A-Za-z0-9_.:-]{1,128}
bool valid_subject_id(std::string_view s) noexcept;  // [A-Za-z0-9_.:-]{1,128}

// A new opaque id with a type prefix ("evt_", "ses_", …): 22 base62 digits of CSPRNG bytes
// (about 130 bits), drawn from a per-thread block so an id costs no system call.
std::string new_id(std::string_view prefix);

// `n` random bytes from the system CSPRNG, as URL-safe base64 without padding.
std::string random_token(std::size_t n_bytes);

}  // namespace herald
