// The boundary between transport/ (sockets, framing, queues, timers) and the dialects (what
// the bytes mean). A dialect implements ws_handler; transport implements ws_connection, which
// owns the handler. No Asio or Beast here. Both live on one shard and are called only on its
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "transport/http_types.h"

namespace herald {

// One outgoing text message: head + shared + tail, written as one WebSocket message. `shared`
// lets many connections send one rendered event without copying it.
struct out_frame {
  std::string head;
  std::shared_ptr<const std::string> shared;
  std::string tail;
  std::size_t size() const noexcept {
    return head.size() + (shared ? shared->size() : 0) + tail.size();
  }
};

// One outgoing text message in three borrowed parts, for the hot path: when nothing is queued
// the bytes go straight into the socket's batch; only a message that has to wait in the queue
// is made into an out_frame, by `own(parts, ctx)`.
struct frame_parts {
  std::string_view head, body, tail;
  out_frame (*own)(const frame_parts& parts, const void* ctx) = nullptr;
  const void* ctx = nullptr;
  std::size_t size() const noexcept { return head.size() + body.size() + tail.size(); }
};

class ws_connection {
 public:
  virtual ~ws_connection() = default;
  // Queues a text message. False (and nothing queued) when the queue would pass its byte bound
  // or the connection is closing; the caller decides what that means (usually 4010).
  virtual bool send(out_frame f) = 0;
  // The same for borrowed parts (see frame_parts).
  virtual bool send(const frame_parts& parts) = 0;
  // Starts the closing handshake once the queue is written (discard_queue: right away). The
  // TCP connection is dropped if the handshake has not completed within close_timeout.
  virtual void close(int code, std::string reason, bool discard_queue = false) = 0;
  // Holds writes (queued messages keep counting against the bound) until released.
  virtual void hold(bool on) = 0;
  // An RFC 6455 ping control frame.
  virtual void ping() = 0;
  // Calls `done` on this shard once everything queued so far has been written to the socket
  // (never, if the connection ends first).
  virtual void after_written(std::function<void()> done) = 0;
  virtual std::size_t queued_bytes() const = 0;
  virtual bool closing() const = 0;
  virtual std::size_t shard() const = 0;
  virtual const std::string& remote() const = 0;
  // Runs `work` on the blocking pool (store, router), then `then` on this connection's shard
  // if the connection is still alive.
  virtual void offload(std::function<void()> work, std::function<void()> then) = 0;
  // Runs `fn` on this connection's shard after `delay_ms`, if the connection is still alive.
  virtual void after(std::int64_t delay_ms, std::function<void()> fn) = 0;
};

class ws_handler {
 public:
  virtual ~ws_handler() = default;
  // The upgrade completed; the handler may send.
  virtual void on_open() = 0;
  // One complete text message (binary messages are passed too, with binary=true).
  virtual void on_message(std::string_view text, bool binary) = 0;
  // Any inbound frame, control frames included (pongs, pings): heartbeat bookkeeping.
  virtual void on_traffic() {}
  // Timeouts and heartbeats: called about a second after on_open, then when the time it last
  // returned has come (a shard's timer heap, one second's resolution). Returns when it next
  // needs calling (ms since the epoch; traffic in between only ever moves that later), or 0
  // for never. Quiet sockets cost nothing between their deadlines.
  virtual std::int64_t on_tick(std::int64_t now_ms) = 0;
  // The server is draining: close (1012) now.
  virtual void on_drain() = 0;
  // The socket's queue passed its bound through bytes transport queued itself (the pongs Beast
  // answers a client's pings with, a heartbeat ping): no send() of the handler's was there to
  // refuse, so the handler is told here and closes as a slow consumer in its dialect's words.
  // A handler that leaves the socket open gets transport's 4010 (queue discarded).
  virtual void on_send_overflow() {}
  // Whether a principal was admitted on this socket. Until then its queue has the small
  // unauthenticated bound (transport_limits::unauth_send_queue_bytes): a stranger's pings may
  // not hold megabytes. Handlers that do not say are treated as admitted.
  virtual bool admitted() const { return true; }
  // The socket is gone (close_code as sent or received; 1006 when none).
  virtual void on_closed(int close_code) = 0;
};

// Makes the handler for an accepted upgrade. Called on the connection's shard.
using ws_handler_factory =
    std::function<std::unique_ptr<ws_handler>(ws_connection& conn, const http_request& upgrade)>;

}  // namespace herald
