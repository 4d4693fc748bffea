#include "core/event.h"

#include <pthread.h>

#include <atomic>

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
  parse_once_.call([this] {
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
  render_once_.at(slot).call([&] { render_[slot] = make(*this); });
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

namespace {
// Random bytes for ids, drawn from the CSPRNG a block at a time: RAND_bytes per id cost a
// getpid, a pthread_once and a lock per event on the publish path. Each thread keeps its own
// block; a fork (which would copy it into the child) discards every thread's block.
std::atomic<unsigned> fork_generation{0};
[[maybe_unused]] const int fork_hook = pthread_atfork(
    nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });

struct random_block {
  unsigned char bytes[1024];
  std::size_t used = sizeof bytes;  // empty until the first draw
  unsigned generation = 0;

  const unsigned char* take(std::size_t n) {
    const unsigned g = fork_generation.load(std::memory_order_relaxed);
    if (used + n > sizeof bytes || g != generation) {
      fill_random(bytes, sizeof bytes);
      used = 0;
      generation = g;
    }
    const unsigned char* p = bytes + used;
    used += n;
    return p;
  }
};
}  // namespace

std::string new_id(std::string_view prefix) {
  static constexpr char alphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static constexpr std::size_t digits = 22;
  thread_local random_block block;
  const unsigned char* r = block.take(digits);
  // Sized once and written in place: a push_back per digit cost ~800 instructions an id
  // (callgrind), one per appended event.
  std::string out(prefix.size() + digits, '\0');
  char* o = out.data();
  for (char c : prefix) *o++ = c;
  // 22 base62 digits, one random byte each scaled to 0..61 (near-uniform: ~5.95 bits a digit,
  // 130 bits in all; uniformity is not needed, uniqueness and unpredictability are).
  for (std::size_t i = 0; i < digits; ++i) o[i] = alphabet[(r[i] * 62u) >> 8];
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
