// One Redis connection in pub/sub mode: SUBSCRIBE / PSUBSCRIBE pushes delivered to a callback.
// It keeps its set of channels and patterns and subscribes to all of them again on every
// reconnection; a PING every options.ping_interval_ms proves the link live. Redis pub/sub is
// fire-and-forget: messages published while the link was down are gone, so every drop is
// reported (state handler, up=false) and the caller re-syncs from the streams once it is up
// again. No Asio here.
// Thread-safe: members from any thread; handlers run on the io_thread and must not block.
// Destroy before its io_thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store/redis/connection.h"

namespace herald::redis {

struct message {
  std::string pattern;  // the PSUBSCRIBE pattern that matched; empty for SUBSCRIBE
  std::string channel;
  std::string payload;
  // Not a message but a barrier's answer (barrier(), its token in `payload`): every command
  // sent on the connection before it has run in Redis.
  bool barrier = false;
};
using message_handler = std::function<void(message&&)>;

class subscriber {
 public:
  // `on_message` and `on_state` run on the io_thread, in the order of the connection's
  // pushes: messages and barriers' answers. up: connected, and (P)SUBSCRIBE of every channel
  // and pattern sent (confirmed() counts Redis's confirmations).
  subscriber(io_thread& io, options opts, message_handler on_message, state_handler on_state);
  ~subscriber();  // closes; no handler runs after it returns
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  void start();
  void subscribe(std::vector<std::string> channels);
  void psubscribe(std::vector<std::string> patterns);
  void unsubscribe(std::vector<std::string> channels);
  void punsubscribe(std::vector<std::string> patterns);
  // PING `token` (non-empty) on the connection, after every change asked before: its answer
  // reaches on_message (barrier) once Redis ran them. Lost with the connection (on_state says).
  void barrier(std::string token);

  status wait_connected(std::int64_t timeout_ms);
  bool connected() const;
  std::uint64_t connects() const;
  // Channels plus patterns Redis confirmed on the current connection (its last count).
  std::int64_t confirmed() const;

  struct state;

 private:
  io_thread& io_;
  std::shared_ptr<link> link_;
  std::shared_ptr<state> state_;
};

}  // namespace herald::redis
