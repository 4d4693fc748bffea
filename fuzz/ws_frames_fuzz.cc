// A client's bytes as Herald's server reads them: an HTTP upgrade request (parsed with the
// transport's header and body limits), then WebSocket frames read through Beast's
// websocket::stream with a mount's limits, over Beast's in-memory test stream. The first input
// byte picks the mount's options (bit 0: permessage-deflate offered to the client), the rest is
// the client's byte stream. Reads go in steps as ws_session::read_next does (64 bytes, then
// 64 KiB); every message read is echoed back. Beyond not crashing: no message read exceeds
// read_message_max, and a message ends only with its last byte read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

// transport_limits and ws_mount defaults (src/transport/server.h).
constexpr std::size_t max_header_bytes = 16384;
constexpr std::size_t max_body_bytes = 1048576;
constexpr std::size_t max_message_bytes = 65536;
constexpr std::size_t first_read = 64;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool compress = (data[0] & 1) != 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  net::io_context ioc;
  beast::test::stream http_in(ioc);
  http_in.append(bytes);
  http_in.close_remote();  // the client's bytes end: reads past them see eof
  beast::flat_buffer buf;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(max_header_bytes));
  parser.body_limit(max_body_bytes);
  beast::error_code ec;
  http::read(http_in, buf, parser, ec);
  if (ec) return 0;
  const auto req = parser.release();
  if (!websocket::is_upgrade(req)) return 0;

  // What follows the request (read ahead into buf, or not read yet) is the client's frames.
  beast::test::stream client(ioc);
  beast::test::stream server(ioc);
  server.connect(client);  // the server's writes land in `client`, unread
  server.append(beast::buffers_to_string(buf.data()));
  server.append(http_in.str());
  server.close_remote();
  websocket::stream<beast::test::stream&> ws(server);
  ws.read_message_max(max_message_bytes);
  if (compress) {
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    pmd.msg_size_threshold = 0;
    ws.set_option(pmd);
  }
  ws.auto_fragment(false);
  ws.accept(req, ec);
  if (ec) return 0;
  beast::flat_buffer msg;
  for (int messages = 0; messages < 1000; ++messages) {
    msg.clear();
    std::size_t limit = first_read;
    for (;;) {
      ws.read_some(msg, limit, ec);
      if (ec) break;
      check(msg.size() <= max_message_bytes);
      if (ws.is_message_done()) break;
      limit = 64 * 1024;
    }
    if (ec) {
      // A message too big is refused with 1009 as ws_session does; the rest ends the socket.
      if (ec == websocket::error::message_too_big) {
        beast::error_code cec;
        ws.close(websocket::close_code::too_big, cec);
      }
      return 0;
    }
    ws.text(ws.got_text());
    ws.write(msg.data(), ec);
    if (ec) return 0;
  }
  return 0;
}
