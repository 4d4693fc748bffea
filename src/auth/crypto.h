// Cryptographic primitives for auth/: SHA-256, HMAC-SHA256, constant-time comparison, base64
// and base64url, hex, random bytes, and the hashing of stored credentials (PBKDF2 for
// passwords, plain SHA-256 for high-entropy secrets such as API keys and client secrets).
// All on OpenSSL 3. Thread-safe: free functions are pure (or draw from the system CSPRNG);
// hmac_key is immutable after construction and may be shared by any number of threads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

// SHA-256 of `data` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

// HMAC-SHA256 of `msg` under `key`: 32 raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view msg);

// Whether a == b, in time that depends only on the lengths (lengths are not secret).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// URL-safe base64 (RFC 4648 §5) without padding.
std::string base64url_encode(std::string_view data);

// Strict inverse of base64url_encode: only [A-Za-z0-9_-], no padding, no whitespace, and the
// unused low bits of the last character must be zero (one encoding per byte string).
std::optional<std::string> base64url_decode(std::string_view text);

// Standard base64 (RFC 4648 §4), as in HTTP Basic credentials: surrounding spaces and tabs are
// ignored, padding is optional but must be correct when present; nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex, and its inverse (either case; nullopt on odd length or a non-hex character).
std::string hex_encode(std::string_view data);
std::optional<std::string> hex_decode(std::string_view text);

// `n` bytes from the system CSPRNG (aborts if OpenSSL's generator fails).
std::string random_bytes(std::size_t n);

// A password's self-describing hash: "pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>"
// (16-byte random salt, 32-byte PBKDF2-HMAC-SHA256 output).
inline constexpr int default_password_iterations = 100000;
std::string hash_password(std::string_view password, int iterations = default_password_iterations);

// Whether `password` matches a hash_password string (constant-time comparison). False for a
// malformed or empty `stored`, and for iteration counts outside [1, 10000000].
bool verify_password(std::string_view password, std::string_view stored);

// A login's password check that takes the same time whether or not the login exists: with no
// stored hash (unknown login, no password set) it does the same PBKDF2 work against a random
// one and answers false, so logins cannot be enumerated by timing.
bool verify_login_password(std::string_view password, const std::string* stored);

// The stored form of a high-entropy secret (API key, client secret): sha256_hex. Compare with
// constant_time_equal(stored, hash_secret(presented)).
std::string hash_secret(std::string_view secret);

// An HMAC-SHA256 key prepared once, so each MAC skips OpenSSL's algorithm lookup.
// Thread-safe: mac() is const and works on a private copy of the prepared state.
class hmac_key {
 public:
  explicit hmac_key(std::string_view key);
  ~hmac_key();
  hmac_key(hmac_key&&) noexcept;
  hmac_key& operator=(hmac_key&&) noexcept;
  hmac_key(const hmac_key&) = delete;
  hmac_key& operator=(const hmac_key&) = delete;

  // The same 32 bytes as hmac_sha256(key, msg).
  std::string mac(std::string_view msg) const;

 private:
  struct state;
  std::string key_;
  std::unique_ptr<state> state_;  // null if OpenSSL could not prepare it: mac() falls back
};

}  // namespace herald
