#include "app/serve.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include <boost/json/parse.hpp>
#include <spdlog/spdlog.h>

#include "api/json_util.h"
#include "api/native_routes.h"
#include "api/records.h"
#include "app/cluster.h"
#include "app/dialect_host.h"
#include "app/logging.h"
#include "auth/crypto.h"
#include "auth/tokens.h"
#include "core/clock.h"
#include "core/event.h"
#include "core/metrics.h"
#include "core/op_events.h"
#include "core/oplog.h"
#include "transport/server.h"

namespace herald {
namespace {

std::pair<std::string, std::uint16_t> split_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos)
    throw std::runtime_error("core.listen: expected HOST:PORT, got '" + s + "'");
  const long port = std::stol(s.substr(colon + 1));
  if (port < 0 || port > 65535) throw std::runtime_error("core.listen: bad port in '" + s + "'");
  return {s.substr(0, colon), static_cast<std::uint16_t>(port)};
}

// Calls an admin route in-process with the admin key (same code path as the REST API).
http_response admin_call(const router& admin, const std::string& key, const std::string& method,
                         const std::string& path, const std::string& body) {
  http_request r;
  r.method = method;
  r.target = r.path = path;
  r.body = body;
  r.headers["authorization"] = "Bearer " + key;
  return admin.dispatch(r);
}

// The log line and metric of an HTTP request's outcome (issue #14): authentication failures,
// limit refusals and admin changes. Bodies are never logged (they may carry secrets).
void note_http_outcome(services& svc, const dialect_host& dialects, const http_request& req,
                       const http_response& res) {
  const bool admin = req.path.rfind("/v1/admin/", 0) == 0 || req.path == "/v1/admin";
  if (res.status == 401 || res.status == 429) {
    const dialect* owner = admin ? nullptr : dialects.owner(req.path);
    const std::string_view name = admin   ? std::string_view("admin")
                                  : owner ? std::string_view(owner->name())
                                          : std::string_view("none");
    const std::string addr = svc.auth_failures.client_address(req);
    if (res.status == 401)
      op_events::auth_failed(name, op_events::auth_failure_reason(res.cause), addr, "");
    else
      op_events::refused(name, op_events::refusal_limit(res.cause), "", addr, 429, "");
  } else if (admin && res.status < 300 && req.method != "GET" && req.method != "HEAD") {
    op_events::admin_change(req.method, req.path, res.status,
                            svc.auth_failures.client_address(req));
  }
}

void demo_setup(const router& admin, services& svc, const std::string& data_dir,
                const std::string& base) {
  // Absolute paths: the printed commands work from any directory.
  const std::string file =
      std::filesystem::absolute(data_dir).lexically_normal().string() + "/demo.env";
  if (!svc.dir.tenant_exists("demo")) {
    admin_call(admin, svc.admin_key, "POST", "/v1/admin/tenants", R"({"id":"demo"})");
    auto app = admin_call(admin, svc.admin_key, "POST", "/v1/admin/apps",
                          R"({"tenant":"demo","name":"demo-app","role":"app"})");
    auto pub = admin_call(admin, svc.admin_key, "POST", "/v1/admin/apps",
                          R"({"tenant":"demo","name":"demo-publisher","role":"publisher"})");
    auto key_of = [](const http_response& r) {
      return std::string(boost::json::parse(r.body).as_object().at("api_key").as_string());
    };
    std::ofstream out(file, std::ios::trunc);
    out << "HERALD_DEMO_APP_KEY=" << key_of(app) << "\nHERALD_DEMO_PUBLISHER_KEY=" << key_of(pub)
        << "\n";
    out.close();
    ::chmod(file.c_str(), 0600);
  }
  std::map<std::string, std::string> kv;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || exe.empty()) exe = "herald";
  std::cout << "\nDemo tenant 'demo' (credentials in " << file << "). In another terminal:\n"
            << "  " << exe << " tail --server " << base << " --api-key "
            << kv["HERALD_DEMO_APP_KEY"] << " --topic '/demo/**'\n"
            << "Then publish, with the CLI or curl:\n"
            << "  " << exe << " publish --server " << base << " --api-key "
            << kv["HERALD_DEMO_PUBLISHER_KEY"]
            << " --topic /demo/hello --type greeting --data '{\"text\":\"hi\"}'\n"
            << "  curl -s -X POST " << base << "/v1/events -H 'Authorization: Bearer "
            << kv["HERALD_DEMO_PUBLISHER_KEY"]
            << "' -H 'Content-Type: application/json' -d "
               "'{\"topic\":\"/demo/hello\",\"type\":\"greeting\",\"data\":{\"text\":\"hi\"}}'\n"
            << std::endl;
}

// Raises the open-file limit to the hard limit (a connection is a descriptor). Returns the
// limit in force and, for the log, what it was before.
std::pair<std::size_t, std::size_t> raise_open_files() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return {1024, 1024};
  const rlim_t before = rl.rlim_cur;
  // An unlimited hard limit still stops at the kernel's nr_open; 1M is its usual value.
  const rlim_t want = rl.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : rl.rlim_max;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) return {before, before};
  rl.rlim_cur = want;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return {before, before};
  return {want, before};
}

// Whether an Authorization value uses the Bearer scheme (an API key, a token or the admin key).
bool is_bearer(std::string_view v) {
  return v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ");
}

// `herald routes`: one sorted line per route, "METHOD /path/{param}", sockets as "WS /path".
void print_routes(const router& admin, const dialect_host& dialects) {
  std::set<std::string> lines;
  for (const auto& routes : {admin.list(), dialects.routes()})
    for (const auto& [method, path] : routes) lines.insert(method + " " + path);
  for (const auto& m : dialects.mounts()) lines.insert("WS " + m.path);
  for (const auto& l : lines) std::cout << l << "\n";
  std::cout.flush();
}

// core.max_connections in force: 0 is the open-file limit less a reserve, so that connections
// are refused (503) before accept() could fail for want of a descriptor.
std::size_t effective_max_connections(std::size_t configured, std::size_t open_files) {
  return configured != 0 ? configured : open_files > 512 ? open_files - 256 : open_files / 2;
}

// Transport's HTTP bounds from the native limits: a body up to the largest publish (routes check
// their own smaller bounds), a request line and headers of max_path_bytes plus room.
std::pair<std::size_t, std::size_t> http_bounds(const native_limits& n) {
  return {std::max<std::size_t>(n.max_publish_bytes, 65536), n.max_path_bytes + 8192};
}

// The native limits a configuration gives (its dialects' setup, as at start).
native_limits native_of(const config& c) {
  native_limits n;
  services_setup setup{n};
  for (const auto& d : c.dialects) d->setup(setup);
  return n;
}

// SIGHUP, for the dialects' tables: each changed reloadable key of `next` is set in the running
// dialect's table (its fields are written only here once installed), then each dialect touched
// publishes its new values (dialect::reload). Returns whether a native key changed.
bool reload_dialects(config& running, const config& next, const std::set<std::string>& keys) {
  bool native = false;
  for (std::size_t i = 0; i < running.dialects.size() && i < next.dialects.size(); ++i) {
    dialect& d = *running.dialects[i];
    bool touched = false;
    for (const auto& k : next.dialects[i]->config().keys()) {
      if (!keys.contains(d.name() + "." + k.name)) continue;
      d.config().set(k.name, k.get(), "SIGHUP");
      touched = true;
    }
    if (!touched) continue;
    d.reload();
    native = native || d.name() == "native";
  }
  return native;
}

// SIGHUP: loads the file given at start (with the start's flags, which keep precedence) again.
// A file that does not load changes nothing. Every reloadable key that changed is applied by
// `apply` (given the new configuration and the keys that changed); every other change is
// logged as needing a restart. `in_force`: each key's value in force, updated here.
void reload_config(const config& start, std::map<std::string, std::string>& in_force,
                   const std::function<void(const config&, const std::set<std::string>&)>& apply) {
  if (start.file.empty()) {
    spdlog::info("SIGHUP: no configuration file (--config) to read again");
    return;
  }
  config next;
  try {
    next = load_config(start.file, start.flags);
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: {} refused, the configuration in force stays: {}", start.file, e.what());
    return;
  }
  std::set<std::string> changed;
  for (const auto& e : config_entries(next)) {
    std::string& now = in_force[e.key];
    if (e.value == now) continue;
    if (!e.reloadable) {
      spdlog::warn("{} changed in {} but needs a restart; keeping {}", e.key, start.file,
                   now.empty() ? "''" : now);
      continue;
    }
    spdlog::info("SIGHUP: {} = {} (was {})", e.key, e.value, now);
    now = e.value;
    changed.insert(e.key);
  }
  if (!changed.empty()) apply(next, changed);
  spdlog::info("SIGHUP: {} read again, {} key(s) applied", start.file, changed.size());
}

}  // namespace

namespace {

// The token key and the admin key: from the environment, else from the token key file when
// one is configured, else — in a cluster (a shared store) — from the store, where the first node
// to start puts fresh ones and every node finds the same, else from files in the data directory
// (created on first start).
struct server_keys {
  std::string token_key, admin_key;
};

// Writes `text` to `path` (mode 0600) through a temporary file and a rename.
void write_secret_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(tmp + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(path + ": " + std::strerror(errno));
}

// A secret kept in the store as the record ("cluster", name) = {"key": "..."}: the one there,
// else `fresh` put there first.
std::string shared_secret(store& db, const std::string& name, const std::string& fresh) {
  auto kept = db.put_record_if_absent("cluster", name, "{\"key\":\"" + fresh + "\"}");
  if (!kept) throw std::runtime_error(name + " in the store: " + kept.err().message);
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(*kept, ec);
  const boost::json::string* key = nullptr;
  if (!ec && doc.is_object())
    if (const auto* k = doc.as_object().if_contains("key"); k != nullptr && k->is_string())
      key = &k->get_string();
  if (key == nullptr || key->empty())
    throw std::runtime_error(name + " in the store: the record is not {\"key\": string}");
  return std::string(*key);
}

server_keys load_keys(const config& cfg, store& db) {
  server_keys keys;
  const bool cluster = db.shared();
  if (const char* k = std::getenv("HERALD_TOKEN_KEY"); k && *k) {
    auto parsed = parse_token_key(k);
    if (!parsed) throw std::runtime_error("HERALD_TOKEN_KEY: " + parsed.err().message);
    keys.token_key = *parsed;
  } else if (cluster && cfg.token_key_file.empty()) {
    auto parsed = parse_token_key(shared_secret(db, "token_key", hex_encode(random_bytes(32))));
    if (!parsed) throw std::runtime_error("token key in the store: " + parsed.err().message);
    keys.token_key = *parsed;
  } else {
    const std::string key_file =
        cfg.token_key_file.empty() ? cfg.data_dir + "/token.key" : cfg.token_key_file;
    auto k2 = load_or_create_key(key_file);
    if (!k2) throw std::runtime_error("token key " + key_file + ": " + k2.err().message);
    keys.token_key = *k2;
  }
  const std::string admin_file = cfg.data_dir + "/admin.key";
  if (const char* k = std::getenv("HERALD_ADMIN_KEY"); k && *k) {
    keys.admin_key = k;
  } else if (cluster) {
    keys.admin_key = shared_secret(db, "admin_key", "hka_" + random_token(32));
    // The CLI on this machine reads the key from the data directory: it gets the cluster's.
    // Read only: load_or_create_admin_key would first write a fresh key of its own there.
    std::string local;
    if (std::ifstream in(admin_file); in) in >> local;  // the key has no whitespace
    if (local != keys.admin_key) {
      write_secret_file(admin_file, keys.admin_key + "\n");
      oplog::write(oplog::level::info, "wrote the cluster's admin key",
                   {{"event", "admin_key_created"}, {"file", admin_file}});
    }
  } else {
    auto k2 = load_or_create_admin_key(admin_file);
    if (!k2) throw std::runtime_error("admin key: " + k2.err().message);
    keys.admin_key = k2->first;
    if (k2->second)  // the key itself stays in the file: logs never hold a secret
      oplog::write(oplog::level::info, "created admin key",
                   {{"event", "admin_key_created"}, {"file", admin_file}});
  }
  return keys;
}

}  // namespace

int serve(config cfg, bool demo, bool list_routes) {
  apply_log_config(cfg);
  global_metrics().tenants.set_limit(cfg.metrics_tenant_limit);
  // Signals go to the waiting thread below, not to the shards.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);  // reloads the configuration and the TLS certificate (below)
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  const auto [open_files, open_files_before] = raise_open_files();
  // Each key's value as loaded: SIGHUP compares the file's new values with these.
  std::map<std::string, std::string> in_force;
  for (const auto& e : config_entries(cfg)) in_force[e.key] = e.value;

  std::filesystem::create_directories(cfg.data_dir);
  if (cfg.node_id.empty()) {  // <hostname>:<port> (the pid when the port is picked at bind)
    char host_name[256] = {};
    ::gethostname(host_name, sizeof host_name - 1);
    const auto port = split_listen(cfg.listen).second;
    cfg.node_id = std::string(host_name) + ":" +
                  (port != 0 ? std::to_string(port) : "pid" + std::to_string(::getpid()));
  }
  cfg.store_opts.redis.client_name = "herald:" + cfg.node_id;
  cfg.store_opts.follow_all = !cfg.cluster.follow_tenants;
  // A redis:// store refuses an evicting maxmemory-policy here (exit 1, naming it).
  auto st = open_store(cfg.store, cfg.data_dir, cfg.store_opts);
  if (!st) throw std::runtime_error("store: " + st.err().message);
  store& db = **st;
  if (const std::string note = db.startup_note(); !note.empty()) {
    oplog::write(oplog::level::info, "store durability",
                 {{"event", "store_durability"}, {"node", cfg.node_id}, {"detail", note}});
  }
  // Cluster mode (--store redis://): sessions move between nodes, admin calls reach them all.
  const std::unique_ptr<cluster_node> cluster =
      cluster_node::make_if_redis(cfg.store, cfg.store_opts.redis, cfg.cluster, db);
  const auto [token_key, admin_key] = load_keys(cfg, db);
  directory dir;
  load_directory(db, dir);

  // What the dialects say the shared services are built from (native's limits: also the
  // native REST API's, the transport's and the hub's).
  const native_limits native = native_of(cfg);

  auto [host, port] = split_listen(cfg.listen);
  server_options so;
  so.host = host;
  so.port = port;
  so.shards = cfg.shards;
  so.blocking_threads = cfg.blocking_threads;
  so.limits.send_queue_bytes = cfg.core.send_queue_bytes;
  so.limits.unauth_send_queue_bytes = cfg.core.unauth_send_queue_bytes;
  so.limits.close_timeout_ms = native.close_timeout_s * 1000;
  std::tie(so.limits.max_body_bytes, so.limits.max_header_bytes) = http_bounds(native);
  so.limits.max_connections = effective_max_connections(cfg.max_connections, open_files);
  so.limits.max_connections_per_address = cfg.max_connections_per_address;
  so.tls_cert_file = cfg.tls_cert_file;
  so.tls_key_file = cfg.tls_key_file;
  server srv(so);

  hub_options ho;
  ho.recovery_buffer = native.recovery_buffer;
  ho.recovery_window_ms = native.recovery_window_s * 1000;
  ho.max_log_replay = native.max_log_replay;
  ho.read_log = [&db](std::int64_t after, std::size_t limit) {
    log_query q;
    q.after_offset = after;
    q.limit = limit;
    auto rows = db.read(q);
    return rows ? std::move(*rows) : std::vector<event_ptr>{};
  };
  ho.hole_tenants = [&db](std::int64_t first, std::int64_t last) {
    return db.hole_tenants(first, last);
  };
  ho.blocking = [&srv](std::function<void()> f) { srv.offload(std::move(f)); };
  ho.start_offset = db.last_offset();
  // Crash safety: the records a resume needs after kill -9, written off the shards (the store
  // group-commits them with the appends); a subscribe is acknowledged once its record is.
  session_record_writer records(
      db, [](const std::string& m) { spdlog::warn("{}", m); }, cluster ? cfg.node_id : "");
  ho.persist = [&records](const std::string& id, std::optional<session_state> rec,
                          std::function<void()> done) {
    records.write(id, std::move(rec), std::move(done));
  };
  ho.token_digest = [](std::string_view token) { return sha256_hex(token); };
  ho.max_sessions_per_app = cfg.max_sessions_per_app;
  ho.max_sessions_per_tenant = cfg.max_sessions_per_tenant;
  if (cluster) cluster->wire_hub(ho);
  hub h(srv.shard_posts(), &dir, ho);
  // Sessions a drain persisted or a crash left: back, detached, their recovery window
  // starting now, each one's seq re-counted from the log after its record's offset.
  // In cluster mode every node's records are in the store: a node adopts one on its resume.
  if (!cluster) h.import_sessions(load_sessions(db));
  db.set_append_listener([&h, c = cluster.get()](std::vector<event_ptr> batch) {
    if (c != nullptr)
      c->deliver(h, std::move(batch));  // another node's subject change first (cluster.h)
    else
      h.publish(std::move(batch));
  });
  token_signer signer(token_key);
  services svc{.core = cfg.core,
               .native = native,
               .dir = dir,
               .st = cluster ? cluster->announcing() : db,
               .h = h,
               .signer = signer,
               .admin_key = admin_key,
               .token_key = token_key,
               .public_url = cfg.public_url};

  svc.cluster = cluster.get();
  if (cluster) cluster->attach(svc);

  router admin_routes;
  add_admin_routes(admin_routes, svc);
  dialect_host dialects(svc, cfg.dialects);
  for (const auto& m : dialects.mounts()) srv.mount(m);
  if (list_routes) {
    print_routes(admin_routes, dialects);
    return 0;
  }

  const bool metrics_public = cfg.metrics_public;
  auto route = [&, metrics_public](const http_request& req) -> http_response {
    if (req.target.size() > svc.native->max_path_bytes)
      return dialects.render_error(req, 414, "request path longer than max_path_bytes");
    if (req.path.rfind("/v1/admin/", 0) == 0 || req.path == "/v1/admin") {
      if (!admin_routes.has_path(req.path) && dialects.has_admin_path(req.path))
        return dialects.serve_admin(req);
      return admin_routes.dispatch(req);
    }
    const dialect* owner = dialects.owner(req.path);
    if (req.path == "/metrics" && !metrics_public && owner && owner->prefix().empty()) {
      const auto* a = req.header("authorization");
      if (a == nullptr || !is_bearer(*a) ||
          !constant_time_equal(std::string_view(*a).substr(7), admin_key))
        return error_response(
            error{errc::auth_failed, "metrics need the admin key",
                  a == nullptr ? error_cause::missing : error_cause::unspecified});
    }
    return dialects.serve(req);
  };
  auto limited_route = [&svc, &dialects, route](const http_request& req) -> http_response {
    // Failed authentications are rate limited per address on every admin route and on the
    // paths of each dialect that counts them (dialect::counts_auth_failures).
    if (!dialects.counts_auth_failures(req.path)) return route(req);
    const std::string addr = svc.auth_failures.client_address(req);
    auto too_many = [&] {
      http_response r = error_response(error{errc::too_many_requests,
                                             "too many failed authentications from this address",
                                             error_cause::auth_failures});
      r.headers.clear();
      r.headers.emplace_back("Retry-After",
                             std::to_string(svc.auth_failures.retry_after_s(addr, "", now_ms())));
      return r;
    };
    const bool limited = !svc.auth_failures.may_try(addr, "", now_ms());
    // Past the limit an API key or token (a bearer credential: a cheap hash or signature
    // check) is still tried, so that others' failures from a shared address never lock out a
    // valid one; only its failure answers 429. Anything else is refused before any check.
    const bool bearer =
        req.header("x-api-key") != nullptr ||
        (req.header("authorization") != nullptr && is_bearer(*req.header("authorization")));
    if (limited && !bearer) return too_many();
    http_response res = route(req);
    if (res.status == 401) {
      svc.auth_failures.failed(addr, "", now_ms());
      if (limited) return too_many();
    }
    return res;
  };
  srv.set_http_handler([&svc, &dialects, limited_route](const http_request& req) {
    http_response res = limited_route(req);
    note_http_outcome(svc, dialects, req, res);
    return res;
  });
  // Transport's refusals (malformed, too large) answer in the body of the path's dialect.
  srv.set_error_renderer([&dialects](const http_request& req, int status, std::string message) {
    return dialects.render_error(req, status, std::move(message));
  });
  // Connections refused at accept (max_connections, max_connections_per_address): no dialect
  // is known before the request, so their label is `none`.
  srv.set_accept_refusal_observer([](std::string_view limit, int status, std::string_view remote) {
    op_events::refused("none", limit, "", remote, status,
                       status == 503 ? "the server has too many connections"
                                     : "too many connections from this address");
  });
  srv.set_thread_init([](std::size_t shard) { hub::bind_thread(shard); });
  srv.set_shard_tick([&h](std::size_t shard, std::int64_t now) {
    h.tick(now);
    if (shard == 0) oplog::flush_suppressed(now);  // the summaries of floods that ended
  });

  const std::uint16_t bound = srv.listen();
  if (cluster) cluster->start(cfg.node_id, ho.recovery_window_ms);
  const std::string base =
      (srv.tls() ? "https://" : "http://") + host + ":" + std::to_string(bound);
  std::cout << "herald listening on " << base << std::endl;
  oplog::write(oplog::level::info, "started",
               {{"event", "start"},
                {"listen", base},
                {"store", db.name()},
                {"data", cfg.data_dir},
                {"shards", srv.shard_count()}});
  if (open_files != open_files_before)
    spdlog::info("open-file limit raised from {} to {} (the hard limit); max_connections={}",
                 open_files_before, open_files, so.limits.max_connections);
  else
    spdlog::info("open-file limit {}; max_connections={}", open_files, so.limits.max_connections);
  if (demo) demo_setup(admin_routes, svc, cfg.data_dir, base);

  // Retention: prune the log every core.prune_interval, and with it the records that expire by
  // themselves: idempotency records (core.idempotency_window) and login sessions (their expiry).
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread pruner([&] {
    std::unique_lock l(stop_mu);
    const auto every = std::chrono::seconds(cfg.core.prune_interval_s);
    while (!stop_cv.wait_for(l, every, [&] { return stopping; })) {
      const std::int64_t now = now_ms();
      (void)db.prune(now - cfg.core.log_retention_s * 1000);
      (void)db.prune_records("idem", now);
      (void)db.prune_records("smsgw_idem", now);
      if (db.prune_records("login", now)) dir.drop_expired_logins(now);
      // Cluster mode: the records of a dead node's sessions, once their window has passed.
      if (cluster) (void)db.prune_records("session", now);
    }
  });
  std::atomic<bool> ended{false};
  std::thread waiter([&] {
    int sig = 0;
    for (;;) {
      if (sigwait(&sigs, &sig) != 0 || ended.load()) return;
      if (sig != SIGHUP) break;
      oplog::write(oplog::level::info, "reloading", {{"event", "reload"}, {"signal", sig}});
      reload_config(cfg, in_force, [&](const config& next, const std::set<std::string>& keys) {
        if (keys.contains("core.log_level") || keys.contains("core.log_format") ||
            keys.contains("core.log_flood_lines"))
          apply_log_config(next);
        if (keys.contains("core.max_connections") ||
            keys.contains("core.max_connections_per_address"))
          srv.set_connection_limits(effective_max_connections(next.max_connections, open_files),
                                    next.max_connections_per_address);
        if (reload_dialects(cfg, next, keys)) {
          const native_limits now = native_of(cfg);  // the running tables, reloaded keys set
          svc.native.set(now);
          const auto [body, header] = http_bounds(now);
          srv.set_http_limits(body, header);
        }
        const native_limits n = native_of(next);
        if (keys.contains("native.publish_rate") || keys.contains("native.publish_burst"))
          svc.publish_limiter.set_rates(static_cast<double>(n.publish_rate),
                                        static_cast<double>(n.publish_burst));
        if (keys.contains("native.auth_fail_rate") || keys.contains("native.auth_fail_burst"))
          svc.auth_failures.set_rates(static_cast<double>(n.auth_fail_rate),
                                      static_cast<double>(n.auth_fail_burst));
      });
      if (!srv.tls()) {
        spdlog::info("SIGHUP: no TLS certificate to reload");
      } else if (const std::string err = srv.reload_tls(); err.empty()) {
        spdlog::info("SIGHUP: TLS certificate reloaded from {}", cfg.tls_cert_file);
      } else {
        spdlog::error("SIGHUP: TLS certificate not reloaded, the previous one stays: {}", err);
      }
    }
    oplog::write(oplog::level::info, "draining", {{"event", "drain"}, {"signal", sig}});
    if (cluster) cluster->stop();  // out of the registry; the sessions' records stay
    srv.stop(native.close_timeout_s * 1000 + 2000);
  });
  srv.run();
  {
    std::lock_guard l(stop_mu);
    stopping = true;
  }
  stop_cv.notify_all();
  pruner.join();
  records.stop();  // the records queued by the last subscribes and closes
  // Every socket is closed and every shard stopped: keep what sessions need to resume.
  // (Cluster mode: the crash-safe records are current, and the store holds other nodes' too.)
  if (cluster) cluster->stop();
  if (status ps = cluster ? status{} : persist_sessions(db, h.export_sessions()); !ps)
    spdlog::error("persisting sessions: {}", ps.err().message);
  db.close();
  ended.store(true);
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes sigwait if run() ended on its own
  waiter.join();
  oplog::write(oplog::level::info, "stopped", {{"event", "stop"}});
  return 0;
}

}  // namespace herald
