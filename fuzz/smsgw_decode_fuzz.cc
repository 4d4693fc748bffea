// The smsgw wire decoders (smsgw.md §2, §4.1, §5): any bytes as a first frame, a later frame, a
// cursor, a date, and as an sms.status / sms.inbound event's data (validated, then rendered as
// a frame and a record) → a classification or a refusal, never a crash; what renders is JSON.
#include <cstddef>
#include <cstdint>

#include <boost/json/parse.hpp>

#include "dialect/smsgw/smsgw_codec.h"

namespace {

void must_be_json_object(const std::string& s) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(s, ec);
  if (ec || !v.is_object()) __builtin_trap();  // a rendering is always one JSON object
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace herald;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const smsgw::auth_frame f = smsgw::decode_auth(text, false);
  // A credential is only ever reported with the kind that carries one.
  if (!f.credential.empty() && f.k != smsgw::auth_frame::kind::api_key &&
      f.k != smsgw::auth_frame::kind::token)
    __builtin_trap();
  (void)smsgw::is_ping(text, false);
  if (auto c = smsgw::decode_cursor(text)) {
    // What decodes re-encodes to something that decodes to the same position.
    auto again = smsgw::decode_cursor(smsgw::encode_cursor(*c));
    if (!again || again->created_ms != c->created_ms || again->message_id != c->message_id)
      __builtin_trap();
  }
  (void)smsgw::parse_date(text);
  (void)smsgw::valid_e164(text);
  (void)smsgw::code_points(text);
  for (const char* type : {"sms.status", "sms.inbound"}) {
    event_draft d;
    d.topic = "/sms/t1/x";
    d.type = type;
    d.tenant = "t1";
    d.app = "app_1";
    d.subject = "msg_abc";
    d.retain = true;
    d.data = std::string(text);
    if (!smsgw::check_draft(d)) continue;
    // A draft the rules accept renders as the spec's frame and record.
    event e;
    e.type = type;
    e.tenant = d.tenant;
    e.app = d.app;
    e.subject = d.subject;
    e.data = d.data;
    must_be_json_object(smsgw::render_event(e));
    must_be_json_object(smsgw::render_record(e, 0));
  }
  return 0;
}
