#include "bench/protocol.h"

#include <charconv>

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

}  // namespace herald::bench
