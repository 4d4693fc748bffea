// The tracker dialect (tracker.md): its `[tracker]` table; the rules of subjects of kind
// `tracker` (ids, source_id, lifecycle events) and its publish validator, installed whether or
// not it is served; the Atmosphere socket and the REST companions under its prefix (default
// "/tracker"), each path with and without `/v2`. Registered in app/dialects.cc.
#include <boost/json.hpp>

#include "api/cluster_link.h"
#include "dialect/dialect.h"
#include "dialect/tracker/tracker_codec.h"
#include "dialect/tracker/tracker_context.h"
#include "dialect/tracker/tracker_routes.h"
#include "dialect/tracker/tracker_socket.h"

namespace herald {
namespace {

namespace json = boost::json;

// §6: a tracker id is a decimal 1…2147483647 held by no other tenant; attrs carry source_id.
status check_tracker(const services& s, subject_record& r) {
  if (!tracker::parse_tracker_id(r.id))
    return {errc::bad_message, "id: a tracker id is a decimal 1..2147483647"};
  for (const auto& other : s.dir.subjects_with_id(r.id))
    if (other.tenant != r.tenant && other.kind == "tracker")
      return {errc::conflict, "tracker '" + r.id + "' is registered in another tenant"};
  boost::system::error_code ec;
  json::value v = json::parse(r.attrs, ec);
  if (ec || !v.is_object()) return {errc::bad_message, "attrs: must be an object"};
  json::object& o = v.get_object();
  if (const auto* sid = o.if_contains("source_id")) {
    if (!sid->is_int64() || sid->get_int64() < 0)
      return {errc::bad_message, "attrs.source_id: a non-negative integer"};
  } else {
    o["source_id"] = *tracker::parse_tracker_id(r.id);
  }
  r.attrs = json::serialize(o);
  return {};
}

// §5.4: a blocked change emits block/unblock, corrupted false→true emits corrupt (after it).
std::vector<event_draft> lifecycle_events(const subject_record* before, const subject_record& r) {
  std::vector<event_draft> out;
  if (before == nullptr) return out;
  auto make = [&r](std::string_view what) {
    event_draft d;
    d.topic = "/trackers/" + r.id;
    d.type = "lifecycle";
    d.tenant = r.tenant;
    d.subject = r.id;
    d.data = tracker::lifecycle_data(tracker::source_id_of(r), what);
    return d;
  };
  if (before->blocked != r.blocked) out.push_back(make(r.blocked ? "block" : "unblock"));
  if (!before->corrupted && r.corrupted) out.push_back(make("corrupt"));
  return out;
}

// §5.3: a tracker's `lifecycle` events are the server's; its `state` data is a JSON object.
status validate_tracker_draft(const services& s, const event_draft& d) {
  if (d.subject.empty() || (d.type != "lifecycle" && d.type != "state")) return {};
  auto r = s.dir.subject(d.tenant, d.subject);
  if (!r || r->kind != "tracker") return {};
  if (d.type == "lifecycle")
    return {errc::forbidden, "type: a tracker's lifecycle events are the server's"};
  const auto first = d.data.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || d.data[first] != '{')
    return {errc::bad_message, "data: a tracker state is a JSON object"};
  return {};
}

class tracker_dialect final : public dialect {
 public:
  tracker_dialect() : dialect("tracker", "/tracker") {
    tracker_limits& l = limits_;
    config_
        .integer("heartbeat_interval_ms", "ms", "announced; a server X after this much silence",
                 l.heartbeat_interval_ms)
        .integer("heartbeat_timeout_ms", "ms", "no client frame: close 4008",
                 l.heartbeat_timeout_ms)
        .integer("max_frame_bytes", "bytes", "a larger client frame: close 1009", l.max_frame_bytes)
        .integer("max_frames_per_second", "", "client frames per socket, X included (error 15)",
                 l.max_frames_per_second)
        .integer("max_trackers_per_request", "", "trackers in one frame (error 9)",
                 l.max_trackers_per_request)
        .integer("max_trackers_per_socket", "", "trackers one socket holds (error 9)",
                 l.max_trackers_per_socket)
        .integer("max_request_bytes", "bytes", "a REST body (412, code 9)", l.max_request_bytes)
        .integer("hash_ttl_s", "s", "a hash lives this long after its last use", l.hash_ttl_s)
        .integer("max_hashes_per_user", "", "live hashes of one user (code 104)",
                 l.max_hashes_per_user)
        .integer("login_failures_per_minute", "", "failed logins per login (code 105)",
                 l.login_failures_per_minute)
        .sighup({"heartbeat_interval_ms", "heartbeat_timeout_ms", "max_frame_bytes",
                 "max_frames_per_second", "max_trackers_per_request", "max_trackers_per_socket",
                 "max_request_bytes", "hash_ttl_s", "max_hashes_per_user",
                 "login_failures_per_minute"})
        .rule("prefix", "'/name' required (no trailing '/')", [this] { return !prefix().empty(); })
        .rule(
            "heartbeat_interval_ms", "1000..3600000",
            [&l] { return l.heartbeat_interval_ms >= 1000 && l.heartbeat_interval_ms <= 3600000; })
        .rule("heartbeat_timeout_ms", "more than heartbeat_interval_ms",
              [&l] { return l.heartbeat_timeout_ms > l.heartbeat_interval_ms; })
        .at_least("max_frame_bytes", l.max_frame_bytes, std::size_t{256})
        .at_least("max_frames_per_second", l.max_frames_per_second, std::size_t{1})
        .at_least("max_trackers_per_request", l.max_trackers_per_request, std::size_t{1})
        .at_least("max_trackers_per_socket", l.max_trackers_per_socket, std::size_t{1})
        .at_least("max_request_bytes", l.max_request_bytes, std::size_t{256})
        .at_least("hash_ttl_s", l.hash_ttl_s, std::int64_t{60})
        .at_least("max_hashes_per_user", l.max_hashes_per_user, std::size_t{1})
        .at_least("login_failures_per_minute", l.login_failures_per_minute, std::size_t{1});
  }

  // Kept when disabled (design.md §3): tracker subjects keep their rules and lifecycle events.
  void install_admin(dialect_admin& a) override {
    const services* s = &a.svc;
    a.svc.validators.push_back([s](const event_draft& d) { return validate_tracker_draft(*s, d); });
    subject_kind_rules rules;
    rules.check = [s](const subject_record*, subject_record& r) { return check_tracker(*s, r); };
    rules.events = lifecycle_events;
    rules.event_types = {"lifecycle"};
    a.svc.subject_kinds["tracker"] = std::move(rules);
  }

  void install(dialect_install& d) override {
    cx_ = std::make_unique<tracker_context>(d.svc, limits_, d.render_slot);
    tracker_context* cx = cx_.get();
    for (const char* path : {"/v2/event/subscription", "/event/subscription"}) {
      ws_mount m;
      m.path = d.prefix + path;
      m.current_max_message_bytes = [cx] { return cx->cfg->max_frame_bytes; };
      m.factory = [cx](ws_connection& conn, const http_request& up) -> std::unique_ptr<ws_handler> {
        return std::make_unique<tracker_socket>(*cx, conn, up);
      };
      d.mounts.push_back(std::move(m));
    }
    tracker::add_tracker_routes(d.routes, *cx);
    // Cluster mode: a close request or a logout another node took, for sockets this node holds.
    if (d.svc.cluster != nullptr) {
      d.svc.cluster->on_broadcast(
          std::string(tracker::close_broadcast_kind),
          [cx](const std::string& uuid) { tracker::close_uuid(*cx, uuid); });
      d.svc.cluster->on_broadcast(
          std::string(tracker::logout_broadcast_kind), [cx](const std::string& arg) {
            const auto sp = arg.find(' ');
            if (sp != std::string::npos)
              tracker::logout_sockets(*cx, arg.substr(0, sp), arg.substr(sp + 1));
          });
    }
  }

  http_response serve(const router&, const http_request& req) const override {
    return tracker::serve_rest(*cx_, req);
  }

  void reload() override {
    if (!cx_) return;
    cx_->cfg.set(limits_);
    const auto per_minute = static_cast<double>(limits_.login_failures_per_minute);
    cx_->login_failures.set_rates(per_minute / 60.0, per_minute);
  }

  // Transport refusals under the prefix in this dialect's body (§8: a body too big is 412, 9).
  http_response render_error(const http_request&, int status, std::string message) const override {
    return tracker::error_reply(status == 413 ? tracker::too_large : tracker::wrong_format,
                                message);
  }

  // Logins count per login (§2: 105), not against the per-address limiter.
  bool counts_auth_failures() const override { return false; }

 private:
  tracker_limits limits_;
  std::unique_ptr<tracker_context> cx_;
};

}  // namespace

std::unique_ptr<dialect> make_tracker_dialect() { return std::make_unique<tracker_dialect>(); }

}  // namespace herald
