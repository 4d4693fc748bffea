// The wire pieces both adapters share, free of sockets so they can be unit-tested: the bench
// payload (publisher, counter and send time stamped in the bytes), a fast scan of Herald's
// native `event` frames, and a NATS text-protocol stream parser (NATS over WebSocket carries
// the same byte stream as over TCP, split across binary frames at any point).
// Thread ownership: values and per-connection parsers, owned by one load thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::bench {

struct stamp {
  std::uint32_t publisher = 0;
  std::uint64_t counter = 0;  // per (publisher, topic), from 1
  std::int64_t sent_ns = 0;   // steady-clock time the event was due to be sent
};

// A JSON object of exactly `size` bytes when size allows (else the shortest form):
// {"hb":"<publisher>.<counter>.<sent_ns>","x":"<padding>"}. Both adapters send these bytes.
std::string make_payload(const stamp& s, std::size_t size);
// Finds the stamp in a payload or in any text that embeds it byte-exact (a Herald event frame).
std::optional<stamp> find_stamp(std::string_view text);

// Herald frames the bench reads (native.md §3).
struct herald_frame {
  enum class kind { event, welcome, ack, ping, error, other } type = kind::other;
  std::uint64_t seq = 0;         // events
  std::optional<stamp> payload;  // events carrying a bench payload
};
herald_frame scan_herald_frame(std::string_view frame);

// Incremental NATS protocol parser (server → client): MSG, PING, PONG, INFO, +OK, -ERR.
// Feed it bytes as they arrive; complete operations come out through the visitor.
class nats_parser {
 public:
  struct visitor {
    virtual void on_msg(std::string_view subject, std::string_view payload) = 0;
    virtual void on_ping() = 0;
    virtual void on_pong() = 0;
    virtual void on_info(std::string_view json) = 0;
    virtual void on_err(std::string_view text) = 0;

   protected:
    ~visitor() = default;
  };
  // Returns false on a protocol violation (the stream cannot be resynchronised).
  bool feed(std::string_view bytes, visitor& v);

 private:
  std::string buf_;
  std::size_t pending_payload_ = 0;  // bytes (plus CRLF) the current MSG still needs
  bool in_msg_ = false;
  std::string subject_;
};

}  // namespace herald::bench
