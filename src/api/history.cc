// GET /v1/events (native.md §2, §4 "History bounds"): scoped, filtered, paged by cursor.
#include <algorithm>
#include <limits>
#include <memory>

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

// One page of history as it is read: each step reads one batch of rows and renders what the
// caller may see, so the reply goes out batch by batch, never built whole. The page ends at
// `limit` events, before the event that would take it past `max_bytes` (the first always
// goes), after max_scan_batches reads, or at the end of the log; next_cursor continues it.
struct history_page {
  services* s;
  principal who;
  std::string query;  // what the cursor carries
  log_query q;
  filter f;
  std::size_t limit, max_bytes;
  std::size_t found = 0, bytes = 0, batches = 0, read_bytes = 0, read_rows = 0;
  std::int64_t last = 0;  // everything up to it is answered (or not visible)

  // Appends the next batch's events (and, at the end, the page's tail) to `out`; false once
  // the page is complete.
  result<bool> step(std::string& out) {
    auto rows = s->st.read(q);
    if (!rows) return rows.err();
    ++batches;
    bool full = false;
    for (const event_ptr& e : *rows) {
      read_bytes += e->data.size() + e->topic.size();
      ++read_rows;
      if (!may_see(who, *e, &s->dir) || !f.matches(*e)) {
        last = e->offset;
        continue;
      }
      std::string one = render_event_json(*e);
      if (found > 0 && bytes + one.size() + 64 > max_bytes) {
        full = true;
        break;
      }
      if (found) out += ',';
      bytes += one.size() + 1;
      out += one;
      last = e->offset;
      if (++found == limit) break;
    }
    if (full || found == limit || batches >= max_scan_batches) {
      finish(out, false);
      return false;
    }
    if (rows->size() < q.limit) {
      finish(out, true);
      return false;
    }
    q.after_offset = last;
    // Batches sized by what the events read so far weigh: about max_bytes a read at most.
    const std::size_t avg =
        std::max<std::size_t>(1, read_bytes / std::max<std::size_t>(1, read_rows));
    q.limit = std::clamp<std::size_t>(max_bytes / avg, 1, scan_batch);
    return true;
  }

  void finish(std::string& out, bool exhausted) const {
    out += "],\"next_cursor\":";
    if (exhausted) {
      out += "null";
    } else {
      json::object c{{"q", query}, {"a", last}};
      out += json_quote(base64url_encode(json::serialize(c)));
    }
    out += '}';
  }
};

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
  auto f = filter::compile(spec, who.tenant, s.native->filters);
  if (!f) return error_response(errc::bad_message, f.err().message);
  if (who.is_admin_app()) {
    if (auto t = query_param(query, "tenant")) q.tenants.push_back(*t);
  } else {
    q.tenants.push_back(who.tenant);
  }
  q.after_offset = std::max(q.after_offset, after);
  q.limit = std::min(first_batch, limit + 1);
  auto page = std::make_shared<history_page>(history_page{
      &s, who, std::move(query), std::move(q), std::move(*f), limit, s.native->max_history_bytes});
  page->last = page->q.after_offset;
  // The first batch is read here, so that a store failure is still an error status; the rest
  // are read and written one batch at a time (http_response::stream).
  std::string first = "{\"events\":[";
  page->bytes = first.size();
  auto more = page->step(first);
  if (!more) return error_response(more.err());
  if (!*more) return json_response(200, std::move(first));
  http_response r = json_response(200, std::string());
  r.stream = [page, first = std::move(first), started = false](std::string& out) mutable {
    if (!started) {
      started = true;
      out += first;
      first = std::string();
      return true;
    }
    auto m = page->step(out);
    if (m) return *m;
    page->finish(out, false);  // the store failed mid-page: the page ends, the cursor continues
    return false;
  };
  return r;
}

}  // namespace herald
