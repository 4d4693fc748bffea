// Plain HTTP request and response values exchanged between transport/ and the routers above
// it. No Asio or Beast here, so api/ and dialect/ never compile them. Thread-safe: values.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/errc.h"

namespace herald {

struct http_request {
  std::string method;                          // "GET", "POST", …
  std::string target;                          // path and query as received
  std::string path;                            // percent-decoded path
  std::string query;                           // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;  // "ip:port"
  std::string host;    // the listener's address the connection reached (never the Host header)
  std::string scheme = "http";

  // Keeps only what a socket needs of its upgrade request later (host and scheme, for URLs):
  // an idle connection should not carry its headers for life.
  void keep_origin_only() {
    http_request kept;
    kept.host = std::move(host);
    kept.scheme = std::move(scheme);
    kept.remote = std::move(remote);
    *this = std::move(kept);
  }

  const std::string* header(std::string_view lower_name) const {
    auto it = headers.find(std::string(lower_name));
    return it == headers.end() ? nullptr : &it->second;
  }
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // An error reply's class (the error's cause), for the operational log and metrics labels of
  // a 401 or 429 (app/serve.cc): never read back from the body text.
  error_cause cause = error_cause::unspecified;
  // A body written as it is produced (a long reply, not built whole): when set, `body` is
  // ignored; transport calls it on the blocking pool, writes what it appended to `out` as one
  // chunk, and calls again until it returns false. It must own (or share) all it reads.
  std::function<bool(std::string& out)> stream{};
  // A reply that completes later (a publish waiting for its commit): when set, every other
  // field is ignored; transport calls it once, on the thread it chooses, with `done`, and the
  // reply is what `done` gets, from any thread, exactly once. The pool thread that made the
  // reply is free meanwhile.
  std::function<void(std::function<void(http_response)> done)> later{};
};

// The whole body of `r`, a later reply waited for and its stream drained (for in-process
// callers on the blocking pool: request-over-socket).
inline void collect_body(http_response& r) {
  if (r.later) {
    auto later = std::move(r.later);
    std::promise<http_response> p;
    auto f = p.get_future();
    later([&p](http_response done) { p.set_value(std::move(done)); });
    r = f.get();
  }
  if (!r.stream) return;
  while (r.stream(r.body)) {
  }
  r.stream = nullptr;
}

}  // namespace herald
