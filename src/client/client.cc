#include "client/client.h"

#include <stdexcept>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "transport/net.h"

namespace herald::client {

namespace ssl = boost::asio::ssl;

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

// Connects `tls` (whose lowest layer is a TCP stream or socket) and completes the TLS
// handshake: SNI and the certificate's name checked against the URL's host (name or IP).
template <class TlsStream>
void tls_handshake(TlsStream& tls, const url_parts& u) {
  // SSL_set_tlsext_host_name, without the macro's C cast.
  if (SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(u.host.c_str())) != 1)
    throw std::runtime_error("TLS: cannot set the server name " + u.host);
  tls.set_verify_callback(ssl::host_name_verification(u.host));
  tls.handshake(ssl::stream_base::client);
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

// One request and its reply over `stream` (plain or TLS: one code path).
template <class Stream>
http_reply exchange(Stream& stream, const http::request<http::string_body>& req) {
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(stream, buf, parser);
  auto res = parser.release();
  http_reply out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (const auto& f : res) {
    std::string n(f.name_string());
    for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[n] = std::string(f.value());
  }
  return out;
}
}  // namespace

http_reply http_call(const std::string& base_url, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers) {
  const url_parts u = parse_url(base_url);
  const auto req = make_request(u, method, target, body, headers);
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  if (is_tls(u)) {
    ssl::context ctx = tls_client_context();
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
    beast::get_lowest_layer(stream).connect(resolver.resolve(u.host, u.port));
    tls_handshake(stream, u);
    http_reply out = exchange(stream, req);
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    stream.shutdown(ec);  // close_notify; the server may close first
    return out;
  }
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(resolver.resolve(u.host, u.port));
  http_reply out = exchange(stream, req);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
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
                        const std::map<std::string, std::string>& headers) {
  const url_parts u = parse_url(base_url);
  tcp::resolver resolver(impl_->ioc);
  const auto endpoints = resolver.resolve(u.host, u.port);
  if (is_tls(u)) {
    impl_->ctx = tls_client_context();
    impl_->tls =
        std::make_unique<websocket::stream<ssl::stream<tcp::socket>>>(impl_->ioc, impl_->ctx);
    net::connect(beast::get_lowest_layer(*impl_->tls), endpoints);
    tls_handshake(impl_->tls->next_layer(), u);
  } else {
    impl_->plain = std::make_unique<websocket::stream<tcp::socket>>(impl_->ioc);
    net::connect(impl_->plain->next_layer(), endpoints);
  }
  impl_->with([&](auto& ws) {
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
      r.set(http::field::user_agent, "herald-cli");
      for (const auto& [k, v] : headers) r.set(k, v);
    }));
    ws.read_message_max(64 * 1024 * 1024);
    ws.handshake(u.host + ":" + u.port, join_target(u, target));
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
