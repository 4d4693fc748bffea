// Native REST routes (native.md §2): OAuth, ws tokens, publish, history, state, health, metrics.
#include "api/native_routes.h"

#include <boost/json/serialize.hpp>

#include "api/authn.h"
#include "api/json_util.h"
#include "api/prometheus.h"
#include "core/clock.h"
#include "core/metrics.h"

namespace herald {
namespace json = boost::json;
namespace {

std::string scope_string(std::uint32_t scopes) {
  std::string out;
  for (const auto& n : scope_names(scopes)) {
    if (!out.empty()) out += ' ';
    out += n;
  }
  return out;
}

http_response oauth_token(services& s, const http_request& req) {
  if (req.body.size() > s.native->max_body_bytes)
    return error_response(errc::too_large, "body larger than 65536 bytes");
  const auto grant = form_field(req.body, "grant_type")
                         .value_or(query_param(req.query, "grant_type").value_or(""));
  if (grant != "client_credentials")
    return error_response(errc::bad_message, "grant_type: only client_credentials is supported");
  auto app = authenticate_client(s, req, form_field(req.body, "client_id").value_or(""),
                                 form_field(req.body, "client_secret").value_or(""));
  if (!app) return error_response(app.err());
  token_claims c;
  c.aud = "native";
  c.kind = "access";
  c.jti = random_token(12);
  c.principal_kind = "app";
  c.tenant = app->tenant;
  c.app_id = app->id;
  c.iat_ms = now_ms();
  c.exp_ms = c.iat_ms + s.native->access_token_ttl_s * 1000;
  c.scopes = scope_string(app->scopes);
  json::object o{{"access_token", s.signer.issue(c)},
                 {"token_type", "bearer"},
                 {"expires_in", s.native->access_token_ttl_s},
                 {"scope", c.scopes}};
  return json_response(200, o);
}

std::string ws_base(const services& s, const http_request& req) {
  if (!s.public_url.empty()) {
    std::string u = s.public_url;
    if (u.rfind("https://", 0) == 0) return "wss://" + u.substr(8);
    if (u.rfind("http://", 0) == 0) return "ws://" + u.substr(7);
    return u;
  }
  return (req.scheme == "https" ? "wss://" : "ws://") + req.host;
}

http_response ws_token(services& s, const http_request& req) {
  auto who = authenticate(s, req, "native");
  if (!who) return error_response(who.err());
  if (!who->has(scope_subscribe))
    return error_response(errc::forbidden, "the subscribe scope is required");
  const token_claims c = claims_for(*who, "native", "ws", s.native->ws_token_ttl_s * 1000);
  json::object o{{"ws_access_token", s.signer.issue(c)},
                 {"uri", ws_base(s, req) + "/v1/ws"},
                 {"expires_in", s.native->ws_token_ttl_s}};
  return json_response(200, o);
}

http_response subject_state(services& s, const principal& who, const http_request& req,
                            const std::string& subject) {
  if (!who.has(scope_history))
    return error_response(errc::forbidden, "the history scope is required");
  std::string tenant = who.tenant;
  if (auto t = query_param(req.query, "tenant"); t && who.is_admin_app()) tenant = *t;
  const auto not_found = [&] {
    return error_response(errc::not_found, "no state for subject '" + subject + "'");
  };
  if (!valid_subject_id(subject)) return not_found();
  auto st = s.st.state(tenant, subject);
  if (!st) return error_response(st.err());
  if (!*st || !may_see(who, ***st, &s.dir)) return not_found();
  if (auto f = s.dir.flags(tenant, subject); f && f->corrupted) return not_found();
  return json_response(200, render_event_json(***st));
}

}  // namespace

void add_native_routes(router& r, services& s) {
  r.add("POST", "/v1/oauth/token", [&s](route_match& m) { return oauth_token(s, m.req); });
  r.add("POST", "/v1/ws-tokens", [&s](route_match& m) { return ws_token(s, m.req); });
  r.add("POST", "/v1/events", [&s](route_match& m) {
    auto who = authenticate(s, m.req, "native");
    if (!who) return error_response(who.err());
    return publish_events(s, *who, m.req);
  });
  r.add("GET", "/v1/events", [&s](route_match& m) {
    auto who = authenticate(s, m.req, "native");
    if (!who) return error_response(who.err());
    return read_history(s, *who, m.req);
  });
  r.add("GET", "/v1/subjects/{subject}/state", [&s](route_match& m) {
    auto who = authenticate(s, m.req, "native");
    if (!who) return error_response(who.err());
    return subject_state(s, *who, m.req, m.params[0]);
  });
  r.add("GET", "/healthz",
        [](route_match&) { return json_response(200, std::string("{\"status\":\"ok\"}")); });
  r.add("GET", "/readyz", [&s](route_match&) {
    if (status st = s.st.ping(); !st)
      return error_response(errc::unavailable, "store not reachable: " + st.err().message);
    return json_response(200, std::string("{\"status\":\"ready\"}"));
  });
  r.add("GET", "/metrics", [&s](route_match&) {
    auto& m = global_metrics();
    auto& h = s.h.stats();
    std::string out;
    write_metric(out, "herald_connections", "gauge", "Open WebSocket connections.",
                 static_cast<double>(m.connections_open.load()));
    write_metric(out, "herald_connections_total", "counter", "WebSocket connections accepted.",
                 static_cast<double>(m.connections_total.load()));
    write_metric(out, "herald_sessions", "gauge", "Sessions held (attached or resumable).",
                 static_cast<double>(h.sessions_open.load()));
    write_metric(out, "herald_events_published_total", "counter", "Events appended and fanned out.",
                 static_cast<double>(h.published.load()));
    write_metric(out, "herald_deliveries_total", "counter", "Events delivered to sessions.",
                 static_cast<double>(h.deliveries.load()));
    write_metric(out, "herald_queued_bytes", "gauge", "Bytes waiting in socket send queues.",
                 static_cast<double>(m.queued_bytes.load()));
    write_metric(out, "herald_frames_sent_total", "counter", "WebSocket messages written.",
                 static_cast<double>(m.frames_sent.load()));
    write_metric(out, "herald_http_requests_total", "counter", "HTTP requests served.",
                 static_cast<double>(m.http_requests.load()));
    write_labelled(out, "herald_closes_total", {"dialect", "tenant", "code"},
                   "WebSocket closes by dialect, tenant and close code.", m.closes);
    write_labelled(out, "herald_auth_failures_total", {"dialect", "reason"},
                   "Failed authentications by dialect and reason.", m.auth_failures);
    write_labelled(out, "herald_refusals_total", {"dialect", "limit"},
                   "Requests and sockets refused by a limit (429, 4029, 4010).", m.refusals);
    write_metric(out, "herald_store_errors_total", "counter", "Store operations that failed.",
                 static_cast<double>(m.store_errors.load()));
    write_metric(out, "herald_cluster_control_gaps_total", "counter",
                 "Times this node found control messages trimmed unread (and resynced).",
                 static_cast<double>(m.cluster_control_gaps.load()));
    write_labelled(out, "herald_recoveries_total", "outcome", "Session resumes by outcome.",
                   m.recoveries_by_outcome);
    write_histogram(out, "herald_publish_commit_seconds",
                    "Publish request to durable commit, seconds.", m.publish_commit_ms);
    write_histogram(out, "herald_publish_delivery_seconds",
                    "Event time to its frame queued on a socket, seconds (sampled).",
                    m.publish_delivery_ms);
    http_response res = json_response(200, std::move(out));
    res.content_type = "text/plain; version=0.0.4";
    return res;
  });
}

}  // namespace herald
