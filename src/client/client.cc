#include "client/client.h"

#include <stdexcept>

#include "transport/net.h"

namespace herald::client {

url_parts parse_url(const std::string& url) {
  url_parts p;
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw std::invalid_argument("URL without scheme: " + url);
  p.scheme = url.substr(0, scheme_end);
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
}  // namespace

http_reply http_call(const std::string& base_url, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers) {
  const url_parts u = parse_url(base_url);
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(resolver.resolve(u.host, u.port));
  http::request<http::string_body> req{http::string_to_verb(method), join_target(u, target), 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "herald-cli");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
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
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

struct ws_client::impl {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;
  bool reading = false;
  beast::error_code result;
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}
ws_client::~ws_client() = default;

void ws_client::connect(const std::string& base_url, const std::string& target,
                        const std::map<std::string, std::string>& headers) {
  const url_parts u = parse_url(base_url);
  tcp::resolver resolver(impl_->ioc);
  net::connect(impl_->ws.next_layer(), resolver.resolve(u.host, u.port));
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
    r.set(http::field::user_agent, "herald-cli");
    for (const auto& [k, v] : headers) r.set(k, v);
  }));
  impl_->ws.read_message_max(64 * 1024 * 1024);
  impl_->ws.handshake(u.host + ":" + u.port, join_target(u, target));
}

void ws_client::send(const std::string& text) {
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text));
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout) {
  timed_out_ = false;
  if (!impl_->reading) {
    // A read left pending by a timeout stays in flight: the next call waits for it.
    impl_->reading = true;
    impl_->ws.async_read(impl_->buf, [this](beast::error_code ec, std::size_t) {
      impl_->result = ec;
      impl_->reading = false;
    });
  }
  impl_->ioc.restart();
  impl_->ioc.run_for(timeout);
  if (impl_->reading) {
    timed_out_ = true;
    return std::nullopt;
  }
  if (impl_->result) {
    close_code_ = impl_->result == websocket::error::closed ? impl_->ws.reason().code : 1006;
    return std::nullopt;
  }
  std::string out = beast::buffers_to_string(impl_->buf.data());
  impl_->buf.consume(impl_->buf.size());
  return out;
}

void ws_client::close(int code) {
  beast::error_code ec;
  impl_->ws.close(websocket::close_reason(static_cast<std::uint16_t>(code)), ec);
}

void ws_client::abort() {
  beast::error_code ec;
  impl_->ws.next_layer().close(ec);
}

}  // namespace herald::client
