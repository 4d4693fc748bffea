// transport/ internals shared by server.cc, http_session.cc and ws_session.cc.
#pragma once

#include <atomic>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "transport/net.h"
#include "transport/server.h"
#include "transport/tls_stream.h"

namespace herald {

class ws_session;

// A socket's next visit by its shard's tick. Valid while the socket is live, its serial is the
// same (an address may be reused) and it still wants this time (a newer, earlier entry wins).
struct tick_entry {
  std::int64_t due;  // ms since the epoch
  ws_session* socket;
  std::uint64_t serial;
  friend bool operator>(const tick_entry& a, const tick_entry& b) { return a.due > b.due; }
};

struct shard_ctx {
  explicit shard_ctx(std::size_t i) : index(i), ctx(1), tick(ctx) {}
  std::size_t index;
  net::io_context ctx;
  net::steady_timer tick;  // once a second: visits only the sockets whose time has come
  std::unordered_set<ws_session*> sockets;  // live WebSocket sessions of this shard
  std::vector<tick_entry> timers;           // min-heap by due (std::greater)
  // Sockets that wrote lately: the tick frees their send buffers once they go quiet.
  std::vector<std::pair<ws_session*, std::uint64_t>> active;
  std::uint64_t next_serial = 1;
  std::size_t http_sessions = 0;
  std::thread thread;
};

// One accepted connection's place under max_connections and max_connections_per_address,
// given back when the connection ends (moved from the HTTP session to its WebSocket session).
class conn_slot {
 public:
  conn_slot() = default;
  conn_slot(server::impl* srv, std::string address) : srv_(srv), address_(std::move(address)) {}
  conn_slot(conn_slot&& o) noexcept
      : srv_(std::exchange(o.srv_, nullptr)), address_(std::move(o.address_)) {}
  conn_slot& operator=(conn_slot&&) = delete;
  ~conn_slot();

 private:
  server::impl* srv_ = nullptr;
  std::string address_;
};

struct server::impl {
  server_options opts;
  // Connections counted at accept (conn_slot), and per remote address when that is bounded.
  // Before the shards: a session destroyed with its shard's io_context gives its slot back.
  std::atomic<std::size_t> connections{0};
  // opts.limits' connection bounds, replaced at run time by set_connection_limits (SIGHUP).
  std::atomic<std::size_t> max_connections{0}, max_connections_per_address{0};
  // HTTP request bounds (SIGHUP may change them): read once per request.
  std::atomic<std::size_t> max_body_bytes{0}, max_header_bytes{0};
  std::mutex address_mu;
  std::unordered_map<std::string, std::size_t> per_address;
  std::atomic<std::size_t> refusing{0};  // refused connections still being answered
  std::vector<std::unique_ptr<shard_ctx>> shards;
  net::thread_pool pool;
  std::unique_ptr<tcp::acceptor> acceptor;
  http_handler http;
  error_renderer render_error;  // may be empty: error_reply's native body
  std::vector<ws_mount> mounts;
  shard_tick tick;
  accept_refusal_observer on_refused;  // may be empty
  std::function<void(std::size_t)> thread_init;
  std::atomic<std::size_t> inflight_http{0};
  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  // Set once the shards have stopped: the pool takes no more work, and work still queued is
  // skipped (its socket or its reply is gone); what runs finishes before run() returns.
  std::atomic<bool> pool_closed{false};
  std::size_t next_shard = 0;
  std::unique_ptr<tls_context> tls;  // set by listen() when a certificate is configured

  explicit impl(server_options o);
  // A slot for a connection from `address`, or the status it is refused with (503: the
  // server's bound, 429: the address's).
  int take_slot(const std::string& address);
  void give_slot(const std::string& address);
  // Runs `task` on the blocking pool unless the pool is closed (then it is dropped).
  void offload(std::function<void()> task);
  const ws_mount* find_mount(std::string_view path) const;
};

// Serves one accepted TCP connection (HTTP, then maybe a WebSocket upgrade). Runs on `sh`.
net::awaitable<void> run_http_session(server::impl& srv, shard_ctx& sh, tcp::socket socket,
                                      conn_slot slot);

// Takes over an upgraded connection.
void start_ws_session(server::impl& srv, shard_ctx& sh, conn_stream stream, conn_slot slot,
                      http::request<http::string_body> req, http_request parsed,
                      const ws_mount& mount);

}  // namespace herald
