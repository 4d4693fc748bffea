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

std::uint16_t server::listen() {
  auto& im = *impl_;
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
    sock.set_option(tcp::no_delay(true), sec);
    net::co_spawn(target.ctx, run_http_session(im, target, std::move(sock)), net::detached);
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
