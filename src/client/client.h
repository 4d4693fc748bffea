// Herald's own C++ client: blocking HTTP requests and a WebSocket connection, on Beast. Used by
// the command line (app create, publish, tail), `herald bench` and tests. http:// and ws:// are
// plain TCP; https:// and wss:// are TLS 1.2+ only, the server's certificate verified against
// the system's trust store or a CA file (set_ca_file) and its name against the URL's host:
// nothing is ever sent in clear to an https:// or wss:// URL. Other schemes are refused.
// Threads: http_call may run on any thread (each call has its own io_context); a ws_client
// belongs to one thread at a time and is not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace herald::client {

struct url_parts {
  std::string scheme, host, port, target;  // target: path + query ("/" when empty)
};
// Parses "http://host:port/path?q" (https://, ws://, wss:// too). Throws std::invalid_argument
// (no scheme, an unknown scheme, no host).
url_parts parse_url(const std::string& url);
// Whether the URL's scheme is https:// or wss://.
bool is_tls(const url_parts& u);

// Verify TLS servers against this PEM file of CA certificates instead of the system's trust
// store ("": the system's). Set before any call; not thread-safe with calls in flight.
void set_ca_file(std::string path);

// The server could not be reached or did not answer in time: DNS, connect, TLS handshake, a
// connection dropped before the reply, or the call's timeout. One line, no source location.
class unreachable_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The server answered and refused: a WebSocket upgrade answered with an HTTP error.
class refused_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How long a call may take, name resolution and connection included.
inline constexpr std::chrono::milliseconds default_timeout{10000};

struct http_reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One request on a fresh connection (closed after the reply), resolve, connect and exchange
// bounded by `timeout`. Throws unreachable_error (network failure, timeout), std::runtime_error
// (a bad --ca-file).
http_reply http_call(const std::string& base_url, const std::string& method,
                     const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers = {},
                     std::chrono::milliseconds timeout = default_timeout);

class ws_client {
 public:
  ws_client();
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // Connects to base_url + target (e.g. "/v1/ws?access_token=…"), resolve, connect, TLS and
  // upgrade bounded by `timeout`. Throws unreachable_error, or refused_error when the server
  // answers the upgrade with an HTTP error.
  void connect(const std::string& base_url, const std::string& target,
               const std::map<std::string, std::string>& headers = {},
               std::chrono::milliseconds timeout = default_timeout);
  void send(const std::string& text);
  // The next message (text, or a binary one's bytes); nullopt when the socket closed
  // (close_code() tells why: the peer's code, or 1006 on any other error) or the timeout passed
  // (timed_out() is then true and the read stays pending for the next call).
  std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::hours(24));
  bool timed_out() const noexcept { return timed_out_; }
  int close_code() const noexcept { return close_code_; }
  void close(int code = 1000);
  // Drops the TCP connection without a closing handshake.
  void abort();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  bool timed_out_ = false;
  int close_code_ = 0;
};

}  // namespace herald::client
