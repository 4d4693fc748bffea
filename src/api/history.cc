// GET /v1/events (native.md §2, §4 "History bounds"): scoped, filtered, paged by cursor.
#include <algorithm>
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/json_util.h"
#include "api/native_routes.h"
#include "api/numbers.h"
#include "auth/crypto.h"
#include "core/clock.h"

namespace herald {
namespace json = boost::json;
namespace {

constexpr std::size_t scan_batch = 500;
constexpr std::size_t first_batch = 32;       // events of unknown size: read a few first
constexpr std::size_t max_scan_batches = 20;  // bounds one request's work; the cursor resumes

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t end = std::min(s.find(',', pos), s.size());
    if (end > pos) out.emplace_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

http_response read_history(services& s, const principal& who, const http_request& req) {
  if (!who.has(scope_history))
    return error_response(errc::forbidden, "the history scope is required");
  // The cursor carries the whole query: other parameters beside it are ignored.
  std::string query = req.query;
  std::int64_t after = 0;
  if (auto cur = query_param(req.query, "cursor"); cur && !cur->empty()) {
    auto raw = base64url_decode(*cur);
    boost::system::error_code ec;
    json::value v = raw ? json::parse(*raw, ec) : json::value();
    if (!raw || ec || !v.is_object() || !v.as_object().contains("q") ||
        !v.as_object().at("q").is_string() || !v.as_object().contains("a") ||
        !v.as_object().at("a").is_int64() || v.as_object().at("a").as_int64() < 0)
      return error_response(errc::bad_message, "cursor: malformed");
    query = std::string(v.as_object().at("q").as_string());
    after = v.as_object().at("a").as_int64();
  }
  log_query q;
  if (auto since = query_param(query, "since")) {
    if (since->rfind("offset:", 0) == 0) {
      // Offsets are never negative and the store keeps them as int64.
      auto n = number_param("since offset", std::string_view(*since).substr(7), 0,
                            std::numeric_limits<std::int64_t>::max());
      if (!n) return error_response(n.err());
      q.after_offset = static_cast<std::int64_t>(*n);
    } else if (auto t = parse_rfc3339_ms(*since)) {
      q.since_ms = *t;
    } else {
      return error_response(errc::bad_message, "since: an RFC 3339 time or offset:N");
    }
  }
  if (auto until = query_param(query, "until")) {
    auto t = parse_rfc3339_ms(*until);
    if (!t) return error_response(errc::bad_message, "until: an RFC 3339 time");
    q.until_ms = *t;
  }
  std::size_t limit = 100;
  if (auto l = query_param(query, "limit")) {
    auto n = number_param("limit", *l, 1, 1000);
    if (!n) return error_response(n.err());
    limit = static_cast<std::size_t>(*n);
  }
  filter_spec spec;
  spec.topic = query_param(query, "topic").value_or("/**");
  if (auto types = query_param(query, "types")) spec.types = split_commas(*types);
  if (auto subject = query_param(query, "subject")) {
    if (!valid_subject_id(*subject))
      return error_response(errc::bad_message, "subject: not a valid subject id");
    q.subject = *subject;
  }
  auto f = filter::compile(spec, who.tenant, s.native.filters);
  if (!f) return error_response(errc::bad_message, f.err().message);
  if (who.is_admin_app()) {
    if (auto t = query_param(query, "tenant")) q.tenants.push_back(*t);
  } else {
    q.tenants.push_back(who.tenant);
  }
  q.after_offset = std::max(q.after_offset, after);
  // Rows are read in batches sized by what the events read so far weigh, so that one batch
  // holds about max_history_bytes at most (large events: a few at a time).
  q.limit = std::min(first_batch, limit + 1);
  std::size_t read_bytes = 0, read_rows = 0;

  // The reply grows as rows are read, up to max_history_bytes: the page ends before the event
  // that would pass it (the first always goes) and next_cursor continues at that event.
  const std::size_t max_bytes = s.native.max_history_bytes;
  std::string out = "{\"events\":[";
  std::size_t found = 0;
  std::int64_t last = q.after_offset;  // everything up to it is answered (or not visible)
  bool exhausted = false, full = false;
  for (std::size_t b = 0; b < max_scan_batches && found < limit && !full; ++b) {
    auto rows = s.st.read(q);
    if (!rows) return error_response(rows.err());
    for (const event_ptr& e : *rows) {
      read_bytes += e->data.size() + e->topic.size();
      ++read_rows;
      if (!may_see(who, *e, &s.dir) || !f->matches(*e)) {
        last = e->offset;
        continue;
      }
      std::string one = render_event_json(*e);
      if (found > 0 && out.size() + one.size() + 64 > max_bytes) {
        full = true;
        break;
      }
      if (found) out += ',';
      out += one;
      last = e->offset;
      if (++found == limit) break;
    }
    if (full) break;
    if (rows->size() < q.limit && found < limit) {
      exhausted = true;
      break;
    }
    q.after_offset = last;
    const std::size_t avg =
        std::max<std::size_t>(1, read_bytes / std::max<std::size_t>(1, read_rows));
    q.limit = std::clamp<std::size_t>(max_bytes / avg, 1, scan_batch);
  }
  out += "],\"next_cursor\":";
  if (exhausted) {
    out += "null";
  } else {
    json::object c{{"q", query}, {"a", last}};
    out += json_quote(base64url_encode(json::serialize(c)));
  }
  out += '}';
  return json_response(200, std::move(out));
}

}  // namespace herald
