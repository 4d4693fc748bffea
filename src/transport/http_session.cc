// HTTP/1.1 keep-alive sessions: read a bounded request, hand upgrades to the WebSocket side,
// run everything else on the blocking pool through the router, write the reply.
#include <boost/url/parse.hpp>

#include "core/metrics.h"
#include "transport/http_streamed.h"
#include "transport/server_impl.h"

namespace herald {
namespace {

http_response error_reply(int status, std::string_view code, std::string_view message) {
  http_response r;
  r.status = status;
  r.body = std::string("{\"error\":{\"code\":\"") + std::string(code) + "\",\"message\":\"" +
           std::string(message) + "\"}}";
  return r;
}

// A later reply (http_types.h) awaited here: its `done` may run on any thread, and resumes
// this session on its own executor.
net::awaitable<http_response> await_later(
    std::function<void(std::function<void(http_response)>)> later) {
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(http_response)>(
      [&later](auto handler) {
        auto ex = net::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        later([h, ex](http_response r) {
          net::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
        });
      },
      net::use_awaitable);
}

http::response<http::string_body> to_beast(const http_response& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "herald");
  if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// Fills our plain request from Beast's; false when the target cannot be parsed.
bool convert(const http::request<http::string_body>& req, http_request& out) {
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  auto u = boost::urls::parse_origin_form(out.target);
  if (!u) return false;
  out.path = u->path();
  out.query = std::string(u->encoded_query());
  return true;
}

// What a refused request's owner is found by when the target could not be parsed: its raw
// path (up to '?'), so that the prefix still says whose it is.
void raw_path(http_request& r) {
  if (r.path.empty()) r.path = r.target.substr(0, r.target.find('?'));
}

// The method and target of a request whose header was too large to parse, read from the
// request line at the start of what was received (possibly cut short: the prefix is enough).
void request_line(std::string_view raw, http_request& r) {
  raw = raw.substr(0, raw.find("\r\n"));
  const auto sp = raw.find(' ');
  if (sp == std::string_view::npos) return;
  r.method = std::string(raw.substr(0, sp));
  raw.remove_prefix(sp + 1);
  r.target = std::string(raw.substr(0, raw.find(' ')));
  raw_path(r);
}

// A refusal before routing, in the body of the dialect owning the path when app/ set a
// renderer (else the native body).
http_response refusal(server::impl& srv, const http_request& r, int status, std::string_view code,
                      std::string_view message) {
  if (srv.render_error) {
    try {
      return srv.render_error(r, status, std::string(message));
    } catch (const std::exception&) {
      // A renderer that throws must not cost the connection its answer.
    }
  }
  return error_reply(status, code, message);
}

// The connection as a WebSocket session's stream: a plain one gives up its socket, a TLS one
// moves whole (its TLS state goes with it).
conn_stream to_conn(http_stream& s) {
  if (!s.is_tls()) return conn_stream(s.plain().release_socket());
  s.tcp_layer().expires_never();
  return conn_stream(std::move(s.tls()));
}

// The end of a connection Herald closes: a FIN after the last reply, or TLS close_notify (not
// waited for long) and then the FIN.
net::awaitable<void> shut(http_stream& s) {
  if (s.is_tls()) {
    s.tcp_layer().expires_after(std::chrono::seconds(1));
    (void)co_await s.tls().async_shutdown(use_nothrow);
  }
  beast::error_code ec;
  s.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// One code path for both plain and TLS connections (http_stream, tls_stream.h).
net::awaitable<void> serve_http(server::impl& srv, shard_ctx& sh, http_stream& stream,
                                conn_slot slot) {
  auto& tcp_layer = stream.tcp_layer();
  beast::flat_buffer buf;
  std::string remote, local;
  const char* scheme = stream.is_tls() ? "https" : "http";
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    // The address this connection reached: what URLs handed back (a ws token's `uri`) name
    // when core.public_url is not set. Never the Host header, which the client writes.
    auto lp = stream.socket().local_endpoint(ec);
    if (!ec) {
      const std::string a = lp.address().to_string();
      local = (lp.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(lp.port());
    }
  }
  ++sh.http_sessions;
  struct guard {
    shard_ctx& s;
    ~guard() { --s.http_sessions; }
  } g{sh};
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(srv.max_header_bytes.load()));
    parser.body_limit(srv.max_body_bytes.load());
    tcp_layer.expires_after(std::chrono::milliseconds(srv.opts.limits.http_idle_ms));
    auto [ec, n] = co_await http::async_read(stream, buf, parser, use_nothrow);
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      const bool body = ec == http::error::body_limit;
      http_request refused;
      refused.remote = remote;
      refused.host = local;
      refused.scheme = scheme;
      // The request line is parsed before the fields, so the target is usually known even
      // when a field (Content-Length past the limit) stopped the header. A request line that
      // ended within the limit means the fields were too large (431), else the line was (414).
      bool line_read = true;
      if (!parser.get().target().empty()) {
        (void)convert(parser.get(), refused);
        raw_path(refused);
      } else {
        const auto data = buf.data();
        const std::string_view raw(static_cast<const char*>(data.data()), data.size());
        line_read = raw.find("\r\n") != std::string_view::npos;
        request_line(raw, refused);
      }
      auto res = to_beast(
          body        ? refusal(srv, refused, 413, "too_large", "request body too large")
          : line_read ? refusal(srv, refused, 431, "too_large", "request header fields too large")
                      : refusal(srv, refused, 414, "too_large", "request line too large"),
          11, false);
      co_await http::async_write(stream, res, use_nothrow);
      break;
    }
    if (ec) break;
    auto req = parser.release();
    http_request r;
    r.remote = remote;
    r.host = local;
    r.scheme = scheme;
    const bool parsed = convert(req, r);
    if (parsed && websocket::is_upgrade(req) && !srv.draining.load()) {
      if (const ws_mount* m = srv.find_mount(r.path)) {
        tcp_layer.expires_never();
        start_ws_session(srv, sh, to_conn(stream), std::move(slot), std::move(req), std::move(r),
                         *m);
        co_return;
      }
    }
    http_response resp;
    if (!parsed) {
      raw_path(r);
      resp = refusal(srv, r, 400, "bad_message", "malformed request target");
    } else {
      r.body = std::move(req.body());
      global_metrics().http_requests.fetch_add(1, std::memory_order_relaxed);
      tcp_layer.expires_never();
      ++srv.inflight_http;
      resp = co_await net::co_spawn(
          srv.pool.get_executor(),
          [&srv, &r]() -> net::awaitable<http_response> {
            try {
              co_return srv.http(r);
            } catch (const std::exception& e) {
              co_return error_reply(500, "internal", "internal error");
            }
          },
          net::use_awaitable);
      if (resp.later) resp = co_await await_later(std::move(resp.later));
      --srv.inflight_http;
    }
    const bool keep = req.keep_alive() && !srv.draining.load();
    if (resp.stream) {  // a long reply, written as it is produced (http_streamed.h)
      if (co_await write_streamed(srv, stream, resp, req.version(), keep) || !keep) break;
      continue;
    }
    auto res = to_beast(resp, req.version(), keep);
    tcp_layer.expires_after(std::chrono::milliseconds(srv.opts.limits.http_idle_ms));
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    if (wec || !keep) break;
  }
  co_await shut(stream);
}

}  // namespace

net::awaitable<void> run_http_session(server::impl& srv, shard_ctx& sh, tcp::socket socket,
                                      conn_slot slot) {
  if (srv.tls) {
    http_stream stream(tls_stream(beast::tcp_stream(std::move(socket)), *srv.tls->current()));
    stream.tcp_layer().expires_after(std::chrono::milliseconds(srv.opts.limits.tls_handshake_ms));
    // A client speaking plain HTTP (or an old TLS) fails here and is dropped.
    auto [ec] = co_await stream.tls().async_handshake(ssl::stream_base::server, use_nothrow);
    if (ec) co_return;
    co_await serve_http(srv, sh, stream, std::move(slot));
  } else {
    http_stream stream(beast::tcp_stream(std::move(socket)));
    co_await serve_http(srv, sh, stream, std::move(slot));
  }
}

}  // namespace herald
