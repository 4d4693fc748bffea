#include "store/redis/redis_server_for_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace herald::redis {
namespace {

// HERALD_REDIS_SERVER overrides it (another build of Redis; or a wrong path, to see the failure).
std::string server_binary() {
  const char* env = std::getenv("HERALD_REDIS_SERVER");
  return env && *env ? env : "/usr/bin/redis-server";
}
constexpr auto start_deadline = std::chrono::seconds(10);

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("redis test: cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepts(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

std::string log_tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

}  // namespace

redis_server_for_test::redis_server_for_test(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
  binary_ = server_binary();
  if (::access(binary_.c_str(), X_OK) != 0) {
    throw std::runtime_error("redis-server is not installed (" + binary_ +
                             "): run scripts/deps.sh, which installs Debian's redis-server "
                             "package");
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "herald-redis-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("redis test: mkdtemp failed");
  dir_ = tmpl;
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (spawn()) return;
  }
  std::string log = log_tail(dir_ + "/log");
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);  // no destructor runs after a throwing constructor
  throw std::runtime_error("redis-server did not start; its log:\n" + log);
}

redis_server_for_test::~redis_server_for_test() {
  kill_for_test();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string redis_server_for_test::url(std::uint32_t db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

bool redis_server_for_test::log_says_ready() const {
  std::ifstream in(dir_ + "/log");
  std::string line;
  while (std::getline(in, line))
    if (line.find("Ready to accept connections") != std::string::npos) return true;
  return false;
}

bool redis_server_for_test::spawn() {
  std::vector<std::string> args = {
      binary_,  "--port",    std::to_string(port_), "--bind",      "127.0.0.1",
      "--save", "",          "--appendonly",        "no",          "--dir",
      dir_,     "--logfile", dir_ + "/log",         "--daemonize", "no"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::error_code ignored;
  std::filesystem::remove(dir_ + "/log", ignored);  // a restart's log starts afresh
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (::posix_spawn(&pid_, binary_.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error("redis test: posix_spawn of redis-server failed");
  }
  auto deadline = std::chrono::steady_clock::now() + start_deadline;
  while (std::chrono::steady_clock::now() < deadline) {
    // Ours, listening: its own log says so. A connect alone is not proof: another process
    // (a parallel test's server) may have taken the port between free_port() and the spawn,
    // and a test would then talk to it while this server exits.
    if (log_says_ready() && accepts(port_)) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {  // exited: the port was taken, or bad args
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill_for_test();
  return false;
}

void redis_server_for_test::kill_for_test() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
}

void redis_server_for_test::restart_for_test() {
  kill_for_test();
  if (!spawn()) {
    throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) +
                             "; its log:\n" + log_tail(dir_ + "/log"));
  }
}

}  // namespace herald::redis
