#include "bench/servers.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

namespace herald::bench {

namespace {

[[noreturn]] void refuse(const std::string& what, const std::string& url) {
  throw std::invalid_argument("--url '" + url + "': " + what);
}

server_address parse_one(const std::string& url) {
  if (std::any_of(url.begin(), url.end(),
                  [](unsigned char c) { return std::isspace(c) != 0 || std::iscntrl(c) != 0; }))
    refuse("contains a space or a control character", url);
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) refuse("no scheme (http:// or ws://)", url);
  std::string scheme = url.substr(0, scheme_end);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https" || scheme == "wss")
    refuse("https:// and wss:// servers are not supported (plain TCP only)", url);
  if (scheme != "http" && scheme != "ws") refuse("the scheme must be http:// or ws://", url);
  server_address a;
  a.url = url;
  const std::string rest = url.substr(scheme_end + 3);
  const auto slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  a.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    a.host = hostport;
    a.port = "80";
  } else {
    a.host = hostport.substr(0, colon);
    a.port = hostport.substr(colon + 1);
    const bool digits =
        !a.port.empty() && a.port.size() <= 5 &&
        std::all_of(a.port.begin(), a.port.end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits || std::stoul(a.port) < 1 || std::stoul(a.port) > 65535)
      refuse("the port must be a number from 1 to 65535, not '" + a.port + "'", url);
  }
  if (a.host.empty()) refuse("no host", url);
  if (a.host.find('@') != std::string::npos)
    refuse("credentials in the URL are not supported", url);
  return a;
}

}  // namespace

std::vector<server_address> parse_server_urls(const std::vector<std::string>& values) {
  std::vector<server_address> out;
  std::set<std::string> seen;
  for (const auto& value : values) {
    std::size_t start = 0;
    while (true) {
      const auto comma = value.find(',', start);
      const std::string one =
          value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (one.empty())
        throw std::invalid_argument("--url '" + value +
                                    "': an empty element in the list (a stray comma)");
      server_address a = parse_one(one);
      std::string key = a.host + ":" + a.port;
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!seen.insert(key).second) refuse(key + " is listed twice (each server once)", one);
      out.push_back(std::move(a));
      if (out.size() > max_servers)
        throw std::invalid_argument("--url: more than " + std::to_string(max_servers) + " servers");
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (out.empty()) throw std::invalid_argument("--url: no server given");
  return out;
}

std::size_t subscriber_server(std::size_t index, std::size_t servers) {
  return servers == 0 ? 0 : index % servers;
}

std::size_t stream_server(std::size_t stream, std::size_t servers) {
  return servers == 0 ? 0 : stream % servers;
}

}  // namespace herald::bench
