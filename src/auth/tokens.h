// Herald's signed tokens (design.md §3): access, refresh and ws tokens of every dialect,
// verifiable by any node that holds the token key, and the key files (token key, admin key,
// design.md §4). A token is base64url(JSON claims) "." base64url(HMAC-SHA256(key, first part)),
// so it uses only [A-Za-z0-9._-]. Audience, kind and reuse checks are the caller's.
// Thread-safe: token_signer is immutable after construction; the key-file functions touch only
// the file they are given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "auth/crypto.h"
#include "core/errc.h"

namespace herald {

// What a token asserts. A plain value (thread-safe as any value: copy it, share it const).
struct token_claims {
  std::string aud;             // native | ringcentral | tracker | smsgw
  std::string kind;            // access | refresh | ws
  std::string jti;             // unique id (replay guard, revocation)
  std::string principal_kind;  // app | user
  std::string tenant;
  std::string app_id;
  std::string user_id;
  std::string login_session;
  std::int64_t iat_ms = 0;
  std::int64_t exp_ms = 0;  // required: a token is expired once now_ms >= exp_ms
  std::string scopes;       // space separated

  bool operator==(const token_claims&) const = default;
};

// The messages of verify()'s auth_failed errors.
inline constexpr std::string_view token_malformed_message = "malformed token";
inline constexpr std::string_view token_bad_signature_message = "bad signature";
inline constexpr std::string_view token_expired_message = "token expired";

// Whether a verify() error is an expiry (a well-signed token past exp_ms), e.g. to answer
// RingCentral's OAU-128 / OAU-210 instead of the generic code.
bool is_token_expired(const error& e) noexcept;

// Issues and verifies tokens under one key. Thread-safe: const after construction.
class token_signer {
 public:
  // `key`: raw key bytes (see load_or_create_key).
  explicit token_signer(std::string_view key);

  // The signed token for `c`; empty string fields are left out of the payload.
  std::string issue(const token_claims& c) const;

  // The claims of a token this key signed, or auth_failed with token_malformed_message (not
  // two base64url parts, over 4096 characters, payload not a claims object),
  // token_bad_signature_message, or token_expired_message (now_ms >= exp_ms; the signature and
  // shape were good). The signature is checked before the payload is parsed.
  result<token_claims> verify(std::string_view token, std::int64_t now_ms) const;

  static constexpr std::size_t max_token_size = 4096;

 private:
  hmac_key mac_;
};

// A token key from its text form: exactly 64 hex characters (after trailing whitespace is
// dropped) are 32 key bytes; any other text is the key's raw bytes. Fails (internal) when the
// key is shorter than 16 bytes. Use it for HERALD_TOKEN_KEY too.
result<std::string> parse_token_key(std::string_view text);

// The token key in `path`, parsed by parse_token_key; if the file does not exist it is created
// (O_CREAT|O_EXCL, mode 0600) holding 64 hex characters of 32 random bytes. Errors: internal,
// naming the path and the system error.
result<std::string> load_or_create_key(const std::string& path);

// The admin key in `path` (surrounding whitespace dropped; empty → internal error), or, if the
// file does not exist, a new "hka_" + random_token(32) written there (O_CREAT|O_EXCL, 0600).
// `second` is true when the key was just created (the caller prints it once).
result<std::pair<std::string, bool>> load_or_create_admin_key(const std::string& path);

}  // namespace herald
