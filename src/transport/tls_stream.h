// TLS for transport/'s sources: the server's certificate (loaded at start, reloaded on
// SIGHUP), and basic_conn_stream, the one stream type a connection runs on whether it is plain
// TCP or TLS — so that the plain and TLS paths are one code path (and one instantiation of
// Beast's templates) above it. client/ uses http_stream for its HTTP requests too.
// OpenSSL headers: transport/'s and client/'s own sources only (never a header included above
// transport).
// Thread-safety: tls_context is thread-safe; a stream belongs to its shard (or its call).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "transport/net.h"

namespace herald {

namespace ssl = boost::asio::ssl;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// The listener's certificate and key (PEM) as an OpenSSL context: TLS 1.2 and later only.
class tls_context {
 public:
  tls_context(std::string cert_file, std::string key_file);
  // Reads the files again; on failure the previous certificate stays. Returns an error message
  // ("" on success).
  std::string reload();
  // The context new connections handshake with (an established one keeps its own: OpenSSL
  // counts references to it).
  std::shared_ptr<ssl::context> current() const;

 private:
  // Throws std::runtime_error naming the file and what is wrong with it.
  std::shared_ptr<ssl::context> load() const;
  std::string cert_file_, key_file_;
  mutable std::mutex mu_;
  std::shared_ptr<ssl::context> ctx_;
};

// A connection's byte stream: plain TCP or TLS over TCP, chosen at run time, so that everything
// above it (Beast's HTTP and WebSocket operations, the batching layer) is compiled once for both
// rather than once per stream type. Movable (a TLS stream's state lives on the heap). What Beast
// needs of a stream: async_read_some, async_write_some, the executor; plus a teardown for a
// WebSocket stream (below). Plain is the TCP layer of a plain connection:
//   conn_stream  (tcp::socket):        a server WebSocket session's stream
//   http_stream  (beast::tcp_stream):  an HTTP session's (and a client's request), with timeouts
//   (tcp_layer())
template <class Plain>
class basic_conn_stream {
 public:
  using executor_type = tcp::socket::executor_type;

  explicit basic_conn_stream(Plain s) : plain_(std::move(s)) {}
  explicit basic_conn_stream(tls_stream s) : plain_(s.get_executor()), tls_(std::move(s)) {}

  executor_type get_executor() noexcept { return plain_.get_executor(); }
  bool is_tls() const noexcept { return tls_.has_value(); }
  tcp::socket& socket() noexcept {
    if (tls_) return beast::get_lowest_layer(*tls_).socket();
    if constexpr (std::is_same_v<Plain, tcp::socket>)
      return plain_;
    else
      return plain_.socket();
  }
  tls_stream& tls() noexcept { return *tls_; }
  // The stream of a plain connection (unused, closed, under TLS).
  Plain& plain() noexcept { return plain_; }
  // The TCP layer with its timeouts (expires_after), under TLS or not.
  beast::tcp_stream& tcp_layer() noexcept requires std::is_same_v<Plain, beast::tcp_stream> {
    return tls_ ? beast::get_lowest_layer(*tls_) : plain_;
  }
  // Drops the TCP connection (no TLS close_notify, no closing handshake).
  void close(beast::error_code& ec) { socket().close(ec); }
  tcp::endpoint remote_endpoint(beast::error_code& ec) { return socket().remote_endpoint(ec); }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& b, ReadHandler&& h) {
    return net::async_initiate<ReadHandler, void(beast::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& bufs) {
          if (tls_)
            tls_->async_read_some(bufs, std::move(handler));
          else
            plain_.async_read_some(bufs, std::move(handler));
        },
        h, b);
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& b, WriteHandler&& h) {
    return net::async_initiate<WriteHandler, void(beast::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& bufs) {
          if (tls_)
            tls_->async_write_some(bufs, std::move(handler));
          else
            plain_.async_write_some(bufs, std::move(handler));
        },
        h, b);
  }

 private:
  Plain plain_;
  std::optional<tls_stream> tls_;
};
using conn_stream = basic_conn_stream<tcp::socket>;
using http_stream = basic_conn_stream<beast::tcp_stream>;

// Beast's way of dropping the lowest layer (a handshake timeout): the TCP connection.
inline void beast_close_socket(conn_stream& s) {
  beast::error_code ec;
  s.close(ec);
}

// Beast's WebSocket teardown (the end of a closing handshake): TLS close_notify then TCP, or TCP.
void teardown(beast::role_type role, conn_stream& s, beast::error_code& ec);

template <class TeardownHandler>
void async_teardown(beast::role_type role, conn_stream& s, TeardownHandler&& h) {
  if (s.is_tls()) {
    using beast::async_teardown;
    async_teardown(role, s.tls(), std::forward<TeardownHandler>(h));
  } else {
    using websocket::async_teardown;
    async_teardown(role, s.socket(), std::forward<TeardownHandler>(h));
  }
}

}  // namespace herald
