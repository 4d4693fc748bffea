// Tests only: a real redis-server on a free 127.0.0.1 port, in a temporary directory, with no
// persistence (--save '' --appendonly no), killed by its PID. A missing redis-server is a test
// failure naming the package (scripts/deps.sh installs it), never a skip.
// Owned by one test thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace herald::redis {

class redis_server_for_test {
 public:
  // Starts it (retrying on another port if the one picked was taken meanwhile); throws
  // std::runtime_error naming what failed (the binary, the port, the log's tail).
  explicit redis_server_for_test(std::vector<std::string> extra_args = {});
  ~redis_server_for_test();  // SIGKILL, waitpid, removes the directory
  redis_server_for_test(const redis_server_for_test&) = delete;
  redis_server_for_test& operator=(const redis_server_for_test&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::string url(std::uint32_t db = 0) const;
  void kill_for_test();     // SIGKILL and reap: the server dies mid-conversation
  void restart_for_test();  // the same port and directory again

 private:
  bool spawn();                 // false when the port was taken (the child exits at once)
  bool log_says_ready() const;  // its log has "Ready to accept connections"

  std::string binary_;
  std::string dir_;
  std::vector<std::string> extra_args_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace herald::redis
