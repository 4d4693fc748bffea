// herald: serve, app create, publish, tail, why, config, routes, bench (design.md §4).
// Exit codes of every command: 0 ok, 1 usage (a bad option, file or value), 2 refused by the
// server (an HTTP error, a refused upgrade, auth or subscribe), 3 unreachable or timed out.
// Errors are one line on stderr.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/numbers.h"
#include "app/config.h"
#include "app/serve.h"
#include "bench/bench.h"
#include "client/client.h"

namespace json = boost::json;
using herald::client::http_call;

namespace {

constexpr int exit_usage = 1, exit_refused = 2, exit_unreachable = 3;

// The server answered with a refusal: exit 2 with its message.
struct refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// --listen HOST:PORT, the port strict (digits only, 0..65535): a typo such as "8080x" stops the
// start here rather than binding whatever prefix a lenient parse would take.
const CLI::Validator host_port(
    [](std::string& v) -> std::string {
      const auto colon = v.rfind(':');
      if (colon == std::string::npos) return "expected HOST:PORT, got '" + v + "'";
      const auto port = herald::parse_u64(std::string_view(v).substr(colon + 1));
      if (!port || *port > 65535)
        return "port: a number from 0 to 65535, got '" + v.substr(colon + 1) + "'";
      return {};
    },
    "HOST:PORT");

// --timeout SECONDS: "10", "0.5" (digits, at most three decimals), more than 0 and at most a day.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view v) {
  const auto dot = v.find('.');
  const auto whole = herald::parse_u64(v.substr(0, dot));
  if (!whole || *whole > 86400) return std::nullopt;
  std::uint64_t ms = *whole * 1000;
  if (dot != std::string_view::npos) {
    const auto frac = v.substr(dot + 1);
    const auto f = herald::parse_u64(frac);
    if (!f || frac.size() > 3) return std::nullopt;
    ms += *f * (frac.size() == 1 ? 100 : frac.size() == 2 ? 10 : 1);
  }
  if (ms == 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}
const CLI::Validator seconds_check(
    [](std::string& v) -> std::string {
      return parse_seconds(v) ? std::string()
                              : "expected seconds (0.001 to 86400), got '" + v + "'";
    },
    "SECONDS");

std::string admin_key_for(const std::string& given, const std::string& data_dir) {
  if (!given.empty()) return given;
  if (const char* k = std::getenv("HERALD_ADMIN_KEY"); k && *k) return k;
  std::ifstream in(data_dir + "/admin.key");
  std::string key;
  std::getline(in, key);
  if (key.empty())
    throw std::runtime_error("no admin key: pass --admin-key, set HERALD_ADMIN_KEY or --data DIR");
  return key;
}

// What a client command shares: the server, its timeout and how it prints.
struct client_opts {
  std::string server;
  std::string timeout = "10";
  bool json = false;
  std::chrono::milliseconds bound() const { return *parse_seconds(timeout); }
};

// "HTTP 413 payload_too_large: the body is larger than max_publish_bytes" from an error reply.
std::string refusal(const herald::client::http_reply& r) {
  std::string what = "HTTP " + std::to_string(r.status);
  try {
    const json::value v = json::parse(r.body);
    const auto& e = v.as_object().at("error").as_object();
    return what + " " + std::string(e.at("code").as_string()) + ": " +
           std::string(e.at("message").as_string());
  } catch (const std::exception&) {
    std::string body = r.body.substr(0, 200);
    for (char& c : body)
      if (c == '\n' || c == '\r') c = ' ';
    return body.empty() ? what : what + ": " + body;
  }
}

// A record the server answered: as it sent it (--json), or one "field: value" line per field.
void print_record(const std::string& body, bool as_json) {
  json::value v;
  try {
    v = json::parse(body);
  } catch (const std::exception&) {
    std::cout << body << std::endl;
    return;
  }
  if (as_json || !v.is_object()) {
    std::cout << json::serialize(v) << std::endl;
    return;
  }
  for (const auto& [k, f] : v.as_object())
    std::cout << std::string(k) << ": "
              << (f.is_string() ? std::string(f.as_string()) : json::serialize(f)) << "\n";
  std::cout.flush();
}

int app_create(const client_opts& c, const std::string& key, const std::string& tenant,
               const std::string& name, const std::string& role) {
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
  auto t = http_call(c.server, "POST", "/v1/admin/tenants",
                     json::serialize(json::object{{"id", tenant}}), auth, c.bound());
  if (t.status != 201 && t.status != 409) throw refused("creating tenant: " + refusal(t));
  auto a =
      http_call(c.server, "POST", "/v1/admin/apps",
                json::serialize(json::object{{"tenant", tenant}, {"name", name}, {"role", role}}),
                auth, c.bound());
  if (a.status != 201) throw refused("creating app: " + refusal(a));
  print_record(a.body, c.json);
  return 0;
}

int publish(const client_opts& c, const std::string& key, const std::string& topic,
            const std::string& type, const std::string& data, const std::string& subject,
            bool retain) {
  json::value payload;
  try {
    payload = json::parse(data);
  } catch (const std::exception&) {
    throw std::invalid_argument("--data: not JSON: '" + data.substr(0, 80) + "'");
  }
  json::object body{{"topic", topic}, {"type", type}, {"data", payload}};
  if (!subject.empty()) body["subject"] = subject;
  if (retain) body["retain"] = true;
  auto r = http_call(c.server, "POST", "/v1/events", json::serialize(body),
                     {{"Authorization", "Bearer " + key}}, c.bound());
  if (r.status < 200 || r.status >= 300) throw refused(refusal(r));
  print_record(r.body, c.json);
  return 0;
}

// `herald why`: GET /v1/admin/why, the verdict printed as JSON. Exit 0 when the server answered
// (delivered or not: the verdict says), 2 on an error reply (404 unknown event or session).
int why(const client_opts& c, const std::string& key, const std::string& event,
        const std::string& session) {
  auto enc = [](const std::string& v) {
    std::string out;
    for (const unsigned char ch : v) {
      if (std::isalnum(ch) || ch == '_' || ch == '-' || ch == '.' || ch == '~') {
        out += static_cast<char>(ch);
      } else {
        static const char* hex = "0123456789ABCDEF";
        out += '%';
        out += hex[ch >> 4];
        out += hex[ch & 15];
      }
    }
    return out;
  };
  auto r =
      http_call(c.server, "GET", "/v1/admin/why?event=" + enc(event) + "&session=" + enc(session),
                "", {{"Authorization", "Bearer " + key}}, c.bound());
  if (r.status != 200) throw refused(refusal(r));
  std::cout << r.body << std::endl;
  return 0;
}

// {"topic":..,"types":[..]} per topic, types split on ','.
json::array tail_filters(const std::vector<std::string>& topics, const std::string& types) {
  json::array filters;
  for (const auto& t : topics) {
    json::object f{{"topic", t}};
    if (!types.empty()) {
      json::array ty;
      std::size_t pos = 0;
      while (pos <= types.size()) {
        const auto end = std::min(types.find(',', pos), types.size());
        if (end > pos) ty.emplace_back(types.substr(pos, end - pos));
        pos = end + 1;
      }
      f["types"] = ty;
    }
    filters.push_back(f);
  }
  return filters;
}

// The next message within `bound`, answering pings; unreachable_error when none came.
json::object read_reply(herald::client::ws_client& ws, std::chrono::milliseconds bound,
                        const char* waiting_for) {
  const auto until = std::chrono::steady_clock::now() + bound;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    auto msg = left.count() > 0 ? ws.read(left) : std::nullopt;
    if (!msg) {
      if (ws.timed_out() || left.count() <= 0)
        throw herald::client::unreachable_error(std::string("no ") + waiting_for +
                                                " within the timeout");
      throw herald::client::unreachable_error(std::string("closed (") +
                                              std::to_string(ws.close_code()) + ") before the " +
                                              waiting_for);
    }
    auto m = json::parse(*msg).as_object();
    if (m.at("type").as_string() == "ping") {
      ws.send("{\"type\":\"pong\"}");
      continue;
    }
    return m;
  }
}

std::string error_text(const json::object& m) {
  auto field = [&m](const char* k) {
    const auto* v = m.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  return field("code") + ": " + field("message");
}

// Subscribes and prints each event (a line per event; --json: the event as the server wrote
// it); reconnects and resumes until killed. The first connection, authentication and subscribe
// are bounded by --timeout (exit 3); so is each reconnection: once the connection is lost,
// every attempt and every wait between them fit in --timeout from the loss, then exit 3. A
// refused authentication or subscribe exits 2.
int tail(const client_opts& c, const std::string& key, const std::vector<std::string>& topics,
         const std::string& types) {
  std::string resume;
  std::uint64_t last_seq = 0;
  int backoff_ms = 250;
  bool connected_once = false;
  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> lost_at;  // when the connection was lost, until back
  // What is left of --timeout for the current (re)connection: all of it for the first one.
  auto left = [&]() -> std::chrono::milliseconds {
    if (!lost_at) return c.bound();
    const auto l =
        std::chrono::duration_cast<std::chrono::milliseconds>(*lost_at + c.bound() - clock::now());
    if (l.count() <= 0)
      throw herald::client::unreachable_error("could not reconnect to " + c.server + " within " +
                                              c.timeout + " s");
    return l;
  };
  for (;;) {
    try {
      herald::client::ws_client ws;
      ws.connect(c.server, "/v1/ws", {}, left());
      json::object auth{{"type", "auth"}, {"api_key", key}};
      if (!resume.empty()) {
        auth["resume"] = resume;
        auth["last_seq"] = last_seq;
      }
      ws.send(json::serialize(auth));
      auto w = read_reply(ws, left(), "welcome");
      if (w.at("type").as_string() != "welcome") throw refused("auth: " + error_text(w));
      resume = std::string(w.at("resume_token").as_string());
      const bool recovered = w.at("recovered").as_bool();
      if (recovered) {
        std::cerr << "herald tail: resumed at seq " << last_seq << " on " << c.server << "\n";
      } else {
        if (w.contains("recovery_error"))
          std::cerr << "herald tail: not recovered (" << w.at("recovery_error").as_string()
                    << "): events in the gap are in GET /v1/events\n";
        last_seq = 0;
        ws.send(json::serialize(json::object{
            {"type", "subscribe"}, {"id", "tail"}, {"filters", tail_filters(topics, types)}}));
        auto ack = read_reply(ws, left(), "subscribe reply");
        if (ack.at("type").as_string() != "ack") throw refused("subscribe: " + error_text(ack));
        const auto* sub = ack.if_contains("subscription");
        std::cerr << "herald tail: subscribed"
                  << (sub && sub->is_object() && sub->as_object().contains("id")
                          ? " " + std::string(sub->as_object().at("id").as_string())
                          : std::string())
                  << " to "
                  << json::serialize(sub && sub->is_object() && sub->as_object().contains("filters")
                                         ? sub->as_object().at("filters")
                                         : json::value(tail_filters(topics, types)))
                  << " on " << c.server << "\n";
      }
      connected_once = true;
      lost_at.reset();
      backoff_ms = 250;
      while (auto msg = ws.read()) {
        auto m = json::parse(*msg).as_object();
        const auto type = m.at("type").as_string();
        if (type == "event") {
          last_seq = static_cast<std::uint64_t>(m.at("seq").as_int64());
          if (c.json) {
            // The event as the server wrote it (its `data` byte-exact): the frame ends with
            // "event":{...}}.
            const auto at = msg->find("\"event\":");
            std::cout << msg->substr(at + 8, msg->size() - at - 9) << std::endl;
          } else {
            const auto& e = m.at("event").as_object();
            std::cout << e.at("offset").as_int64() << " " << e.at("topic").as_string() << " "
                      << e.at("type").as_string();
            if (const auto* s = e.if_contains("subject"); s && s->is_string())
              std::cout << " subject=" << s->as_string();
            std::cout << " " << json::serialize(e.at("data")) << std::endl;
          }
        } else if (type == "ping") {
          ws.send("{\"type\":\"pong\"}");
        } else if (type == "error") {
          std::cerr << "herald tail: " << error_text(m) << "\n";
        }
      }
      if (ws.close_code() == 4001 || ws.close_code() == 4003)
        throw refused("closed by the server (" + std::to_string(ws.close_code()) + ")");
      std::cerr << "herald tail: closed (" << ws.close_code() << "), reconnecting\n";
    } catch (const herald::client::unreachable_error& e) {
      if (!connected_once || (lost_at && clock::now() >= *lost_at + c.bound())) throw;
      std::cerr << "herald tail: " << e.what() << ", retrying\n";
    }
    if (!lost_at) lost_at = clock::now();
    std::this_thread::sleep_for(std::min(std::chrono::milliseconds(backoff_ms), left()));
    backoff_ms = std::min(backoff_ms * 2, 10000);
  }
}

// `herald routes`: installs everything as `serve` would, on a memory store in a scratch data
// directory, prints the routes and exits without listening.
int list_routes(const std::string& config_file, bool as_json) {
  const auto scratch =
      std::filesystem::temp_directory_path() / ("herald-routes-" + std::to_string(::getpid()));
  ::setenv("HERALD_ADMIN_KEY", "herald-routes-listing", 1);
  std::map<std::string, std::string> flags{{"core.store", "memory"},
                                           {"core.data", scratch.string()}};
  int rc = 1;
  std::ostringstream out;
  auto* old = std::cout.rdbuf(as_json ? out.rdbuf() : std::cout.rdbuf());
  try {
    rc = herald::serve(herald::load_config(config_file, flags), false, true);
  } catch (...) {
    std::cout.rdbuf(old);
    std::filesystem::remove_all(scratch);
    throw;
  }
  std::cout.rdbuf(old);
  std::filesystem::remove_all(scratch);
  if (as_json) {
    json::array rows;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) {
      const auto sp = line.find(' ');
      if (sp != std::string::npos)
        rows.push_back(json::object{{"method", line.substr(0, sp)}, {"path", line.substr(sp + 1)}});
    }
    std::cout << json::serialize(rows) << std::endl;
  }
  return rc;
}

int config_check(const std::string& file, bool as_json) {
  const auto errors = herald::check_config_file(file);
  if (as_json) {
    json::array errs;
    for (const auto& e : errors) errs.emplace_back(e);
    std::cout << json::serialize(
                     json::object{{"file", file}, {"ok", errors.empty()}, {"errors", errs}})
              << std::endl;
  } else {
    for (const auto& e : errors) std::cerr << e << "\n";
    if (errors.empty()) std::cout << file << ": ok" << std::endl;
  }
  return errors.empty() ? 0 : exit_usage;
}

#ifndef HERALD_VERSION
#define HERALD_VERSION "unknown"
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "bench")
    return herald::bench::main(argc - 1, argv + 1);
  CLI::App app{
      "herald: a real-time event delivery gateway. Exit codes: 0 ok, 1 usage, "
      "2 refused by the server, 3 unreachable or timed out."};
  // One line per error (set before any subcommand: they copy it).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("herald: ") + e.what() + " (see --help)\n";
  });
  app.set_version_flag("--version", std::string("herald ") + HERALD_VERSION,
                       "print the version and exit");
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "run the server");
  std::string config_file, listen, data, store_spec;
  bool demo = false;
  serve->add_option("--config", config_file,
                    "TOML configuration file (SIGHUP reads it again; flags keep precedence)");
  serve->add_option("--listen", listen, "HOST:PORT (port 0: a free port)")->check(host_port);
  serve->add_option("--data", data, "data directory");
  serve->add_option("--store", store_spec,
                    "sqlite | memory | redis://HOST[:PORT][/DB] (cluster mode)");
  serve->add_flag("--demo", demo,
                  "create a demo tenant, app and publisher once and print how to use them");

  // Every client command: the server, --timeout, --json, --ca-file.
  client_opts cli;
  std::string ca_file;
  auto client_options = [&cli, &ca_file](CLI::App* cmd, bool prints_records) {
    cmd->add_option("--server", cli.server, "server base URL (http://, https://)")->required();
    cmd->add_option("--timeout", cli.timeout,
                    "seconds for name resolution, connection and reply (default 10)")
        ->check(seconds_check);
    cmd->add_option("--ca-file", ca_file, "PEM CA certificates to verify an https:// server with")
        ->check(CLI::ExistingFile);
    if (prints_records) cmd->add_flag("--json", cli.json, "print records as JSON, one per line");
  };

  auto* appcmd = app.add_subcommand("app", "manage apps (the admin API)");
  appcmd->require_subcommand(1);
  auto* create = appcmd->add_subcommand(
      "create", "create an app (and its tenant if missing); prints it with its secrets, once");
  std::string admin_key, tenant, name, role = "app", admin_data = "./var";
  client_options(create, true);
  create->add_option("--tenant", tenant, "tenant id (created when missing)")->required();
  create->add_option("--name", name, "app name, unique in the tenant")->required();
  create->add_option("--role", role, "app | admin | publisher");
  create->add_option("--admin-key", admin_key,
                     "admin key (default HERALD_ADMIN_KEY or DATA/admin.key)");
  create->add_option("--data", admin_data, "data directory holding admin.key");

  auto* pub = app.add_subcommand("publish", "publish one event; prints its id and offset");
  std::string api_key, topic, type, payload = "{}", subject;
  bool retain = false;
  client_options(pub, true);
  pub->add_option("--api-key", api_key, "publisher API key or access token")->required();
  pub->add_option("--topic", topic, "topic, e.g. /orders/42")->required();
  pub->add_option("--type", type, "event type, e.g. order.created")->required();
  pub->add_option("--data", payload, "JSON object (default {})");
  pub->add_option("--subject", subject, "subject the event is about (retained state key)");
  pub->add_flag("--retain", retain, "keep it as its subject's current state");

  auto* tl = app.add_subcommand(
      "tail", "subscribe and print events (reconnects and resumes); the subscription to stderr");
  std::vector<std::string> topics;
  std::string types;
  client_options(tl, true);
  tl->add_option("--api-key", api_key, "app API key")->required();
  tl->add_option("--topic", topics, "topic pattern (repeatable; default /**)")
      ->default_val(std::vector<std::string>{"/**"});
  tl->add_option("--types", types, "comma-separated types (prefix*)");

  auto* whycmd = app.add_subcommand(
      "why", "why an event did or did not reach a session (GET /v1/admin/why); prints JSON");
  std::string why_event, why_session;
  client_options(whycmd, true);
  whycmd->add_option("--event", why_event, "event id (evt_…)")->required();
  whycmd->add_option("--session", why_session, "session id, as `connections` shows")->required();
  whycmd->add_option("--admin-key", admin_key,
                     "admin key (default HERALD_ADMIN_KEY or DATA/admin.key)");
  whycmd->add_option("--data", admin_data, "data directory holding admin.key");

  auto* cfgcmd = app.add_subcommand(
      "config", "print every configuration key with its default ([SIGHUP]: reloadable)");
  bool cfg_json = false;
  cfgcmd->add_flag("--json", cfg_json, "print the keys as one JSON array");
  auto* cfgcheck = cfgcmd->add_subcommand(
      "check", "validate a configuration file (every error with its line); exit 1 on any");
  std::string check_file;
  cfgcheck->add_option("--config", check_file, "TOML configuration file")->required();
  cfgcheck->add_flag("--json", cfg_json, "print {file, ok, errors} as JSON");

  auto* routes = app.add_subcommand(
      "routes", "print every route the server registers with this configuration (METHOD /path)");
  bool routes_json = false;
  routes->add_option("--config", config_file, "TOML configuration file");
  routes->add_flag("--json", routes_json, "print the routes as one JSON array");

  // Listed for --help; `herald bench ...` is dispatched above, before this parser.
  app.add_subcommand("bench", "load generator (herald bench --help lists its options)")
      ->allow_extras();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : exit_usage;
  }
  try {
    herald::client::set_ca_file(ca_file);
    // A URL with an unknown scheme (or none) stops here, before any credential is sent.
    if (!cli.server.empty()) (void)herald::client::parse_url(cli.server);
    if (*serve) {
      std::map<std::string, std::string> flags;
      if (!listen.empty()) flags["core.listen"] = listen;
      if (!data.empty()) flags["core.data"] = data;
      if (!store_spec.empty()) flags["core.store"] = store_spec;
      return herald::serve(herald::load_config(config_file, flags), demo);
    }
    if (*create) return app_create(cli, admin_key_for(admin_key, admin_data), tenant, name, role);
    if (*pub) return publish(cli, api_key, topic, type, payload, subject, retain);
    if (*tl) return tail(cli, api_key, topics, types);
    if (*whycmd) return why(cli, admin_key_for(admin_key, admin_data), why_event, why_session);
    if (*cfgcheck) return config_check(check_file, cfg_json);
    if (*routes) return list_routes(config_file, routes_json);
    if (*cfgcmd) {
      std::cout << herald::describe_config(cfg_json);
      return 0;
    }
  } catch (const refused& e) {
    std::cerr << "herald: refused: " << e.what() << std::endl;
    return exit_refused;
  } catch (const herald::client::refused_error& e) {
    std::cerr << "herald: refused: " << e.what() << std::endl;
    return exit_refused;
  } catch (const herald::client::unreachable_error& e) {
    std::cerr << "herald: unreachable: " << e.what() << std::endl;
    return exit_unreachable;
  } catch (const std::exception& e) {
    std::cerr << "herald: " << e.what() << std::endl;
    return exit_usage;
  }
  return 0;
}
