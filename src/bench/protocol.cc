#include "bench/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace herald::bench {

namespace {

constexpr std::string_view stamp_key = "\"hb\":\"";

bool parse_u64(std::string_view& in, std::uint64_t& out) {
  const auto [ptr, ec] = std::from_chars(in.data(), in.data() + in.size(), out);
  if (ec != std::errc() || ptr == in.data()) return false;
  in.remove_prefix(static_cast<std::size_t>(ptr - in.data()));
  return true;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

std::string make_payload(const stamp& s, std::size_t size) {
  std::string out = "{\"hb\":\"" + std::to_string(s.publisher) + "." + std::to_string(s.counter) +
                    "." + std::to_string(s.sent_ns) + "\",\"x\":\"";
  const std::size_t tail = 2;  // "}
  if (out.size() + tail < size) out.append(size - out.size() - tail, 'x');
  out += "\"}";
  return out;
}

std::optional<stamp> find_stamp(std::string_view text) {
  const auto at = text.find(stamp_key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view in = text.substr(at + stamp_key.size());
  std::uint64_t p = 0, n = 0, t = 0;
  if (!parse_u64(in, p) || in.empty() || in[0] != '.') return std::nullopt;
  in.remove_prefix(1);
  if (!parse_u64(in, n) || in.empty() || in[0] != '.') return std::nullopt;
  in.remove_prefix(1);
  if (!parse_u64(in, t) || in.empty() || in[0] != '"') return std::nullopt;
  return stamp{static_cast<std::uint32_t>(p), n, static_cast<std::int64_t>(t)};
}

herald_frame scan_herald_frame(std::string_view frame) {
  herald_frame out;
  // The server writes `type` first (native_socket renders events as {"type":"event","seq":N,…});
  // anything else falls back to a search for the type member.
  constexpr std::string_view event_head = "{\"type\":\"event\",\"seq\":";
  if (starts_with(frame, event_head)) {
    out.type = herald_frame::kind::event;
    std::string_view in = frame.substr(event_head.size());
    parse_u64(in, out.seq);
    out.payload = find_stamp(in);
    return out;
  }
  auto has_type = [&](std::string_view t) {
    return frame.find("\"type\":\"" + std::string(t) + "\"") != std::string_view::npos;
  };
  if (has_type("event")) {
    out.type = herald_frame::kind::event;
    if (auto at = frame.find("\"seq\":"); at != std::string_view::npos) {
      std::string_view in = frame.substr(at + 6);
      parse_u64(in, out.seq);
    }
    out.payload = find_stamp(frame);
  } else if (has_type("welcome")) {
    out.type = herald_frame::kind::welcome;
  } else if (has_type("ack")) {
    out.type = herald_frame::kind::ack;
  } else if (has_type("ping")) {
    out.type = herald_frame::kind::ping;
  } else if (has_type("error")) {
    out.type = herald_frame::kind::error;
  }
  return out;
}

bool nats_parser::feed(std::string_view bytes, visitor& v) {
  buf_.append(bytes);
  std::size_t pos = 0;
  for (;;) {
    if (in_msg_) {
      if (buf_.size() - pos < pending_payload_ + 2) break;
      v.on_msg(subject_, std::string_view(buf_).substr(pos, pending_payload_));
      pos += pending_payload_ + 2;
      in_msg_ = false;
      continue;
    }
    const auto eol = buf_.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const std::string_view line(buf_.data() + pos, eol - pos);
    pos = eol + 2;
    if (starts_with(line, "MSG ")) {
      // MSG <subject> <sid> [reply-to] <#bytes>
      std::string_view rest = line.substr(4);
      const auto sp = rest.find(' ');
      const auto last_sp = rest.rfind(' ');
      if (sp == std::string_view::npos || last_sp == std::string_view::npos) return false;
      subject_.assign(rest.substr(0, sp));
      std::string_view len = rest.substr(last_sp + 1);
      std::uint64_t n = 0;
      if (!parse_u64(len, n)) return false;
      pending_payload_ = static_cast<std::size_t>(n);
      in_msg_ = true;
    } else if (line == "PING") {
      v.on_ping();
    } else if (line == "PONG") {
      v.on_pong();
    } else if (starts_with(line, "INFO ")) {
      v.on_info(line.substr(5));
    } else if (starts_with(line, "-ERR")) {
      v.on_err(line);
    } else if (line == "+OK" || line.empty()) {
      // verbose acknowledgements; nothing to do
    } else {
      return false;
    }
  }
  buf_.erase(0, pos);
  return true;
}

std::string_view ws_frame_parser::describe(error e) {
  switch (e) {
    case error::none:
      return "no error";
    case error::masked:
      return "masked server frame";
    case error::reserved_bits:
      return "reserved bits set";
    case error::bad_opcode:
      return "reserved opcode";
    case error::bad_length:
      return "bad payload length";
    case error::control_fragmented:
      return "fragmented control frame";
    case error::control_too_long:
      return "control frame over 125 bytes";
    case error::unexpected_continuation:
      return "continuation without a message";
    case error::expected_continuation:
      return "data frame inside a fragmented message";
    case error::too_big:
      return "message too big";
    case error::bad_close:
      return "bad close frame";
  }
  return "unknown error";
}

int ws_frame_parser::begin_frame(const unsigned char* p, std::size_t n) {
  if (n < 2) return 0;
  // Everything the first two bytes can refuse is refused before the length bytes arrive.
  const bool fin = (p[0] & 0x80) != 0;
  const std::uint8_t op = p[0] & 0x0f;
  if ((p[0] & 0x70) != 0) return fail(error::reserved_bits);
  if ((p[1] & 0x80) != 0) return fail(error::masked);
  std::uint64_t len = p[1] & 0x7f;
  switch (op) {
    case 0:
      if (!msg_open_) return fail(error::unexpected_continuation);
      break;
    case 1:
    case 2:
      if (msg_open_) return fail(error::expected_continuation);
      break;
    case 8:
    case 9:
    case 10:
      if (!fin) return fail(error::control_fragmented);
      if (len > 125) return fail(error::control_too_long);
      break;
    default:
      return fail(error::bad_opcode);
  }
  int size = 2;
  if (len == 126) {
    size = 4;
    if (n < 4) return 0;
    len = static_cast<std::uint64_t>(p[2]) << 8 | p[3];
    if (len < 126) return fail(error::bad_length);
  } else if (len == 127) {
    size = 10;
    if (n < 10) return 0;
    len = 0;
    for (int i = 2; i < 10; ++i) len = len << 8 | p[i];
    if (len <= 0xffff || (len >> 63) != 0) return fail(error::bad_length);
  }
  // A data frame's size is checked before any of it is buffered; msg_ holds the fragments so
  // far (never more than max_message_).
  if (op < 8 && len > max_message_ - (op == 0 ? msg_.size() : 0)) return fail(error::too_big);
  fin_ = fin;
  opcode_ = op;
  remaining_ = len;
  in_payload_ = true;
  return size;
}

void ws_frame_parser::end_control(std::string_view payload, visitor& v) {
  if (opcode_ == 9) {
    v.on_ping(payload);
  } else if (opcode_ == 10) {
    v.on_pong(payload);
  } else if (payload.size() == 1) {
    fail(error::bad_close);
  } else {
    const int code = payload.empty() ? 1005
                                     : static_cast<unsigned char>(payload[0]) << 8 |
                                           static_cast<unsigned char>(payload[1]);
    closed_ = true;
    v.on_close(code, payload.empty() ? payload : payload.substr(2));
  }
}

void ws_frame_parser::end_frame(std::string_view tail, visitor& v) {
  in_payload_ = false;
  if (opcode_ >= 8) {
    if (ctl_.empty()) {
      end_control(tail, v);
    } else {
      ctl_.append(tail);
      end_control(ctl_, v);
      ctl_.clear();
    }
    return;
  }
  if (fin_ && opcode_ != 0 && msg_.empty()) {
    v.on_message(tail, opcode_ == 2);  // the common case: one frame, whole in this chunk
    return;
  }
  msg_.append(tail);
  if (opcode_ != 0) msg_binary_ = opcode_ == 2;
  if (!fin_) {
    msg_open_ = true;
    return;
  }
  v.on_message(msg_, msg_binary_);
  msg_open_ = false;
  msg_.clear();
  // A large message once should not pin its buffer for the life of an idle connection.
  if (msg_.capacity() > 64 * 1024) std::string().swap(msg_);
}

bool ws_frame_parser::feed(std::string_view bytes, visitor& v) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t pos = 0;
  while (error_ == error::none && !closed_) {
    if (!in_payload_) {
      if (pos == n) break;
      if (hdr_size_ == 0) {
        const int used = begin_frame(p + pos, n - pos);
        if (used < 0) break;
        if (used == 0) {  // a header cut by the end of the chunk: keep its head (< 10 bytes)
          std::memcpy(hdr_.data(), p + pos, n - pos);
          hdr_size_ = n - pos;
          break;
        }
        pos += static_cast<std::size_t>(used);
      } else {
        const std::size_t take = std::min(hdr_.size() - hdr_size_, n - pos);
        std::memcpy(hdr_.data() + hdr_size_, p + pos, take);
        const int used = begin_frame(hdr_.data(), hdr_size_ + take);
        if (used < 0) break;
        if (used == 0) {
          hdr_size_ += take;
          break;  // take was all of the chunk
        }
        pos += static_cast<std::size_t>(used) - hdr_size_;
        hdr_size_ = 0;
      }
    }
    const std::size_t avail = n - pos;
    if (remaining_ > avail) {  // the frame goes on in a later chunk: keep its head
      (opcode_ >= 8 ? ctl_ : msg_).append(bytes.substr(pos));
      remaining_ -= avail;
      break;
    }
    const auto len = static_cast<std::size_t>(remaining_);
    remaining_ = 0;
    pos += len;
    end_frame(bytes.substr(pos - len, len), v);
  }
  return error_ == error::none;
}

}  // namespace herald::bench
