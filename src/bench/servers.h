// The servers `herald bench` drives: one URL, or several nodes of one cluster (docs/cluster.md,
// the bench's cluster row). No sockets: parsed here, resolved and used by load.cc.
// Thread ownership: plain values and pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace herald::bench {

struct server_address {
  std::string url;         // as given (one element of the list)
  std::string host, port;  // port "80" when the URL names none
  std::string target;      // path + query, "/" when empty (the NATS WebSocket path)
};

// At most this many servers in one run.
inline constexpr std::size_t max_servers = 64;

// The values of every --url (repeatable; each may be a comma-separated list), in order.
// Strict: an empty element (",,", a leading or trailing comma), a space, a scheme other than
// http:// or ws:// (https:// and wss:// are refused: the bench speaks plain TCP only), no host,
// a port that is not 1-65535 in digits, the same host:port twice, more than max_servers, or no
// URL at all throws std::invalid_argument with a message naming the element.
std::vector<server_address> parse_server_urls(const std::vector<std::string>& values);

// Which server subscriber `index` connects to, and which server publishing stream `stream`
// (accounting.h stream_id) posts to: round-robin, so each server gets an equal share
// (± 1) of both. `servers` ≥ 1.
std::size_t subscriber_server(std::size_t index, std::size_t servers);
std::size_t stream_server(std::size_t stream, std::size_t servers);

}  // namespace herald::bench
