#include "client/client.h"

#include <functional>
#include <optional>
#include <stdexcept>

#include <boost/beast/websocket/ssl.hpp>

#include "transport/net.h"
#include "transport/tls_stream.h"

namespace herald::client {

namespace {
std::string& ca_file() {
  static std::string path;
  return path;
}
}  // namespace

void set_ca_file(std::string path) { ca_file() = std::move(path); }

bool is_tls(const url_parts& u) { return u.scheme == "https" || u.scheme == "wss"; }

url_parts parse_url(const std::string& url) {
  url_parts p;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw std::invalid_argument("URL without scheme: " + url);
  p.scheme = url.substr(0, scheme_end);
  for (char& c : p.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (p.scheme != "http" && p.scheme != "https" && p.scheme != "ws" && p.scheme != "wss")
    throw std::invalid_argument("URL scheme must be http, https, ws or wss: " + url);
  const std::string rest = url.substr(scheme_end + 3);
  const auto slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  p.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    p.host = hostport;
    p.port = (p.scheme == "https" || p.scheme == "wss") ? "443" : "80";
  } else {
    p.host = hostport.substr(0, colon);
    p.port = hostport.substr(colon + 1);
  }
  if (p.host.empty()) throw std::invalid_argument("URL without host: " + url);
  return p;
}

namespace {
std::string join_target(const url_parts& base, const std::string& target) {
  std::string prefix = base.target == "/" ? std::string() : base.target;
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return prefix + target;
}

// A client context: TLS 1.2+, the peer verified against the CA file or the system's store.
ssl::context tls_client_context() {
  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (!ca_file().empty()) {
    beast::error_code ec;
    ctx.load_verify_file(ca_file(), ec);
    if (ec) throw std::runtime_error("--ca-file " + ca_file() + ": not a PEM CA file");
  } else {
    ctx.set_default_verify_paths();
  }
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

// Readies `tls` for its client handshake: SNI and the certificate's name checked against the
// URL's host (name or IP).
template <class TlsStream>
void tls_handshake_setup(TlsStream& tls, const url_parts& u) {
  // SSL_set_tlsext_host_name, without the macro's C cast.
  if (SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(u.host.c_str())) != 1)
    throw std::runtime_error("TLS: cannot set the server name " + u.host);
  tls.set_verify_callback(ssl::host_name_verification(u.host));
}

http::request<http::string_body> make_request(const url_parts& u, const std::string& method,
                                              const std::string& target, const std::string& body,
                                              const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req{http::string_to_verb(method), join_target(u, target), 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "herald-cli");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  return req;
}

// "timed out after 1.5 s" / "after 10 s".
std::string seconds_text(std::chrono::milliseconds t) {
  const auto ms = t.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s"
                        : std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

// Runs `task` on `ioc` for at most `timeout` and returns its result. Past the timeout `cancel`
// closes what the task uses and unreachable_error says so; a network error becomes an
// unreachable_error ("HOST:PORT: what", its message only: never a source location), an upgrade
// answered with an HTTP error a refused_error.
template <class T>
T run_bounded(net::io_context& ioc, net::awaitable<T> task, std::chrono::milliseconds timeout,
              const url_parts& u, const std::function<void()>& cancel) {
  std::optional<T> result;
  std::exception_ptr failed;
  bool done = false;
  net::co_spawn(ioc, std::move(task), [&](std::exception_ptr e, T v) {
    done = true;
    failed = e;
    if (!e) result = std::move(v);
  });
  ioc.restart();
  ioc.run_for(timeout);
  const std::string where = u.host + ":" + u.port;
  if (!done) {
    cancel();
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(200));  // lets the cancelled operations unwind
    throw unreachable_error(where + ": no answer within " + seconds_text(timeout));
  }
  if (failed) {
    try {
      std::rethrow_exception(failed);
    } catch (const boost::system::system_error& e) {
      if (e.code() == websocket::error::upgrade_declined)
        throw refused_error(where + ": the WebSocket upgrade was refused");
      throw unreachable_error(where + ": " + e.code().message());
    }
  }
  return std::move(*result);
}

// One request and its reply over `stream` (plain or TLS: one code path).
net::awaitable<http_reply> exchange(http_stream& stream,
                                    const http::request<http::string_body>& req) {
  co_await http::async_write(stream, req, net::use_awaitable);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  co_await http::async_read(stream, buf, parser, net::use_awaitable);
  auto res = parser.release();
  http_reply out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& f : res) {
    std::string n(f.name_string());
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[n] = std::string(f.value());
  }
  co_return out;
}
}  // namespace

http_reply http_call(const std::string& base_url, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers,
                     std::chrono::milliseconds timeout) {
  const url_parts u = parse_url(base_url);
  const auto req = make_request(u, method, target, body, headers);
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  std::optional<ssl::context> ctx;
  if (is_tls(u)) ctx.emplace(tls_client_context());
  http_stream stream =
      ctx ? http_stream(tls_stream(ioc, *ctx)) : http_stream(beast::tcp_stream(ioc));
  auto task = [&]() -> net::awaitable<http_reply> {
    const auto eps = co_await resolver.async_resolve(u.host, u.port, net::use_awaitable);
    co_await stream.tcp_layer().async_connect(eps, net::use_awaitable);
    if (stream.is_tls()) {
      tls_handshake_setup(stream.tls(), u);
      co_await stream.tls().async_handshake(ssl::stream_base::client, net::use_awaitable);
    }
    http_reply out = co_await exchange(stream, req);
    if (stream.is_tls()) {
      stream.tcp_layer().expires_after(std::chrono::seconds(2));
      // close_notify; the server may close first
      (void)co_await stream.tls().async_shutdown(use_nothrow);
    } else {
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }
    co_return out;
  };
  return run_bounded(ioc, task(), timeout, u, [&] {
    resolver.cancel();
    stream.tcp_layer().close();
  });
}

struct ws_client::impl {
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  // One of the two, made by connect(); every call goes through with(), one code path for both.
  std::unique_ptr<websocket::stream<tcp::socket>> plain;
  std::unique_ptr<websocket::stream<ssl::stream<tcp::socket>>> tls;
  beast::flat_buffer buf;
  bool reading = false;
  beast::error_code result;

  template <class F>
  decltype(auto) with(F&& f) {
    if (tls) return f(*tls);
    if (!plain) throw std::logic_error("ws_client: not connected");
    return f(*plain);
  }
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}
ws_client::~ws_client() = default;

void ws_client::connect(const std::string& base_url, const std::string& target,
                        const std::map<std::string, std::string>& headers,
                        std::chrono::milliseconds timeout) {
  const url_parts u = parse_url(base_url);
  auto& im = *impl_;
  tcp::resolver resolver(im.ioc);
  if (is_tls(u)) {
    im.ctx = tls_client_context();
    im.tls = std::make_unique<websocket::stream<ssl::stream<tcp::socket>>>(im.ioc, im.ctx);
  } else {
    im.plain = std::make_unique<websocket::stream<tcp::socket>>(im.ioc);
  }
  auto task = [&]() -> net::awaitable<bool> {
    const auto eps = co_await resolver.async_resolve(u.host, u.port, net::use_awaitable);
    if (im.tls) {
      co_await net::async_connect(beast::get_lowest_layer(*im.tls), eps, net::use_awaitable);
      tls_handshake_setup(im.tls->next_layer(), u);
      co_await im.tls->next_layer().async_handshake(ssl::stream_base::client, net::use_awaitable);
    } else {
      co_await net::async_connect(im.plain->next_layer(), eps, net::use_awaitable);
    }
    auto upgrade = [&](auto& ws) {
      ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
        r.set(http::field::user_agent, "herald-cli");
        for (const auto& [k, v] : headers) r.set(k, v);
      }));
      ws.read_message_max(64 * 1024 * 1024);
      return ws.async_handshake(u.host + ":" + u.port, join_target(u, target), net::use_awaitable);
    };
    if (im.tls)
      co_await upgrade(*im.tls);
    else
      co_await upgrade(*im.plain);
    co_return true;
  };
  (void)run_bounded(im.ioc, task(), timeout, u, [&] {
    resolver.cancel();
    abort();
  });
}

void ws_client::send(const std::string& text) {
  impl_->with([&](auto& ws) {
    ws.text(true);
    ws.write(net::buffer(text));
  });
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout) {
  timed_out_ = false;
  if (!impl_->reading) {
    // A read left pending by a timeout stays in flight: the next call waits for it.
    impl_->reading = true;
    impl_->with([&](auto& ws) {
      ws.async_read(impl_->buf, [this](beast::error_code ec, std::size_t) {
        impl_->result = ec;
        impl_->reading = false;
      });
    });
  }
  impl_->ioc.restart();
  impl_->ioc.run_for(timeout);
  if (impl_->reading) {
    timed_out_ = true;
    return std::nullopt;
  }
  if (impl_->result) {
    close_code_ = impl_->with([&](auto& ws) {
      return impl_->result == websocket::error::closed ? static_cast<int>(ws.reason().code) : 1006;
    });
    return std::nullopt;
  }
  std::string out = beast::buffers_to_string(impl_->buf.data());
  impl_->buf.consume(impl_->buf.size());
  return out;
}

void ws_client::close(int code) {
  impl_->with([&](auto& ws) {
    beast::error_code ec;
    ws.close(websocket::close_reason(static_cast<std::uint16_t>(code)), ec);
  });
}

void ws_client::abort() {
  impl_->with([](auto& ws) {
    beast::error_code ec;
    beast::get_lowest_layer(ws).close(ec);
  });
}

}  // namespace herald::client
