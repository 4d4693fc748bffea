// Shared by the store back ends: the checks every appended draft passes before anything of its
// batch is stored, and the event a draft becomes (the api validates richer rules first; these guard
// the store's own invariants). Thread-safe: pure functions.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include "core/errc.h"
#include "core/event.h"

namespace herald::store_detail {

// Whether `text` parses as one JSON object (the parser's default limits apply).
inline bool is_json_object_text(std::string_view text) {
  // Cheap rejects first; a parse then confirms (allocations come from a stack buffer first).
  std::size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos || text[b] != '{') return false;
  unsigned char buf[4096];
  boost::json::monotonic_resource mr(buf, sizeof buf);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, &mr);
  return !ec && v.is_object();
}

// The first problem of `batch`, naming the field ("events[2].tenant: ..."); ok when none.
inline status check_batch(const std::vector<event_draft>& batch) {
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const event_draft& d = batch[i];
    const std::string at = "events[" + std::to_string(i) + "].";
    if (!valid_tenant_id(d.tenant)) return {errc::bad_message, at + "tenant: invalid tenant id"};
    if (d.topic.empty() || d.topic.front() != '/' || d.topic.size() > 1024) {
      return {errc::bad_message, at + "topic: must start with '/' (at most 1024 bytes)"};
    }
    if (!valid_type(d.type)) return {errc::bad_message, at + "type: invalid event type"};
    if (!d.subject.empty() && !valid_subject_id(d.subject)) {
      return {errc::bad_message, at + "subject: invalid subject id"};
    }
    if (d.retain && d.subject.empty()) {
      return {errc::bad_message, at + "retain: a retained event needs a subject"};
    }
    if (!is_json_object_text(d.data)) {
      return {errc::bad_message, at + "data: not a JSON object"};
    }
  }
  return {};
}

// The event a draft becomes, its fields moved in and its id new; offset and time are the back
// end's to assign.
inline std::shared_ptr<event> event_from_draft(event_draft&& d) {
  auto ev = std::make_shared<event>();
  ev->id = new_id("evt_");
  ev->topic = std::move(d.topic);
  ev->type = std::move(d.type);
  ev->tenant = std::move(d.tenant);
  ev->app = std::move(d.app);
  ev->subject = std::move(d.subject);
  ev->data = std::move(d.data);
  ev->retain = d.retain;
  return ev;
}

}  // namespace herald::store_detail
