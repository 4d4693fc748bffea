// Writing an http_response whose body is a stream (http_types.h): the head with chunked
// transfer encoding, then each piece the stream produces on the blocking pool as one chunk,
// written before the next is asked for, so a long reply is never held whole. Internal to
// http_session.cc (Beast/Asio).
#pragma once

#include "transport/server_impl.h"

namespace herald {

// Returns the write's error (a stream that threw ends the reply early: an error too, so the
// connection closes and the client sees a truncated chunked body rather than a complete-looking
// one).
inline net::awaitable<beast::error_code> write_streamed(server::impl& srv, http_stream& stream,
                                                        const http_response& r, unsigned version,
                                                        bool keep_alive) {
  http::response<http::empty_body> head{static_cast<http::status>(r.status), version};
  head.set(http::field::server, "herald");
  if (!r.content_type.empty()) head.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) head.set(k, v);
  head.keep_alive(keep_alive);
  head.chunked(true);
  http::response_serializer<http::empty_body> sr{head};
  auto& lowest = stream.tcp_layer();
  lowest.expires_after(std::chrono::milliseconds(srv.opts.limits.http_idle_ms));
  if (auto [ec, n] = co_await http::async_write_header(stream, sr, use_nothrow); ec) co_return ec;
  bool more = true;
  while (more) {
    std::string piece;
    bool failed = false;
    ++srv.inflight_http;  // a drain waits for pool work in flight
    more = co_await net::co_spawn(
        srv.pool.get_executor(),
        [&r, &piece, &failed]() -> net::awaitable<bool> {
          try {
            co_return r.stream(piece);
          } catch (const std::exception&) {
            failed = true;
            co_return false;
          }
        },
        net::use_awaitable);
    --srv.inflight_http;
    if (failed) co_return beast::error_code(net::error::operation_aborted);
    if (piece.empty()) continue;
    lowest.expires_after(std::chrono::milliseconds(srv.opts.limits.http_idle_ms));
    auto [ec, n] =
        co_await net::async_write(stream, http::make_chunk(net::buffer(piece)), use_nothrow);
    if (ec) co_return ec;
  }
  auto [ec, n] = co_await net::async_write(stream, http::make_chunk_last(), use_nothrow);
  co_return ec;
}

}  // namespace herald
