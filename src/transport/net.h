// Asio/Beast for transport/'s sources, and for the Beast clients in client/ and bench/ (their
// .cc files and precompiled headers). Never included by a header that api/, dialect/ or core/
// compile: those see transport through http_types.h, ws_types.h and server.h only.
#pragma once

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace herald {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

// The non-throwing completion token every network await uses: yields (error_code, …).
// Boost 1.81 as packaged by Debian already has it in the main namespace (not experimental::).
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);
}  // namespace herald
