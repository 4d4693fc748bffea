// The RingCentral client frame decoder and the wsc token codec on arbitrary bytes. Beyond not
// crashing: an accepted frame has the fields §3.2 promises (known type; a ClientRequest has a
// messageId, an upper-case method and a '/' path without query), a body that is JSON text,
// and it decodes again to the same fields once re-rendered; a wsc token decodes to what was
// encoded, and a token changed anywhere never decodes to a different state.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/parse.hpp>

#include "api/json_util.h"
#include "dialect/ringcentral/rc_codec.h"

namespace {

using herald::rc::client_frame;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_frame(std::string_view text) {
  client_frame f;
  const herald::status st = herald::rc::parse_client_frame(text, f);
  if (!st.ok()) {
    const auto code = st.err().code;
    check(code == herald::errc::bad_json || code == herald::errc::bad_message ||
          code == herald::errc::unknown_type);
    return;
  }
  check(f.type == "Heartbeat" || f.type == "ClientRequest");
  // The strings come from the frame's own bytes (a numeric messageId is re-serialized, which
  // may add an exponent): nothing grows without bound.
  check(f.type.size() <= text.size() && f.path.size() <= text.size() &&
        f.method.size() <= text.size() && f.message_id.size() <= text.size() + 32);
  if (f.type == "ClientRequest") {
    check(!f.message_id.empty() && !f.method.empty());
    for (const char c : f.method) check(!std::islower(static_cast<unsigned char>(c)));
    check(!f.path.empty() && f.path.front() == '/' && f.path.find('?') == std::string::npos);
  } else {
    check(f.method.empty() && f.path.empty() && f.query.empty());
  }
  if (f.body) {
    check(!f.body->empty());
    boost::system::error_code ec;
    boost::json::parse(*f.body, ec);
    check(!ec);
  }
  // Rendered again as a client would send it, the frame decodes to the same fields.
  std::string again = "[{\"type\":" + herald::json_quote(f.type) +
                      ",\"messageId\":" + herald::json_quote(f.message_id);
  if (f.type == "ClientRequest") {
    again += ",\"method\":" + herald::json_quote(f.method);
    again += ",\"path\":" + herald::json_quote(f.query.empty() ? f.path : f.path + "?" + f.query);
  }
  again += '}';
  if (f.body) again += "," + *f.body;
  again += ']';
  client_frame g;
  check(herald::rc::parse_client_frame(again, g).ok());
  // An absent messageId renders as "" and reads back as "".
  check(g.type == f.type && g.message_id == f.message_id && g.method == f.method &&
        g.path == f.path && g.query == f.query && g.body == f.body);
}

void check_wsc(std::string_view data) {
  static const herald::rc::wsc_codec codec("fuzz token key");
  // Arbitrary bytes as a token: without the key nothing forges one.
  check(!codec.decode(data).has_value());

  // A state taken from the input round-trips whenever it is representable.
  herald::rc::wsc_state s;
  const std::size_t cut = data.size() / 2;
  s.resume_token = std::string(data.substr(0, cut));
  s.login = std::string(data.substr(cut));
  for (const char c : data) s.seq = s.seq * 131 + static_cast<unsigned char>(c);
  s.base = s.seq ^ data.size();
  const std::string token = codec.encode(s);
  for (const char c : token)
    check(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  const bool representable = !s.resume_token.empty() &&
                             s.resume_token.find('\n') == std::string::npos &&
                             s.login.find('\n') == std::string::npos &&
                             token.size() <= herald::rc::wsc_codec::max_token_size;
  const auto back = codec.decode(token);
  check(back.has_value() == representable);
  if (!back) return;
  check(*back == s);
  // One byte of the token changed: refused, or (a base64 variant of the same bytes) the same
  // state, never another one.
  if (data.empty()) return;
  std::string bent = token;
  bent[static_cast<unsigned char>(data[0]) % bent.size()] =
      static_cast<char>(data[data.size() - 1]);
  if (const auto d = codec.decode(bent)) check(*d == s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_frame(text);
  check_wsc(text);
  return 0;
}
