#include "core/event.h"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <openssl/rand.h>

namespace herald {

struct event::parsed {
  boost::json::object obj;
  bool ok = false;
};

event::event() = default;
event::~event() = default;

const boost::json::object* event::data_object() const {
  std::call_once(parse_once_, [this] {
    parsed_ = std::make_unique<parsed>();
    boost::system::error_code ec;
    auto v = boost::json::parse(data, ec);
    if (!ec && v.is_object()) {
      parsed_->obj = std::move(v.as_object());
      parsed_->ok = true;
    }
  });
  return parsed_->ok ? &parsed_->obj : nullptr;
}

const std::string& event::rendered(std::size_t slot,
                                   const std::function<std::string(const event&)>& make) const {
  std::call_once(render_once_.at(slot), [&] { render_[slot] = make(*this); });
  return render_[slot];
}

namespace {
bool all_of_class(std::string_view s, std::size_t max, bool colon) noexcept {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-' || (colon && c == ':');
    if (!ok) return false;
  }
  return true;
}

void fill_random(unsigned char* p, std::size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) {
    // OpenSSL's CSPRNG failing is not recoverable: refuse to hand out guessable ids.
    std::abort();
  }
}
}  // namespace

bool valid_tenant_id(std::string_view s) noexcept { return all_of_class(s, 64, false); }
bool valid_type(std::string_view s) noexcept { return all_of_class(s, 128, true); }
bool valid_subject_id(std::string_view s) noexcept { return all_of_class(s, 128, true); }

std::string new_id(std::string_view prefix) {
  static constexpr char alphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  unsigned char bytes[16];
  fill_random(bytes, sizeof bytes);
  std::string out(prefix);
  // 22 base62 digits of 128 bits (each byte-pair folded; uniformity is not needed, uniqueness is).
  unsigned __int128 v = 0;
  for (unsigned char b : bytes) v = (v << 8) | b;
  for (int i = 0; i < 22; ++i) {
    out.push_back(alphabet[static_cast<unsigned>(v % 62)]);
    v /= 62;
  }
  return out;
}

std::string random_token(std::size_t n_bytes) {
  static constexpr char b64url[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string raw(n_bytes, '\0');
  fill_random(reinterpret_cast<unsigned char*>(raw.data()), n_bytes);
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64url[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(b64url[(acc << (6 - bits)) & 63]);
  return out;
}

}  // namespace herald
