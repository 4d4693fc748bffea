#include "auth/crypto.h"

#include <array>
#include <cstdint>
#include <cstdlib>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

namespace herald {
namespace {

constexpr std::size_t sha256_len = 32;
constexpr std::size_t salt_len = 16;
constexpr std::size_t password_hash_len = 32;
constexpr int max_password_iterations = 10000000;
constexpr std::string_view password_scheme = "pbkdf2-sha256";

const unsigned char* bytes(std::string_view s) {
  // OpenSSL wants a valid pointer even for zero-length input.
  static const unsigned char empty = 0;
  return s.empty() ? &empty : reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

constexpr char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Value of each character in one alphabet, -1 for characters outside it.
struct decode_table {
  std::array<std::int8_t, 256> v{};
  constexpr explicit decode_table(bool url) {
    for (auto& x : v) x = -1;
    // Indices go through unsigned char: a char is signed here, and these are all ASCII.
    for (int i = 0; i < 26; ++i) {
      v[static_cast<unsigned char>('A' + i)] = static_cast<std::int8_t>(i);
      v[static_cast<unsigned char>('a' + i)] = static_cast<std::int8_t>(26 + i);
    }
    for (int i = 0; i < 10; ++i)
      v[static_cast<unsigned char>('0' + i)] = static_cast<std::int8_t>(52 + i);
    v[static_cast<unsigned char>(url ? '-' : '+')] = 62;
    v[static_cast<unsigned char>(url ? '_' : '/')] = 63;
  }
};

constexpr decode_table url_table(true);
constexpr decode_table std_table(false);

// Decodes unpadded base64 text in the given alphabet. With `strict_tail`, the unused low bits
// of a final partial group must be zero.
std::optional<std::string> decode_unpadded(std::string_view text, const decode_table& t,
                                           bool strict_tail) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    // The table holds small numbers (std::int8_t), -1 for a character outside the alphabet.
    const int d = t.v[static_cast<unsigned char>(c)];  // NOLINT(bugprone-signed-char-misuse)
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  if (strict_tail && bits > 0 && (acc & ((1u << bits) - 1u)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes(data), data.size(), md, &len, EVP_sha256(), nullptr) != 1) std::abort();
  return hex_encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmac_sha256(std::string_view key, std::string_view msg) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), bytes(key), static_cast<int>(key.size()), bytes(msg), msg.size(),
           bytes(out), &len) == nullptr) {
    std::abort();
  }
  out.resize(len);
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64url_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : data) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64url_alphabet[(acc >> bits) & 63u]);
    }
  }
  if (bits > 0) out.push_back(b64url_alphabet[(acc << (6 - bits)) & 63u]);
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  return decode_unpadded(text, url_table, true);
}

std::optional<std::string> base64_decode(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  if (pad > 0 && text.size() % 4 != 0) return std::nullopt;
  text.remove_suffix(pad);
  // One '=' pads a 3-character tail, two a 2-character tail; anything else is malformed.
  if (pad > 0 && text.size() % 4 != 4 - pad) return std::nullopt;
  return decode_unpadded(text, std_table, false);
}

std::string hex_encode(std::string_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (unsigned char c : data) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15u]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(bytes(out), static_cast<int>(n)) != 1) {
    // OpenSSL's CSPRNG failing is not recoverable: never hand out guessable secrets.
    std::abort();
  }
  return out;
}

namespace {
std::string pbkdf2(std::string_view password, std::string_view salt, int iterations,
                   std::size_t len) {
  std::string out(len, '\0');
  if (PKCS5_PBKDF2_HMAC(password.empty() ? "" : password.data(), static_cast<int>(password.size()),
                        bytes(salt), static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(len), bytes(out)) != 1) {
    std::abort();
  }
  return out;
}
}  // namespace

std::string hash_password(std::string_view password, int iterations) {
  if (iterations < 1) iterations = 1;
  if (iterations > max_password_iterations) iterations = max_password_iterations;
  const std::string salt = random_bytes(salt_len);
  const std::string hash = pbkdf2(password, salt, iterations, password_hash_len);
  std::string out(password_scheme);
  out += '$';
  out += std::to_string(iterations);
  out += '$';
  out += base64url_encode(salt);
  out += '$';
  out += base64url_encode(hash);
  return out;
}

bool verify_password(std::string_view password, std::string_view stored) {
  std::array<std::string_view, 4> part;
  for (std::size_t i = 0; i < part.size(); ++i) {
    const auto dollar = stored.find('$');
    if ((i + 1 < part.size()) == (dollar == std::string_view::npos)) return false;
    part[i] = stored.substr(0, dollar);
    stored = dollar == std::string_view::npos ? std::string_view() : stored.substr(dollar + 1);
  }
  if (part[0] != password_scheme) return false;
  const std::string_view iter_text = part[1];
  if (iter_text.empty() || iter_text.size() > 8 || iter_text[0] == '0') return false;
  int iterations = 0;
  for (char c : iter_text) {
    if (c < '0' || c > '9') return false;
    iterations = iterations * 10 + (c - '0');
  }
  if (iterations > max_password_iterations) return false;
  const auto salt = base64url_decode(part[2]);
  const auto hash = base64url_decode(part[3]);
  if (!salt || salt->empty() || !hash || hash->size() < 16 || hash->size() > 64) return false;
  return constant_time_equal(pbkdf2(password, *salt, iterations, hash->size()), *hash);
}

std::string hash_secret(std::string_view secret) { return sha256_hex(secret); }

// ---- hmac_key

struct hmac_key::state {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;  // initialized with the key, never updated: dup'd per MAC
  ~state() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

hmac_key::hmac_key(std::string_view key) : key_(key) {
  auto s = std::make_unique<state>();
  s->mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (s->mac != nullptr) s->ctx = EVP_MAC_CTX_new(s->mac);
  if (s->ctx == nullptr) return;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  if (EVP_MAC_init(s->ctx, bytes(std::string_view(key_)), key_.size(), params) != 1) return;
  state_ = std::move(s);
}

hmac_key::~hmac_key() = default;
hmac_key::hmac_key(hmac_key&&) noexcept = default;
hmac_key& hmac_key::operator=(hmac_key&&) noexcept = default;

std::string hmac_key::mac(std::string_view msg) const {
  if (state_) {
    EVP_MAC_CTX* c = EVP_MAC_CTX_dup(state_->ctx);
    if (c != nullptr) {
      std::string out(sha256_len, '\0');
      std::size_t len = 0;
      const bool ok = EVP_MAC_update(c, bytes(msg), msg.size()) == 1 &&
                      EVP_MAC_final(c, bytes(out), &len, out.size()) == 1 && len == sha256_len;
      EVP_MAC_CTX_free(c);
      if (ok) return out;
    }
  }
  return hmac_sha256(key_, msg);
}

bool verify_login_password(std::string_view password, const std::string* stored) {
  static const std::string dummy = hash_password(hex_encode(random_bytes(16)));
  if (stored == nullptr || stored->empty()) {
    (void)verify_password(password, dummy);
    return false;
  }
  return verify_password(password, *stored);
}

}  // namespace herald
