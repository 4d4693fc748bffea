// The listener: N shards (one io_context{1} and one thread each), a blocking pool for store
// and router work, HTTP/1.1 keep-alive sessions and WebSocket sessions on Boost.Beast.
// Accepted connections are spread over the shards and stay on theirs for life. No Asio in
// this header. Thread-safety: configure (mount, set_*) before listen(); stop() is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transport/http_types.h"
#include "transport/ws_types.h"

namespace herald {

struct transport_limits {
  std::size_t send_queue_bytes = 4194304;  // per socket; past it send() refuses (slow consumer)
  // The same bound for a socket whose handler has not admitted a principal (ws_handler::
  // admitted): control frames it provokes (pongs) and early replies only.
  std::size_t unauth_send_queue_bytes = 65536;
  std::int64_t close_timeout_ms = 10000;  // closing handshake, then the TCP connection drops
  std::size_t max_body_bytes = 1048576;   // largest HTTP body read (routes enforce their own)
  std::size_t max_header_bytes = 16384;   // request line + headers (max_path_bytes fits)
  std::int64_t http_idle_ms = 30000;      // an HTTP keep-alive connection with no request
  // Accepted TCP connections (HTTP and WebSocket, every dialect), counted at accept: past the
  // bound a connection is answered 503 and closed (0: no bound). Set it below the open-file
  // limit, so that accept() itself never fails for want of a descriptor.
  std::size_t max_connections = 0;
  std::size_t max_connections_per_address = 0;  // the same per remote IP address; 429
  std::int64_t tls_handshake_ms = 10000;        // a TLS handshake, then the connection drops
};

struct ws_mount {
  std::string path;  // exact path, e.g. "/v1/ws"
  ws_handler_factory factory;
  std::size_t max_message_bytes = 65536;  // inbound; past it: close 1009
  // When set, the bound in force, checked at each step of reading a message (a SIGHUP's new
  // bound applies to an open socket's next message, raised or lowered); max_message_bytes is
  // then unused. Called on the socket's shard.
  std::function<std::size_t()> current_max_message_bytes;
  bool compress = false;  // accept permessage-deflate
  // After the server's close frame, the TCP connection drops if the client's has not come
  // within this long; 0: the server's transport_limits::close_timeout_ms.
  std::int64_t close_timeout_ms = 0;
};

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t shards = 0;            // 0: the CPUs in this process's affinity mask
  std::size_t blocking_threads = 8;  // store and router work
  transport_limits limits;
  // PEM files; both set: the listener speaks only TLS (1.2 and later), HTTPS and WSS.
  std::string tls_cert_file, tls_key_file;
};

using http_handler = std::function<http_response(const http_request&)>;
// The reply to a request transport refuses before any handler sees it: 400 (malformed request),
// 413 (body past max_body_bytes), 414 (request line past max_header_bytes), 431 (header fields
// past it). The
// request holds what could be read of it (method, target, path; possibly empty). Runs on a
// shard thread: must not block.
using error_renderer =
    std::function<http_response(const http_request& req, int status, std::string message)>;
using shard_tick = std::function<void(std::size_t shard, std::int64_t now_ms)>;
// Told of each connection refused at accept, before any HTTP: `limit` is "max_connections"
// (status 503) or "max_connections_per_address" (429), `remote` the peer's IP address (empty if
// unknown). Runs on the accepting thread: must not block (app/ logs it through op_events).
using accept_refusal_observer =
    std::function<void(std::string_view limit, int status, std::string_view remote)>;

class server {
 public:
  explicit server(server_options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::size_t shard_count() const;
  // Post functions, one per shard, for the hub.
  std::vector<std::function<void(std::function<void()>)>> shard_posts();
  // Runs on the blocking pool; must not block forever.
  void set_http_handler(http_handler h);
  // Default: the native error body {"error":{"code":…,"message":…}}.
  void set_error_renderer(error_renderer r);
  void mount(ws_mount m);
  void set_accept_refusal_observer(accept_refusal_observer f);
  // Called on each shard about once a second.
  void set_shard_tick(shard_tick t);
  // Runs first on each shard thread (e.g. hub::bind_thread).
  void set_thread_init(std::function<void(std::size_t)> f);
  // Runs a task on the blocking pool.
  void offload(std::function<void()> task);

  // Binds and listens (loading the TLS certificate first when configured); returns the bound
  // port (for port 0). Throws on failure (start-up), naming the file or address.
  std::uint16_t listen();
  bool tls() const;
  // Thread-safe: reads the TLS certificate and key again for new connections. Returns an
  // error message ("" on success, or when TLS is off); the previous certificate then stays.
  std::string reload_tls();
  // Thread-safe: new bounds for connections accepted from now on (max_connections,
  // max_connections_per_address; 0: unbounded). Connections open stay.
  void set_connection_limits(std::size_t max_connections, std::size_t per_address);
  // Thread-safe: new max_body_bytes and max_header_bytes for requests read from now on.
  void set_http_limits(std::size_t max_body_bytes, std::size_t max_header_bytes);
  // Starts the shard threads and serves until stop() has drained; blocks.
  void run();
  // Thread-safe: stops accepting, asks every socket to close (handlers' on_drain), waits up to
  // `deadline_ms` for them, then stops the shards. run() returns after.
  void stop(std::int64_t deadline_ms);

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// CPUs in this process's affinity mask (at least 1).
std::size_t affinity_cpus();

}  // namespace herald
