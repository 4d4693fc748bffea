// herald: serve, app create, publish, tail, why, config (design.md §4).
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
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

int app_create(const std::string& server, const std::string& key, const std::string& tenant,
               const std::string& name, const std::string& role) {
  const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + key}};
  auto t = http_call(server, "POST", "/v1/admin/tenants",
                     json::serialize(json::object{{"id", tenant}}), auth);
  if (t.status != 201 && t.status != 409) {
    std::cerr << "creating tenant: HTTP " << t.status << " " << t.body << "\n";
    return 1;
  }
  auto a = http_call(
      server, "POST", "/v1/admin/apps",
      json::serialize(json::object{{"tenant", tenant}, {"name", name}, {"role", role}}), auth);
  std::cout << a.body << std::endl;
  return a.status == 201 ? 0 : 1;
}

int publish(const std::string& server, const std::string& key, const std::string& topic,
            const std::string& type, const std::string& data, const std::string& subject,
            bool retain) {
  std::string body = "{\"topic\":" + json::serialize(json::string(topic)) +
                     ",\"type\":" + json::serialize(json::string(type)) + ",\"data\":" + data;
  if (!subject.empty()) body += ",\"subject\":" + json::serialize(json::string(subject));
  if (retain) body += ",\"retain\":true";
  body += "}";
  auto r = http_call(server, "POST", "/v1/events", body, {{"Authorization", "Bearer " + key}});
  std::cout << r.body << std::endl;
  return r.status == 201 ? 0 : 1;
}

// `herald why`: GET /v1/admin/why, the verdict printed as JSON. Exit 0 when the server answered
// (delivered or not: the verdict says), 1 on an error reply (404 unknown event or session).
int why(const std::string& server, const std::string& key, const std::string& event,
        const std::string& session) {
  auto enc = [](const std::string& v) {
    std::string out;
    for (const unsigned char c : v) {
      if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        static const char* hex = "0123456789ABCDEF";
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    return out;
  };
  auto r =
      http_call(server, "GET", "/v1/admin/why?event=" + enc(event) + "&session=" + enc(session), "",
                {{"Authorization", "Bearer " + key}});
  (r.status == 200 ? std::cout : std::cerr) << r.body << std::endl;
  return r.status == 200 ? 0 : 1;
}

// Subscribes and prints each event as a JSON line; reconnects and resumes until killed.
int tail(const std::string& server, const std::string& key, const std::vector<std::string>& topics,
         const std::string& types) {
  std::string resume;
  std::uint64_t last_seq = 0;
  int backoff_ms = 250;
  for (;;) {
    try {
      herald::client::ws_client ws;
      ws.connect(server, "/v1/ws");
      json::object auth{{"type", "auth"}, {"api_key", key}};
      if (!resume.empty()) {
        auth["resume"] = resume;
        auth["last_seq"] = last_seq;
      }
      ws.send(json::serialize(auth));
      auto welcome = ws.read(std::chrono::seconds(15));
      if (!welcome)
        throw std::runtime_error("no welcome (close code " + std::to_string(ws.close_code()) + ")");
      auto w = json::parse(*welcome).as_object();
      if (w.at("type").as_string() != "welcome") {
        std::cerr << "herald tail: " << *welcome << "\n";
        return 1;
      }
      resume = std::string(w.at("resume_token").as_string());
      const bool recovered = w.at("recovered").as_bool();
      if (!recovered) {
        if (w.contains("recovery_error"))
          std::cerr << "herald tail: not recovered (" << w.at("recovery_error").as_string()
                    << "): events in the gap are in GET /v1/events\n";
        last_seq = 0;
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
        ws.send(json::serialize(
            json::object{{"type", "subscribe"}, {"id", "tail"}, {"filters", filters}}));
      }
      backoff_ms = 250;
      while (auto msg = ws.read()) {
        auto m = json::parse(*msg).as_object();
        const auto type = m.at("type").as_string();
        if (type == "event") {
          last_seq = static_cast<std::uint64_t>(m.at("seq").as_int64());
          // Print the event as the server wrote it (its `data` byte-exact): the frame ends
          // with "event":{...}}.
          const auto at = msg->find("\"event\":");
          std::cout << msg->substr(at + 8, msg->size() - at - 9) << std::endl;
        } else if (type == "ping") {
          ws.send("{\"type\":\"pong\"}");
        } else if (type == "error") {
          std::cerr << "herald tail: " << *msg << "\n";
        }
      }
      std::cerr << "herald tail: closed (" << ws.close_code() << "), reconnecting\n";
      if (ws.close_code() == 4001 || ws.close_code() == 4003) return 1;
    } catch (const std::exception& e) {
      std::cerr << "herald tail: " << e.what() << ", retrying\n";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, 10000);
  }
}

// `herald routes`: installs everything as `serve` would, on a memory store in a scratch data
// directory, prints the routes and exits without listening.
int list_routes(const std::string& config_file) {
  const auto scratch =
      std::filesystem::temp_directory_path() / ("herald-routes-" + std::to_string(::getpid()));
  ::setenv("HERALD_ADMIN_KEY", "herald-routes-listing", 1);
  std::map<std::string, std::string> flags{{"core.store", "memory"},
                                           {"core.data", scratch.string()}};
  int rc = 1;
  try {
    rc = herald::serve(herald::load_config(config_file, flags), false, true);
  } catch (...) {
    std::filesystem::remove_all(scratch);
    throw;
  }
  std::filesystem::remove_all(scratch);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "bench")
    return herald::bench::main(argc - 1, argv + 1);
  CLI::App app{"herald: a real-time event delivery gateway"};
  app.require_subcommand(1);

  auto* serve = app.add_subcommand("serve", "run the server");
  std::string config_file, listen, data, store_spec;
  bool demo = false;
  serve->add_option("--config", config_file, "TOML configuration file");
  serve->add_option("--listen", listen, "HOST:PORT (port 0: a free port)")->check(host_port);
  serve->add_option("--data", data, "data directory");
  serve->add_option("--store", store_spec, "sqlite | memory");
  serve->add_flag("--demo", demo,
                  "create a demo tenant, app and publisher once and print how to use them");

  auto* appcmd = app.add_subcommand("app", "manage apps");
  appcmd->require_subcommand(1);
  auto* create = appcmd->add_subcommand("create", "create an app (and its tenant if missing)");
  std::string server_url, admin_key, tenant, name, role = "app", admin_data = "./var";
  create->add_option("--server", server_url, "server URL")->required();
  create->add_option("--tenant", tenant)->required();
  create->add_option("--name", name)->required();
  create->add_option("--role", role, "app | admin | publisher");
  create->add_option("--admin-key", admin_key,
                     "admin key (default HERALD_ADMIN_KEY or DATA/admin.key)");
  create->add_option("--data", admin_data, "data directory holding admin.key");
  // https:// servers: the certificate is verified against the system's trust store, or this.
  std::string ca_file;
  const std::string ca_help = "PEM CA certificates to verify an https:// server with";
  create->add_option("--ca-file", ca_file, ca_help)->check(CLI::ExistingFile);

  auto* pub = app.add_subcommand("publish", "publish one event");
  std::string api_key, topic, type, payload = "{}", subject;
  bool retain = false;
  pub->add_option("--server", server_url)->required();
  pub->add_option("--api-key", api_key, "publisher API key or access token")->required();
  pub->add_option("--topic", topic)->required();
  pub->add_option("--type", type)->required();
  pub->add_option("--data", payload, "JSON object");
  pub->add_option("--subject", subject);
  pub->add_flag("--retain", retain);
  pub->add_option("--ca-file", ca_file, ca_help)->check(CLI::ExistingFile);

  auto* tl = app.add_subcommand("tail", "subscribe and print events (reconnects and resumes)");
  std::vector<std::string> topics;
  std::string types;
  tl->add_option("--server", server_url)->required();
  tl->add_option("--api-key", api_key, "app API key")->required();
  tl->add_option("--topic", topics, "topic pattern (repeatable)")
      ->default_val(std::vector<std::string>{"/**"});
  tl->add_option("--types", types, "comma-separated types (prefix*)");
  tl->add_option("--ca-file", ca_file, ca_help)->check(CLI::ExistingFile);

  auto* whycmd =
      app.add_subcommand("why", "why an event did or did not reach a session (GET /v1/admin/why)");
  std::string why_event, why_session;
  whycmd->add_option("--server", server_url, "server URL")->required();
  whycmd->add_option("--event", why_event, "event id (evt_…)")->required();
  whycmd->add_option("--session", why_session, "session id, as `connections` shows")->required();
  whycmd->add_option("--admin-key", admin_key,
                     "admin key (default HERALD_ADMIN_KEY or DATA/admin.key)");
  whycmd->add_option("--data", admin_data, "data directory holding admin.key");
  whycmd->add_option("--ca-file", ca_file, ca_help)->check(CLI::ExistingFile);

  auto* cfgcmd = app.add_subcommand("config", "print every configuration key with its default");
  auto* cfgcheck = cfgcmd->add_subcommand(
      "check", "validate a configuration file (every error with its line); exit 1 on any");
  std::string check_file;
  cfgcheck->add_option("--config", check_file, "TOML configuration file")->required();

  auto* routes = app.add_subcommand(
      "routes", "print every route the server registers with this configuration (METHOD /path)");
  routes->add_option("--config", config_file, "TOML configuration file");

  CLI11_PARSE(app, argc, argv);
  try {
    herald::client::set_ca_file(ca_file);
    // A URL with an unknown scheme (or none) stops here, before any credential is sent.
    if (!server_url.empty()) (void)herald::client::parse_url(server_url);
    if (*serve) {
      std::map<std::string, std::string> flags;
      if (!listen.empty()) flags["core.listen"] = listen;
      if (!data.empty()) flags["core.data"] = data;
      if (!store_spec.empty()) flags["core.store"] = store_spec;
      return herald::serve(herald::load_config(config_file, flags), demo);
    }
    if (*create)
      return app_create(server_url, admin_key_for(admin_key, admin_data), tenant, name, role);
    if (*pub) return publish(server_url, api_key, topic, type, payload, subject, retain);
    if (*tl) return tail(server_url, api_key, topics, types);
    if (*whycmd)
      return why(server_url, admin_key_for(admin_key, admin_data), why_event, why_session);
    if (*cfgcheck) {
      const auto errors = herald::check_config_file(check_file);
      for (const auto& e : errors) std::cerr << e << "\n";
      if (!errors.empty()) return 1;
      std::cout << check_file << ": ok" << std::endl;
      return 0;
    }
    if (*routes) return list_routes(config_file);
    if (*cfgcmd) {
      std::cout << herald::describe_config();
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "herald: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
