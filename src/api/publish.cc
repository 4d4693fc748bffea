// POST /v1/events (native.md §2.1): validation, idempotency, durable append.
#include <algorithm>
#include <chrono>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/json_util.h"
#include "api/native_routes.h"
#include "api/raw_json.h"
#include "auth/crypto.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/op_events.h"

namespace herald {
namespace json = boost::json;
namespace {

error bad(std::string m) { return {errc::bad_message, std::move(m)}; }

result<event_draft> check_event(services& s, const principal& who, const json::object& o,
                                std::string_view raw, const std::string& where) {
  for (const char* k : {"id", "offset", "time"})
    if (o.contains(k)) return bad(where + k + ": set by the server, not the publisher");
  event_draft d;
  auto topic = get_string(o, "topic");
  if (!topic) return bad(where + topic.err().message);
  if (!*topic) return bad(where + "topic: required");
  if (!valid_topic(**topic))
    return bad(where +
               "topic: must start with '/', have no empty, `*` or `**` segment and no "
               "control character, at most 1024 bytes");
  d.topic = **topic;
  auto type = get_string(o, "type");
  if (!type) return bad(where + type.err().message);
  if (!*type || !valid_type(**type)) return bad(where + "type: required, [A-Za-z0-9_.:-]{1,128}");
  d.type = **type;
  const auto* data = o.if_contains("data");
  if (data == nullptr || !data->is_object()) return bad(where + "data: must be a JSON object");
  auto raw_data = raw_member(raw, "data");
  if (!raw_data) return bad(where + "data: must be a JSON object");
  d.data = std::string(*raw_data);
  auto subject = get_string(o, "subject");
  if (!subject) return bad(where + subject.err().message);
  if (*subject) {
    if (!valid_subject_id(**subject)) return bad(where + "subject: [A-Za-z0-9_.:-]{1,128}");
    d.subject = **subject;
  }
  auto tenant = get_string(o, "tenant");
  if (!tenant) return bad(where + tenant.err().message);
  d.tenant = tenant->value_or(who.tenant);
  if (d.tenant != who.tenant && !who.is_admin_app())
    return error{errc::forbidden,
                 where + "tenant: only an admin app may publish to another tenant"};
  if (!s.dir.tenant_exists(d.tenant))
    return bad(where + "tenant: unknown tenant '" + d.tenant + "'");
  auto app = get_string(o, "app");
  if (!app) return bad(where + app.err().message);
  if (*app) {
    auto a = s.dir.app(**app);
    if (!a || a->tenant != d.tenant)
      return bad(where + "app: not an app of tenant '" + d.tenant + "'");
    d.app = **app;
  }
  auto retain = get_bool(o, "retain");
  if (!retain) return bad(where + retain.err().message);
  d.retain = retain->value_or(false);
  if (d.retain && d.subject.empty()) return bad(where + "retain: requires subject");
  if (!d.subject.empty()) {
    if (auto f = s.dir.flags(d.tenant, d.subject); f && f->corrupted)
      return error{errc::subject_corrupted, where + "subject: '" + d.subject + "' is corrupted"};
  }
  for (const auto& v : s.validators) {
    status st = v(d);
    if (!st) return error{st.err().code, where + st.err().message};
  }
  return d;
}

// The arena's first block: about the tree's size for a body of `n` bytes, within bounds.
std::size_t parse_arena_bytes(std::size_t n) {
  return std::clamp<std::size_t>(2 * n, 1024, 1 << 20);
}

std::string reply_body(const std::vector<event_ptr>& events) {
  std::string out;
  out.reserve(16 + events.size() * 128);
  out += "{\"events\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    const event& e = *events[i];
    if (i) out += ',';
    out += "{\"id\":";
    append_json_quoted(out, e.id);
    out += ",\"offset\":";
    append_decimal(out, e.offset);
    out += ",\"time\":\"";
    out += format_rfc3339_ms(e.time_ms);
    out += "\",\"tenant\":";
    append_json_quoted(out, e.tenant);
    out += '}';
  }
  out += "]}";
  return out;
}

// The reply to a publish once the store has answered.
http_response publish_reply(std::chrono::steady_clock::time_point started,
                            result<std::vector<event_ptr>> appended) {
  if (!appended) {
    if (appended.err().code == errc::unavailable || appended.err().code == errc::internal)
      op_events::store_error("append", appended.err().message);
    return error_response(appended.err());
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  global_metrics().publish_commit_ms.observe(ms);
  return json_response(201, reply_body(*appended));
}

}  // namespace

http_response publish_events(services& s, const principal& who, const http_request& req) {
  const auto started = std::chrono::steady_clock::now();
  global_metrics().publish_requests.fetch_add(1, std::memory_order_relaxed);
  if (!who.has(scope_publish))
    return error_response(errc::forbidden, "the publish scope is required");
  if (req.body.size() > s.native->max_publish_bytes)
    return error_response(errc::too_large, "body larger than max_publish_bytes");

  // Idempotency: scoped to the publishing app; same key + same body = the original reply.
  std::string idem_key;
  if (const auto* k = req.header("idempotency-key")) {
    if (k->empty() || k->size() > 128)
      return error_response(errc::bad_message, "Idempotency-Key: 1 to 128 characters");
    idem_key = "idem/" + who.app_id + "/" + *k;
  }
  const std::string body_hash = idem_key.empty() ? std::string() : sha256_hex(req.body);
  // Shared with a later reply's completion: the key is in progress until the commit answers.
  struct inflight_guard {
    services& s;
    std::string key;
    ~inflight_guard() {
      if (key.empty()) return;
      std::lock_guard g(s.idem_mu);
      s.idem_inflight.erase(key);
    }
  };
  auto guard = std::make_shared<inflight_guard>(inflight_guard{s, {}});
  if (!idem_key.empty()) {
    {
      std::lock_guard g(s.idem_mu);
      if (!s.idem_inflight.insert(idem_key).second)
        return error_response(errc::conflict, "a request with this Idempotency-Key is in progress");
    }
    guard->key = idem_key;
    auto prior = s.st.get_record("idem", idem_key);
    if (!prior) return error_response(errc::unavailable, "store unavailable");
    if (*prior) {
      boost::system::error_code ec;
      auto v = json::parse(**prior, ec);
      if (!ec && v.is_object()) {
        const auto& o = v.as_object();
        const auto* exp = o.if_contains("expires_ms");
        const bool live = exp != nullptr && exp->is_int64() && exp->get_int64() > now_ms();
        if (live) {
          if (o.at("hash").as_string() != body_hash)
            return error_response(errc::conflict, "Idempotency-Key reused with another body");
          return json_response(static_cast<int>(o.at("status").as_int64()),
                               std::string(o.at("body").as_string()));
        }
      }
    }
  }

  // The request's tree lives in one arena freed at once: no per-node malloc and free (the tree
  // never leaves this function; drafts copy what they keep).
  json::monotonic_resource arena(parse_arena_bytes(req.body.size()));
  auto parsed = parse_json(req.body, &arena);
  if (!parsed) return error_response(parsed.err());
  std::vector<event_draft> drafts;
  if (parsed->is_object()) {
    auto d = check_event(s, who, parsed->as_object(), req.body, "");
    if (!d) return error_response(d.err());
    drafts.push_back(std::move(*d));
  } else if (parsed->is_array()) {
    const auto& arr = parsed->as_array();
    if (arr.empty()) return error_response(errc::bad_message, "body: empty batch");
    if (arr.size() > s.native->max_batch)
      return error_response(errc::too_large, "batch of " + std::to_string(arr.size()) +
                                                 " events exceeds max_batch " +
                                                 std::to_string(s.native->max_batch));
    const auto raws = raw_array_elements(req.body);
    if (raws.size() != arr.size())
      return error_response(errc::bad_message, "body: malformed array");
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const std::string where = "[" + std::to_string(i) + "].";
      if (!arr[i].is_object())
        return error_response(errc::bad_message, where + ": must be an object");
      auto d = check_event(s, who, arr[i].as_object(), raws[i], where);
      if (!d) return error_response(d.err());
      if (!drafts.empty() && d->tenant != drafts.front().tenant)
        return error_response(errc::bad_message, where + "tenant: a batch must be of one tenant");
      drafts.push_back(std::move(*d));
    }
  } else {
    return error_response(errc::bad_message, "body: an event object or an array of them");
  }

  const auto n = static_cast<double>(drafts.size());
  if (!s.publish_limiter.take(who.app_id, n, now_ms())) {
    http_response r = error_response(error{
        errc::too_many_requests, "publish rate of this app exceeded", error_cause::publish_rate});
    r.headers.clear();
    r.headers.emplace_back(
        "Retry-After", std::to_string(s.publish_limiter.retry_after_s(who.app_id, n, now_ms())));
    return r;
  }
  // The idempotency record commits in the events' own transaction: after a crash a retry finds
  // either both (the first reply again) or neither (a first attempt), never events alone.
  append_record with;
  if (!idem_key.empty()) {
    with.kind = "idem";
    with.key = idem_key;
    with.json = [body_hash, window_ms = s.core.idempotency_window_s *
                                        1000](const std::vector<event_ptr>& events) {
      json::object rec{{"hash", body_hash},
                       {"status", 201},
                       {"body", reply_body(events)},
                       {"expires_ms", now_ms() + window_ms}};
      return json::serialize(rec);
    };
  }
  if (!s.st.appends_async())
    return publish_reply(started, s.st.append(std::move(drafts), std::move(with)));
  // The commit answers later: this thread goes back to the pool, and the writer's group commit
  // takes every publish in flight, not only as many as the pool has threads.
  http_response later;
  later.later = [&s, started, guard, drafts = std::move(drafts),
                 with = std::move(with)](std::function<void(http_response)> done) mutable {
    s.st.append_async(std::move(drafts), std::move(with),
                      [started, guard = std::move(guard),
                       done = std::move(done)](result<std::vector<event_ptr>> appended) mutable {
                        http_response r = publish_reply(started, std::move(appended));
                        // The key is free before the client can read the reply and retry.
                        guard.reset();
                        done(std::move(r));
                      });
  };
  return later;
}

}  // namespace herald
