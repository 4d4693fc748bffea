// One Redis connection for commands: TCP on an io_thread, pipelined (every command is written
// as soon as it is issued, many in flight, replies matched in order), a timeout per command,
// bounded buffers, and reconnection with backoff for the object's whole life. No Asio here.
//
// Failure contract: while the connection is down, exec() fails at once (errc::unavailable,
// naming the URL and the last error); when it drops, every command in flight completes with
// errc::unavailable ("redis: connection lost: ..."), so no caller waits forever. A command
// whose reply does not arrive in time completes with a timeout error; whether Redis ran it is
// unknown (as for any lost connection): writes that matter carry their own idempotency.
// Thread-safe: every member may be called from any thread; handlers run on the io_thread and
// must not block. Destroy before its io_thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/errc.h"
#include "store/redis/io_thread.h"
#include "store/redis/options.h"
#include "store/redis/reply.h"

namespace herald::redis {

class link;
using reply_handler = std::function<void(result<reply>)>;
// up: connected and the handshake (CLIENT SETNAME, SELECT) done; down: each drop and each
// failed attempt, with the reason. Runs on the io_thread.
using state_handler = std::function<void(bool up, const std::string& why)>;

class connection {
 public:
  connection(io_thread& io, options opts);
  // Closes: commands in flight complete with "redis: connection closed" before it returns.
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void set_state_handler(state_handler h);  // before start()
  void start();                             // connects, and reconnects until destroyed

  // Sends `cmd`; `h` gets the reply (a server error is a reply of kind error) or a transport
  // error. timeout_ms 0: options.command_timeout_ms.
  void exec(const command& cmd, reply_handler h, std::int64_t timeout_ms = 0);
  // The same, blocking until the reply. Not on the io_thread (errc::internal there).
  result<reply> call(const command& cmd, std::int64_t timeout_ms = 0);
  // Blocks until up, or fails after timeout_ms with the last connection error.
  status wait_connected(std::int64_t timeout_ms);
  bool connected() const;
  std::uint64_t connects() const;  // handshakes completed (1 + reconnections)

  struct shared;

 private:
  io_thread& io_;
  std::shared_ptr<link> link_;
  std::shared_ptr<shared> shared_;
  state_handler user_state_;
};

// FCALL (or FCALL_RO) `cmd` on `c`, blocking like call(). A "Function not found" answer (a
// Redis restarted without persistence lost its libraries) loads `library` (FUNCTION LOAD
// REPLACE) and calls once more. A refused load comes back as that error reply, its text led by
// "FUNCTION LOAD: ".
result<reply> call_function(connection& c, const command& cmd, std::string_view library);

// What "acknowledged" means on the Redis found, read at start (CONFIG GET): the cluster node
// reports it, and refuses an evicting policy (evicted stream entries would be lost events).
struct server_config {
  std::string appendonly;        // "yes" | "no"
  std::string appendfsync;       // "always" | "everysec" | "no"
  std::string maxmemory_policy;  // "noeviction", "allkeys-lru", ...
  bool evicting() const { return maxmemory_policy != "noeviction"; }
  // One line for the start-up log, e.g. "appendonly=yes appendfsync=always: an acknowledged
  // write survives a Redis crash".
  std::string durability() const;
};

// Blocking (not on the io_thread): CONFIG GET of the three, pipelined.
result<server_config> read_server_config(connection& c);

}  // namespace herald::redis
