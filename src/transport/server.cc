#include "transport/server.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "core/clock.h"
#include "transport/server_impl.h"
#include "transport/ws_session.h"

namespace herald {

std::size_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<std::size_t>(n) : 1;
}

server::impl::impl(server_options o)
    : opts(std::move(o)), pool(opts.blocking_threads == 0 ? 4 : opts.blocking_threads) {
  max_connections.store(opts.limits.max_connections);
  max_connections_per_address.store(opts.limits.max_connections_per_address);
  max_body_bytes.store(opts.limits.max_body_bytes);
  max_header_bytes.store(opts.limits.max_header_bytes);
  const std::size_t n = opts.shards == 0 ? affinity_cpus() : opts.shards;
  for (std::size_t i = 0; i < n; ++i) shards.push_back(std::make_unique<shard_ctx>(i));
}

const ws_mount* server::impl::find_mount(std::string_view path) const {
  for (const auto& m : mounts)
    if (m.path == path) return &m;
  return nullptr;
}

server::server(server_options opts) : impl_(std::make_unique<impl>(std::move(opts))) {}

server::~server() {
  for (auto& s : impl_->shards) s->ctx.stop();
  for (auto& s : impl_->shards)
    if (s->thread.joinable()) s->thread.join();
  impl_->pool.join();
}

std::size_t server::shard_count() const { return impl_->shards.size(); }

std::vector<std::function<void(std::function<void()>)>> server::shard_posts() {
  std::vector<std::function<void(std::function<void()>)>> out;
  for (auto& s : impl_->shards) {
    net::io_context* ctx = &s->ctx;
    out.emplace_back([ctx](std::function<void()> t) { net::post(*ctx, std::move(t)); });
  }
  return out;
}

void server::set_http_handler(http_handler h) { impl_->http = std::move(h); }
void server::set_error_renderer(error_renderer r) { impl_->render_error = std::move(r); }
void server::mount(ws_mount m) { impl_->mounts.push_back(std::move(m)); }
void server::set_shard_tick(shard_tick t) { impl_->tick = std::move(t); }
void server::set_accept_refusal_observer(accept_refusal_observer f) {
  impl_->on_refused = std::move(f);
}
void server::set_thread_init(std::function<void(std::size_t)> f) {
  impl_->thread_init = std::move(f);
}
void server::offload(std::function<void()> task) { impl_->offload(std::move(task)); }

void server::impl::offload(std::function<void()> task) {
  if (pool_closed.load()) return;
  net::post(pool, [this, task = std::move(task)] {
    if (!pool_closed.load()) task();
  });
}

// `address` is empty when max_connections_per_address was 0 at accept: that connection is not
// counted per address (and its release finds nothing to give back), whatever the bound later.
int server::impl::take_slot(const std::string& address) {
  const std::size_t max = max_connections.load(std::memory_order_relaxed);
  if (max != 0 && connections.load() >= max) return 503;
  if (!address.empty()) {
    const std::size_t per = max_connections_per_address.load(std::memory_order_relaxed);
    std::lock_guard g(address_mu);
    std::size_t& n = per_address[address];
    if (per != 0 && n >= per) {
      if (n == 0) per_address.erase(address);
      return 429;
    }
    ++n;
  }
  ++connections;
  return 0;
}

void server::set_connection_limits(std::size_t max_connections, std::size_t per_address) {
  impl_->max_connections.store(max_connections);
  impl_->max_connections_per_address.store(per_address);
}

void server::set_http_limits(std::size_t max_body_bytes, std::size_t max_header_bytes) {
  impl_->max_body_bytes.store(max_body_bytes);
  impl_->max_header_bytes.store(max_header_bytes);
}

void server::impl::give_slot(const std::string& address) {
  --connections;
  if (address.empty()) return;
  std::lock_guard g(address_mu);
  auto it = per_address.find(address);
  if (it != per_address.end() && --it->second == 0) per_address.erase(it);
}

conn_slot::~conn_slot() {
  if (srv_ != nullptr) srv_->give_slot(address_);
}

bool server::tls() const { return impl_->tls != nullptr; }

std::string server::reload_tls() { return impl_->tls ? impl_->tls->reload() : std::string(); }

std::uint16_t server::listen() {
  auto& im = *impl_;
  if (!im.opts.tls_cert_file.empty() || !im.opts.tls_key_file.empty()) {
    if (im.opts.tls_cert_file.empty() || im.opts.tls_key_file.empty())
      throw std::runtime_error("core.tls_cert_file and core.tls_key_file go together");
    im.tls = std::make_unique<tls_context>(im.opts.tls_cert_file, im.opts.tls_key_file);
  }
  const auto addr = net::ip::make_address(im.opts.host);
  tcp::endpoint ep(addr, im.opts.port);
  im.acceptor = std::make_unique<tcp::acceptor>(im.shards[0]->ctx);
  im.acceptor->open(ep.protocol());
  im.acceptor->set_option(net::socket_base::reuse_address(true));
  im.acceptor->bind(ep);
  im.acceptor->listen(net::socket_base::max_listen_connections);
  return im.acceptor->local_endpoint().port();
}

namespace {

// A connection past max_connections (503) or max_connections_per_address (429): a plain
// listener answers why (the request is read first, so that the close that follows does not
// reset the reply away) and closes; a TLS listener closes at once. At most a few are answered
// at a time; past that they are closed unanswered.
net::awaitable<void> refuse(server::impl& im, tcp::socket sock, int status) {
  struct counted {
    std::atomic<std::size_t>& n;
    ~counted() { --n; }
  } c{im.refusing};
  beast::tcp_stream stream(std::move(sock));
  stream.expires_after(std::chrono::seconds(2));
  beast::flat_buffer buf;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(im.max_header_bytes.load()));
  (void)co_await http::async_read_header(stream, buf, parser, use_nothrow);
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "herald");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::retry_after, "1");
  res.body() = status == 429 ? R"({"error":{"code":"too_many_requests","message":)"
                               R"("too many connections from this address"}})"
                             : R"({"error":{"code":"unavailable","message":)"
                               R"("the server has too many connections"}})";
  res.keep_alive(false);
  res.prepare_payload();
  (void)co_await http::async_write(stream, res, use_nothrow);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

constexpr std::size_t max_refusing = 64;

net::awaitable<void> accept_loop(server::impl& im) {
  for (;;) {
    shard_ctx& target = *im.shards[im.next_shard++ % im.shards.size()];
    auto [ec, sock] = co_await im.acceptor->async_accept(target.ctx, use_nothrow);
    if (ec) {
      if (ec == net::error::operation_aborted || im.draining.load()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      net::steady_timer t(im.shards[0]->ctx, std::chrono::milliseconds(50));
      co_await t.async_wait(use_nothrow);
      continue;
    }
    beast::error_code sec;
    std::string address;
    if (im.max_connections_per_address.load(std::memory_order_relaxed) != 0) {
      const auto ep = sock.remote_endpoint(sec);
      if (!sec) address = ep.address().to_string();
    }
    if (const int refused = im.take_slot(address); refused != 0) {
      if (im.on_refused) {
        if (address.empty()) {
          const auto ep = sock.remote_endpoint(sec);
          if (!sec) address = ep.address().to_string();
        }
        im.on_refused(refused == 503 ? "max_connections" : "max_connections_per_address", refused,
                      address);
      }
      if (im.tls || im.refusing.load() >= max_refusing) {
        sock.close(sec);
      } else {
        ++im.refusing;
        net::co_spawn(target.ctx, refuse(im, std::move(sock), refused), net::detached);
      }
      continue;
    }
    sock.set_option(tcp::no_delay(true), sec);
    net::co_spawn(target.ctx,
                  run_http_session(im, target, std::move(sock), conn_slot(&im, address)),
                  net::detached);
  }
}

void arm_tick(server::impl& im, shard_ctx& sh) {
  sh.tick.expires_after(std::chrono::seconds(1));
  sh.tick.async_wait([&im, &sh](beast::error_code ec) {
    if (ec) return;
    const std::int64_t now = now_ms();
    set_coarse_now_ms(now);
    if (im.tick) im.tick(sh.index, now);
    // Only the sockets whose deadline has come (a heartbeat, a timeout): a quiet socket is
    // visited once per heartbeat interval, not every second.
    auto& heap = sh.timers;
    while (!heap.empty() && heap.front().due <= now) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      const tick_entry e = heap.back();
      heap.pop_back();
      ws_session* s = e.socket;
      if (sh.sockets.contains(s) && s->serial() == e.serial && s->due() == e.due) s->tick(now);
    }
    std::erase_if(sh.active, [&](const std::pair<ws_session*, std::uint64_t>& a) {
      if (!sh.sockets.contains(a.first) || a.first->serial() != a.second) return true;
      return a.first->trim_if_idle();
    });
    arm_tick(im, sh);
  });
}

}  // namespace

void server::run() {
  auto& im = *impl_;
  net::co_spawn(im.shards[0]->ctx, accept_loop(im), net::detached);
  for (auto& s : im.shards) {
    arm_tick(im, *s);
    shard_ctx* sp = s.get();
    s->thread = std::thread([&im, sp] {
      auto guard = net::make_work_guard(sp->ctx);
      if (im.thread_init) im.thread_init(sp->index);
      sp->ctx.run();
    });
  }
  for (auto& s : im.shards) s->thread.join();
  // The shards are gone; pool work may still be running (a request over a socket, a replay's
  // log read) and uses what the caller owns (routers, the hub, the store): it finishes here,
  // before run() returns and the caller tears those down. Work not yet started is skipped.
  im.pool_closed.store(true);
  im.pool.join();
}

void server::stop(std::int64_t deadline_ms) {
  auto& im = *impl_;
  if (im.draining.exchange(true)) return;
  net::post(im.shards[0]->ctx, [&im] {
    beast::error_code ec;
    if (im.acceptor) im.acceptor->close(ec);
  });
  for (auto& s : im.shards) {
    shard_ctx* sp = s.get();
    net::post(sp->ctx, [sp] {
      std::vector<ws_session*> live(sp->sockets.begin(), sp->sockets.end());
      for (ws_session* w : live)
        if (sp->sockets.contains(w)) w->drain();
    });
  }
  // Wait for every socket's closing handshake and every HTTP request in flight.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  while (std::chrono::steady_clock::now() < until) {
    struct census {
      std::atomic<std::size_t> open{0}, answered{0};
    };
    auto c = std::make_shared<census>();
    for (auto& s : im.shards) {
      shard_ctx* sp = s.get();
      net::post(sp->ctx, [sp, c] {
        c->open += sp->sockets.size();
        ++c->answered;
      });
    }
    while (c->answered.load() < im.shards.size() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (c->answered.load() == im.shards.size() && c->open.load() == 0 &&
        im.inflight_http.load() == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& s : im.shards) s->ctx.stop();
}

}  // namespace herald
