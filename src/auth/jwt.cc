#include "auth/jwt.h"

#include <optional>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "auth/crypto.h"

namespace herald {
namespace json = boost::json;

namespace {

constexpr std::string_view hs256_header = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::size_t max_jwt_size = 8192;

error auth_error(std::string_view m, error_cause c = error_cause::unspecified) {
  return {errc::auth_failed, std::string(m), c};
}

// A base64url part decoded and parsed as a JSON object.
std::optional<json::object> decode_object(std::string_view part) {
  auto raw = base64url_decode(part);
  if (!raw) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

// A NumericDate claim (seconds, possibly fractional): absent → true, `out` untouched; a number
// → true, `out` set; anything else → false.
bool numeric_date(const json::object& o, std::string_view k, std::optional<double>& out) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) return true;
  if (const auto* i = v->if_int64()) {
    out = static_cast<double>(*i);
  } else if (const auto* u = v->if_uint64()) {
    out = static_cast<double>(*u);
  } else if (const auto* d = v->if_double()) {
    out = *d;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string jwt_sign(const json::object& claims, std::string_view key) {
  std::string out = base64url_encode(hs256_header);
  out += '.';
  out += base64url_encode(json::serialize(claims));
  const std::string sig = hmac_sha256(key, out);
  out += '.';
  out += base64url_encode(sig);
  return out;
}

result<json::object> jwt_verify(std::string_view jwt, std::string_view key, std::int64_t now_s) {
  if (jwt.size() > max_jwt_size) return auth_error(jwt_malformed_message, error_cause::malformed);
  const auto dot1 = jwt.find('.');
  if (dot1 == std::string_view::npos)
    return auth_error(jwt_malformed_message, error_cause::malformed);
  const auto dot2 = jwt.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos)
    return auth_error(jwt_malformed_message, error_cause::malformed);
  const std::string_view header_part = jwt.substr(0, dot1);
  const std::string_view payload_part = jwt.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signed_part = jwt.substr(0, dot2);
  const auto sig = base64url_decode(jwt.substr(dot2 + 1));  // a third '.' fails here
  if (!sig || header_part.empty() || payload_part.empty())
    return auth_error(jwt_malformed_message, error_cause::malformed);

  // The header is read before the signature is checked (its alg says how to check it); only
  // HS256 passes, so a token cannot choose "none" or another key type.
  const auto header = decode_object(header_part);
  if (!header) return auth_error(jwt_malformed_message, error_cause::malformed);
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256")
    return auth_error(jwt_bad_alg_message);
  if (header->contains("crit")) return auth_error(jwt_malformed_message, error_cause::malformed);

  if (sig->size() != 32 || !constant_time_equal(*sig, hmac_sha256(key, signed_part)))
    return auth_error(jwt_bad_signature_message);

  auto claims = decode_object(payload_part);
  if (!claims) return auth_error(jwt_malformed_message, error_cause::malformed);
  std::optional<double> exp, nbf;
  if (!numeric_date(*claims, "exp", exp) || !numeric_date(*claims, "nbf", nbf))
    return auth_error(jwt_malformed_message, error_cause::malformed);
  const auto now = static_cast<double>(now_s);
  if (exp && now >= *exp) return auth_error(jwt_expired_message, error_cause::expired);
  if (nbf && now < *nbf) return auth_error(jwt_not_yet_valid_message);
  return std::move(*claims);
}

bool is_jwt_expired(const error& e) noexcept {
  return e.code == errc::auth_failed && e.message == jwt_expired_message;
}

}  // namespace herald
