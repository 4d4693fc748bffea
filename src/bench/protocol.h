// The wire pieces both adapters share, free of sockets so they can be unit-tested: the bench
// payload (publisher, counter and send time stamped in the bytes), a fast scan of Herald's
// native `event` frames, a NATS text-protocol stream parser (NATS over WebSocket carries
// the same byte stream as over TCP, split across binary frames at any point), and the parser
// of the server's WebSocket frames both subscribers read the socket through.
// Thread ownership: values and per-connection parsers, owned by one load thread.
#pragma once

#include <array>
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

// Incremental parser of server → client WebSocket frames (RFC 6455 §5.2), so a subscriber can
// read its socket in bulk and handle every frame of a read at once instead of one async
// operation per message. Feed it the bytes as they arrive, split anywhere: many frames per
// chunk, a frame (or its header) across chunks. Complete messages, pings, pongs and the close
// come out through the visitor. A message that lies whole in the chunk is handed over as a view
// into the chunk (no copy); only fragmented messages and frames split across chunks are copied
// and assembled. Server frames are unmasked; permessage-deflate is not negotiated by the bench,
// so any reserved bit is an error. Text is not checked for UTF-8 (the bench scans it as bytes).
class ws_frame_parser {
 public:
  enum class error : std::uint8_t {
    none,
    masked,                   // a server must not mask its frames (§5.1)
    reserved_bits,            // RSV1-3 set without an extension that defines them
    bad_opcode,               // reserved opcode 3-7, 11-15
    bad_length,               // length not in its shortest form, or the 64-bit one's top bit set
    control_fragmented,       // a control frame without FIN (§5.5)
    control_too_long,         // a control frame payload over 125 bytes (§5.5)
    unexpected_continuation,  // a continuation frame with no fragmented message open
    expected_continuation,    // a new text/binary frame inside a fragmented message
    too_big,                  // the message would exceed max_message
    bad_close,                // a close payload of one byte (a code is two)
  };

  struct visitor {
    // A complete message (text or binary), fragments assembled. `payload` is valid until the
    // callback returns.
    virtual void on_message(std::string_view payload, bool binary) = 0;
    // Control frames; `payload` is valid until the callback returns.
    virtual void on_ping(std::string_view payload) = 0;
    virtual void on_pong(std::string_view payload) { (void)payload; }
    // The close frame: its status code (1005, "no status received", when the frame has none)
    // and reason. The parser takes no bytes after it (§5.5.1: the server sends nothing more).
    virtual void on_close(int code, std::string_view reason) = 0;

   protected:
    ~visitor() = default;
  };

  // Beast's default read_message_max, so raw reads refuse what Beast's reads refused.
  static constexpr std::size_t default_max_message = 16 * 1024 * 1024;

  explicit ws_frame_parser(std::size_t max_message = default_max_message)
      : max_message_(max_message) {}

  // Returns false on a protocol violation (error() says which); the stream cannot be
  // resynchronised, so every later call returns false too. Callbacks made before the violation
  // in the same chunk stand.
  bool feed(std::string_view bytes, visitor& v);

  error last_error() const noexcept { return error_; }
  bool closed() const noexcept { return closed_; }
  static std::string_view describe(error e);

 private:
  // Parses the frame header at p[0, n): its size once complete (the frame's state set), 0 when
  // more bytes are needed, -1 on a violation (error_ set).
  int begin_frame(const unsigned char* p, std::size_t n);
  int fail(error e) {
    error_ = e;
    return -1;
  }
  // The frame whose last payload bytes are `tail` is complete.
  void end_frame(std::string_view tail, visitor& v);
  void end_control(std::string_view payload, visitor& v);

  std::size_t max_message_;
  error error_ = error::none;
  bool closed_ = false;
  // The current frame, once its header is parsed.
  bool in_payload_ = false;
  bool fin_ = false;
  std::uint8_t opcode_ = 0;
  std::uint64_t remaining_ = 0;  // its payload bytes still to come
  // A header split across chunks (at most 10 bytes: server frames carry no mask key).
  std::array<unsigned char, 10> hdr_{};
  std::size_t hdr_size_ = 0;
  // The data message being assembled: fragments so far, or the head of a frame split across
  // chunks. Empty when the next data frame can be handed over in place.
  std::string msg_;
  bool msg_open_ = false;  // a non-FIN text/binary frame was taken: continuations follow
  bool msg_binary_ = false;
  std::string ctl_;  // the head of a control frame split across chunks
};

}  // namespace herald::bench
