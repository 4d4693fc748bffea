#include "bench/bench.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "client/client.h"

namespace herald::bench {

namespace json = boost::json;

namespace {

std::string now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Creates tenant `tenant` (if missing) and two apps in it; returns {app key, publisher key}.
std::pair<std::string, std::string> create_apps(const std::string& url,
                                                const std::string& admin_key,
                                                const std::string& tenant) {
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + admin_key}};
  auto t = client::http_call(url, "POST", "/v1/admin/tenants",
                             json::serialize(json::object{{"id", tenant}}), auth);
  if (t.status != 201 && t.status != 409)
    throw std::runtime_error("creating tenant: HTTP " + std::to_string(t.status) + " " + t.body);
  // Names unique per run, so a bench can run again against the same server.
  const std::string suffix =
      std::to_string(::getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  auto make = [&](const std::string& role) {
    auto a = client::http_call(
        url, "POST", "/v1/admin/apps",
        json::serialize(json::object{
            {"tenant", tenant}, {"name", "bench-" + role + "-" + suffix}, {"role", role}}),
        auth);
    if (a.status != 201)
      throw std::runtime_error("creating " + role + " app: HTTP " + std::to_string(a.status) + " " +
                               a.body);
    return std::string(json::parse(a.body).as_object().at("api_key").as_string());
  };
  auto sub = make("app");
  auto pub = make("publisher");
  return {sub, pub};
}

std::string mib(std::uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return b;
}

std::string num(double v, int decimals = 0) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// Cluster mode: an app created through one node reaches the others through the control stream
// (docs/cluster.md, within about a second). Waits until every other server knows every key (a
// state read answered 200, 403 or 404: authenticated), at most `timeout_s`. One probe per
// 250 ms: 4 failed authentications a second stay under the servers' default limit per address
// (native.auth_fail_rate 5/s), which the bench's subscribers, from the same address, need.
void wait_for_keys(const std::vector<server_address>& servers, const std::vector<std::string>& keys,
                   double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  for (std::size_t i = 1; i < servers.size(); ++i) {
    const std::string base = "http://" + servers[i].host + ":" + servers[i].port;
    for (const auto& key : keys) {
      if (key.empty()) continue;
      while (true) {
        const auto r =
            client::http_call(base, "GET", "/v1/subjects/bench-key-probe/state", "",
                              {{"Authorization", "Bearer " + key}}, std::chrono::seconds(5));
        if (r.status == 200 || r.status == 403 || r.status == 404) break;
        if (std::chrono::steady_clock::now() >= deadline)
          throw std::runtime_error("server " + servers[i].url +
                                   " does not accept the bench's API keys after " +
                                   num(timeout_s, 1) + " s (--connect-timeout): last answer HTTP " +
                                   std::to_string(r.status) + " " + r.body.substr(0, 200) +
                                   "; is it a node of the same cluster as " + servers[0].url + "?");
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
  }
}

}  // namespace

json::object to_json(const load_options& o, const load_result& r, const std::string& label) {
  json::object j;
  j["label"] = label;
  j["server"] = o.kind == server_kind::herald ? "herald" : "nats";
  j["time"] = now_rfc3339();
  if (o.servers.size() > 1) j["servers"] = o.servers.size();  // one server: no field, as before
  j["subscribers"] = o.subscribers;
  j["topics"] = o.topics;
  j["publishers"] = o.publishers;
  j["threads"] = o.threads;
  j["payload_bytes"] = o.payload_bytes;
  j["batch"] = o.batch;
  j["target_rate"] = o.rate;
  j["duration_s"] = o.duration_s;
  j["idle_s"] = o.idle_s;
  j["connected"] = r.connected;
  j["connect_errors"] = r.connect_errors;
  j["connect_s"] = r.connect_s;
  j["connect_rate"] = r.connect_rate;
  j["connect_p50_ms"] = r.connect_p50_ms;
  j["connect_p99_ms"] = r.connect_p99_ms;
  j["disconnects"] = r.disconnects;
  j["last_close_code"] = r.last_close_code;
  j["published"] = r.published;
  j["publish_errors"] = r.publish_errors;
  j["publish_rate"] = r.publish_rate;
  j["delivered"] = r.delivered;
  j["expected"] = r.expected;
  j["deliveries_per_s"] = r.deliveries_per_s;
  j["lat_p50_us"] = r.lat_p50_us;
  j["lat_p90_us"] = r.lat_p90_us;
  j["lat_p99_us"] = r.lat_p99_us;
  j["lat_p999_us"] = r.lat_p999_us;
  j["lat_max_us"] = r.lat_max_us;
  j["lat_mean_us"] = r.lat_mean_us;
  j["lost"] = r.lost;
  j["undelivered"] = r.undelivered;
  j["duplicates"] = r.duplicates;
  j["reordered"] = r.reordered;
  j["seq_gaps"] = r.seq_gaps;
  j["seq_backwards"] = r.seq_backwards;
  if (r.server_measured) {
    if (o.server_pids.size() > 1) j["server_pids"] = o.server_pids.size();  // the sum of them
    j["server_rss_before"] = r.server_rss_before;
    j["server_rss_connected"] = r.server_rss_connected;
    j["server_rss_end"] = r.server_rss_end;
    j["server_rss_peak"] = r.server_rss_peak;
    j["server_rss_per_conn"] = r.server_rss_per_conn;
    j["server_cpu_pct"] = r.server_cpu_pct;
    j["server_idle_cpu_pct"] = r.server_idle_cpu_pct;
    j["server_connect_cpu_pct"] = r.server_connect_cpu_pct;
    j["server_connect_cpu_us"] = r.server_connect_cpu_us;
  }
  j["inflight"] = o.inflight;
  if (r.pub_requests > 0) {  // Herald: POST -> 201, the durable commit
    j["pub_requests"] = r.pub_requests;
    j["pub_p50_us"] = r.pub_p50_us;
    j["pub_p99_us"] = r.pub_p99_us;
    j["pub_max_us"] = r.pub_max_us;
  }
  if (o.slow_fraction > 0) {
    j["slow_fraction"] = o.slow_fraction;
    j["slow_pause_s"] = o.slow_pause_s;
    j["slow_subscribers"] = r.slow_subscribers;
    j["slow_disconnects"] = r.slow_disconnects;
    j["slow_last_close_code"] = r.slow_last_close_code;
    j["slow_delivered"] = r.slow_delivered;
    j["slow_expected"] = r.slow_expected;
    j["slow_lat_p99_us"] = r.slow_lat_p99_us;
  }
  if (o.storm) {
    j["storm_sessions"] = r.storm_sessions;
    j["storm_drain_closes"] = r.storm_drain_closes;
    j["storm_drain_close_code"] = r.storm_drain_close_code;
    j["storm_restart_s"] = r.storm_restart_s;
    j["storm_welcomed"] = r.storm_welcomed;
    j["storm_recovered"] = r.storm_recovered;
    j["storm_caught_up"] = r.storm_caught_up;
    j["storm_errors"] = r.storm_errors;
    j["storm_gaps"] = r.storm_gaps;
    j["storm_duplicates"] = r.storm_duplicates;
    j["storm_replayed"] = r.storm_replayed;
    j["storm_expected"] = r.storm_expected;
    j["storm_last_recovered_s"] = r.storm_last_recovered_s;
    j["storm_last_caught_up_s"] = r.storm_last_caught_up_s;
    j["storm_welcome_p50_ms"] = r.storm_welcome_p50_ms;
    j["storm_welcome_p99_ms"] = r.storm_welcome_p99_ms;
    j["storm_recovery_errors"] = r.storm_recovery_errors;
  }
  j["client_connect_cpu_pct"] = r.client_connect_cpu_pct;
  j["client_cpu_pct"] = r.client_cpu_pct;
  j["client_cpus"] = r.client_cpus;
  j["client_bound"] = r.client_bound;
  j["clean"] = clean(o, r);
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j;
}

std::string to_table(const load_options& o, const load_result& r, const std::string& label) {
  std::ostringstream t;
  const char* server = o.kind == server_kind::herald ? "herald" : "nats";
  t << "== " << (label.empty() ? "bench" : label) << " (" << server << "): " << o.subscribers
    << " subscribers, " << o.topics << " topics, " << o.publishers << " publishers, "
    << o.payload_bytes << " B, rate " << (o.rate > 0 ? num(o.rate) + "/s" : std::string("max"))
    << (o.servers.size() > 1 ? ", " + std::to_string(o.servers.size()) + " servers" : "") << "\n";
  t << "  connect      " << r.connected << " ok, " << r.connect_errors << " failed in "
    << num(r.connect_s, 2) << " s (" << num(r.connect_rate) << "/s, p50 "
    << num(r.connect_p50_ms, 1) << " ms, p99 " << num(r.connect_p99_ms, 1) << " ms)\n";
  if (r.server_measured && r.connected > 0)
    t << "  connect CPU  server " << num(r.server_connect_cpu_pct, 1) << "% ("
      << num(r.server_connect_cpu_us, 1) << " us per connection), client "
      << num(r.client_connect_cpu_pct, 1) << "%\n";
  if (o.publishers > 0 && o.duration_s > 0 && !o.storm) {
    t << "  publish      " << r.published << " events (" << num(r.publish_rate) << "/s), "
      << r.publish_errors << " errors\n";
    t << "  deliveries   " << num(r.deliveries_per_s) << "/s; " << r.delivered << " of "
      << r.expected << " expected\n";
    t << "  latency us   p50 " << num(r.lat_p50_us) << "  p90 " << num(r.lat_p90_us) << "  p99 "
      << num(r.lat_p99_us) << "  p99.9 " << num(r.lat_p999_us) << "  max " << num(r.lat_max_us)
      << "\n";
    t << "  integrity    lost " << r.lost << ", undelivered " << r.undelivered << ", duplicates "
      << r.duplicates << ", reordered " << r.reordered << ", seq gaps " << r.seq_gaps
      << ", seq backwards " << r.seq_backwards << ", disconnects " << r.disconnects << "\n";
    if (r.pub_requests > 0)
      t << "  commit us    POST -> 201 p50 " << num(r.pub_p50_us) << "  p99 " << num(r.pub_p99_us)
        << "  max " << num(r.pub_max_us) << " (" << r.pub_requests << " requests, " << o.inflight
        << " in flight per publisher)\n";
    if (o.slow_fraction > 0)
      t << "  slow subs    " << r.slow_subscribers << " (pause " << num(o.slow_pause_s, 2)
        << " s a read): " << r.slow_delivered << " of " << r.slow_expected << " delivered, "
        << r.slow_disconnects << " cut (last close " << r.slow_last_close_code << ")\n";
  }
  if (o.storm) {
    t << "  drain        " << r.storm_drain_closes << " closed (code " << r.storm_drain_close_code
      << "), back after " << num(r.storm_restart_s, 2) << " s\n";
    t << "  resume storm " << r.storm_recovered << " of " << r.storm_sessions
      << " recovered, last at " << num(r.storm_last_recovered_s, 2) << " s; caught up "
      << r.storm_caught_up << ", last at " << num(r.storm_last_caught_up_s, 2) << " s; gaps "
      << r.storm_gaps << ", duplicates " << r.storm_duplicates << ", errors " << r.storm_errors
      << (r.storm_recovery_errors.empty() ? "" : ", not recovered: " + r.storm_recovery_errors)
      << "\n";
  }
  if (r.server_measured) {
    t << (o.server_pids.size() > 1
              ? "  server       (" + std::to_string(o.server_pids.size()) + " processes, summed) "
              : std::string("  server       "))
      << "RSS " << mib(r.server_rss_before) << " -> " << mib(r.server_rss_connected)
      << " connected (" << num(r.server_rss_per_conn) << " B/conn), peak "
      << mib(r.server_rss_peak);
    if (o.publishers > 0 && o.duration_s > 0) t << ", CPU " << num(r.server_cpu_pct, 1) << "%";
    if (o.idle_s > 0) t << ", idle CPU " << num(r.server_idle_cpu_pct, 2) << "%";
    t << "\n";
  }
  t << "  client       CPU " << num(r.client_cpu_pct, 1) << "% of " << r.client_cpus << " CPU(s)"
    << (r.client_bound ? "  ** CLIENT-BOUND: the bench, not the server, was the limit **" : "")
    << "\n";
  if (!r.first_error.empty()) t << "  first error  " << r.first_error << "\n";
  return t.str();
}

bool clean(const load_options& o, const load_result& r) {
  if (o.storm)
    return r.connect_errors == 0 && r.storm_sessions > 0 && r.storm_recovered == r.storm_sessions &&
           r.storm_caught_up == r.storm_sessions && r.storm_gaps == 0 && r.storm_duplicates == 0 &&
           r.storm_errors == 0;
  const bool publishing = o.publishers > 0 && o.duration_s > 0;
  return r.lost == 0 && r.undelivered == 0 && r.duplicates == 0 && r.reordered == 0 &&
         r.seq_gaps == 0 && r.seq_backwards == 0 && r.connect_errors == 0 &&
         r.publish_errors == 0 && r.disconnects == 0 &&
         (!publishing || (r.delivered > 0 && r.delivered >= r.expected));
}

int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape): see bench.h
  CLI::App app{"herald bench: open-loop load generator for Herald's native protocol and NATS"};
  load_options o;
  std::string target = "herald", admin_key, tenant = "bench", json_out, label;
  std::vector<std::string> urls;
  bool check = false, quiet = false;
  app.add_option("--target", target, "herald | nats")->check(CLI::IsMember({"herald", "nats"}));
  app.add_option("--url", urls,
                 "server base URL: http://HOST:PORT (herald) or ws://HOST:PORT (nats WebSocket); "
                 "repeat it or give a comma list for several nodes of one cluster: subscribers "
                 "and publishing streams are dealt round-robin over them")
      ->required()
      ->allow_extra_args(false)  // one URL (or list) per --url: `--url A B` is refused
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--api-key", o.sub_key, "herald: API key of an app-role app (subscribers)");
  app.add_option("--publisher-key", o.pub_key, "herald: API key of a publisher-role app");
  app.add_option("--admin-key", admin_key,
                 "herald: admin key; creates the tenant and both apps (default HERALD_ADMIN_KEY)");
  app.add_option("--tenant", tenant, "herald: tenant for --admin-key setup");
  app.add_option("--subscribers", o.subscribers, "subscriber WebSocket connections");
  app.add_option("--threads", o.threads, "load threads (one io_context each)");
  app.add_option("--publishers", o.publishers, "publisher connections (0: none)");
  app.add_option("--topics", o.topics, "topics; subscriber i follows topic i mod topics");
  app.add_option("--payload", o.payload_bytes, "payload bytes (the event's data object)");
  app.add_option("--batch", o.batch, "events per POST (herald) or per frame (nats)");
  app.add_option("--rate", o.rate, "events/s over all publishers; 0: max rate");
  app.add_option("--duration", o.duration_s, "seconds of publishing");
  app.add_option("--idle", o.idle_s, "seconds idle after connecting (server CPU measured)");
  app.add_option("--drain", o.drain_s, "seconds to wait for outstanding deliveries");
  app.add_option("--connect-timeout", o.connect_timeout_s, "seconds for all connections");
  app.add_option("--connect-concurrency", o.connect_concurrency, "handshakes in flight at once");
  app.add_option("--window", o.window, "max rate: outstanding deliveries before publishers wait");
  std::vector<int> server_pids;
  app.add_option("--server-pid", server_pids,
                 "server PID for RSS and CPU (from /proc); repeat it to sum several processes "
                 "(a cluster's nodes and Redis); 0: not measured")
      ->check(CLI::NonNegativeNumber)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--inflight", o.inflight,
                 "requests outstanding per publisher: N streams (connections) each, each waiting "
                 "for its reply before its next request")
      ->check(CLI::Range(1, 1024));
  app.add_option("--slow-fraction", o.slow_fraction,
                 "fraction of subscribers that read slowly (every round(1/F)-th), reported apart")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--slow-pause", o.slow_pause_s,
                 "seconds a slow subscriber pauses before each read")
      ->check(CLI::Range(0.0, 60.0));
  app.add_flag("--resume-storm", o.storm,
               "herald: subscribe, publish, write --storm-ready-file, wait for the server's drain "
               "and restart on the same address, publish --storm-missed per topic, resume all");
  app.add_option("--storm-ready-file", o.storm_ready_file,
                 "written when the sessions are subscribed: the driver then drains the server");
  app.add_option("--storm-missed", o.storm_missed, "events per topic published while away");
  app.add_option("--storm-restart-timeout", o.storm_restart_timeout_s,
                 "seconds to wait for the drain and for the server to be back");
  app.add_option("--json", json_out,
                 "append the JSON line to this file (it always goes to stdout)");
  app.add_option("--label", label, "name of the shape, copied into the output");
  app.add_flag("--check", check, "exit 1 unless the run was clean (see clean())");
  app.add_flag("--quiet", quiet, "no human table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // Strict (servers.h); https:// and wss:// are refused: keys never go in clear to TLS.
    o.servers = parse_server_urls(urls);
    for (int pid : server_pids)
      if (pid > 0) o.server_pids.push_back(pid);
    const std::string& url = o.servers[0].url;
    if (o.storm && o.servers.size() > 1)
      throw std::invalid_argument("--resume-storm drives one server: give one --url");
    if (target == "nats") {
      o.kind = server_kind::nats;
      o.ws_path = o.servers[0].target;
    } else {
      o.kind = server_kind::herald;
      o.ws_path = "/v1/ws";
      if (admin_key.empty())
        if (const char* k = std::getenv("HERALD_ADMIN_KEY"); k && *k) admin_key = k;
      if (o.sub_key.empty() || (o.pub_key.empty() && o.publishers > 0)) {
        if (admin_key.empty())
          throw std::runtime_error("herald needs --api-key and --publisher-key, or --admin-key");
        std::tie(o.sub_key, o.pub_key) = create_apps(url, admin_key, tenant);
      }
      wait_for_keys(o.servers, {o.sub_key, o.pub_key}, o.connect_timeout_s);
    }
    const load_result r = o.storm ? run_resume_storm(o) : run_load(o);
    const std::string line = json::serialize(to_json(o, r, label));
    std::cout << line << std::endl;
    if (!json_out.empty()) {
      std::ofstream f(json_out, std::ios::app);
      f << line << "\n";
    }
    if (!quiet) std::cerr << to_table(o, r, label);
    return check && !clean(o, r) ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "herald bench: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace herald::bench
