// Compact JWS with HS256 (RFC 7515/7519) for RingCentral JWT credentials
// (ringcentral.md §5): signed with the token key, verified at the jwt-bearer grant. Only HS256
// is accepted ("none" and every other alg are refused); claim semantics beyond exp and nbf
// (iss, sub, ten, jti, azp) are the caller's. Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/errc.h"

namespace herald {

// The messages of jwt_verify()'s auth_failed errors.
inline constexpr std::string_view jwt_malformed_message = "malformed jwt";
inline constexpr std::string_view jwt_bad_alg_message = "unsupported jwt alg (HS256 only)";
inline constexpr std::string_view jwt_bad_signature_message = "bad jwt signature";
inline constexpr std::string_view jwt_expired_message = "jwt expired";
inline constexpr std::string_view jwt_not_yet_valid_message = "jwt not yet valid";

// "<header>.<payload>.<signature>", header {"alg":"HS256","typ":"JWT"}, all base64url without
// padding (so [A-Za-z0-9._-] only).
std::string jwt_sign(const boost::json::object& claims, std::string_view key);

// The claims of a JWT signed with `key`, or auth_failed with one of the messages above:
// malformed (not three base64url parts, over 8192 characters, header or payload not a JSON
// object, exp/nbf not numbers, a "crit" header), bad alg (alg is not "HS256"), bad signature
// (constant-time check, before the payload is parsed), expired (now_s >= exp), not yet valid
// (now_s < nbf). `now_s`: seconds since the Unix epoch.
result<boost::json::object> jwt_verify(std::string_view jwt, std::string_view key,
                                       std::int64_t now_s);

// Whether a jwt_verify() error is an expiry (RingCentral OAU-210).
bool is_jwt_expired(const error& e) noexcept;

}  // namespace herald
