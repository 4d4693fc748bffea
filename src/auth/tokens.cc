#include "auth/tokens.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/event.h"

namespace herald {
namespace json = boost::json;

namespace {

// Claim names in the payload (short: tokens travel in URLs).
constexpr std::string_view k_aud = "aud", k_kind = "knd", k_jti = "jti", k_pkind = "pk",
                           k_tenant = "ten", k_app = "app", k_user = "usr", k_login = "lgn",
                           k_iat = "iat", k_exp = "exp", k_scopes = "scp";

error auth_error(std::string_view m, error_cause c = error_cause::unspecified) {
  return {errc::auth_failed, std::string(m), c};
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Reads a string claim: absent → empty; present but not a string → false.
bool get_string(const json::object& o, std::string_view k, std::string& out, bool required) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) return !required;
  const json::string* s = v->if_string();
  if (s == nullptr) return false;
  out.assign(s->data(), s->size());
  return true;
}

bool get_int(const json::object& o, std::string_view k, std::int64_t& out, bool required) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) return !required;
  const std::int64_t* i = v->if_int64();
  if (i == nullptr) return false;
  out = *i;
  return true;
}

std::string sys_error(std::string_view what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// The whole file, or an error (files over 64 KiB are refused: a key file is small).
result<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error{errc::internal, sys_error("cannot open", path)};
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error e{errc::internal, sys_error("cannot read", path)};
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > 65536) {
      ::close(fd);
      return error{errc::internal, path + ": too large for a key file"};
    }
  }
  ::close(fd);
  return out;
}

enum class create_outcome { created, exists, failed };

// Creates `path` exclusively with mode 0600 holding `content`, durably. On failure `err` names
// the problem and no partial file is left behind.
create_outcome create_exclusive(const std::string& path, std::string_view content,
                                std::string& err) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return create_outcome::exists;
    err = sys_error("cannot create", path);
    return create_outcome::failed;
  }
  bool ok = ::fchmod(fd, 0600) == 0;  // whatever the umask
  std::size_t done = 0;
  while (ok && done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (ok) ok = ::fsync(fd) == 0;
  if (!ok) err = sys_error("cannot write", path);
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = sys_error("cannot write", path);
  }
  if (!ok) {
    ::unlink(path.c_str());
    return create_outcome::failed;
  }
  return create_outcome::created;
}

}  // namespace

bool is_token_expired(const error& e) noexcept {
  return e.code == errc::auth_failed && e.message == token_expired_message;
}

token_signer::token_signer(std::string_view key) : mac_(key) {}

std::string token_signer::issue(const token_claims& c) const {
  json::object o;
  auto put = [&o](std::string_view k, const std::string& v) {
    if (!v.empty()) o[k] = v;
  };
  put(k_aud, c.aud);
  put(k_kind, c.kind);
  put(k_jti, c.jti);
  put(k_pkind, c.principal_kind);
  put(k_tenant, c.tenant);
  put(k_app, c.app_id);
  put(k_user, c.user_id);
  put(k_login, c.login_session);
  o[k_iat] = c.iat_ms;
  o[k_exp] = c.exp_ms;
  put(k_scopes, c.scopes);
  std::string token = base64url_encode(json::serialize(o));
  const std::string sig = mac_.mac(token);
  token += '.';
  token += base64url_encode(sig);
  return token;
}

result<token_claims> token_signer::verify(std::string_view token, std::int64_t now_ms) const {
  if (token.size() > max_token_size)
    return auth_error(token_malformed_message, error_cause::malformed);
  const auto dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0)
    return auth_error(token_malformed_message, error_cause::malformed);
  const std::string_view body = token.substr(0, dot), sig_text = token.substr(dot + 1);
  const auto sig = base64url_decode(sig_text);
  auto payload = base64url_decode(body);
  if (!sig || !payload || sig->size() != 32)
    return auth_error(token_malformed_message, error_cause::malformed);
  // The MAC is checked before the payload is parsed: unsigned bytes never reach the JSON parser.
  if (!constant_time_equal(*sig, mac_.mac(body))) return auth_error(token_bad_signature_message);

  boost::system::error_code ec;
  json::value v = json::parse(*payload, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return auth_error(token_malformed_message, error_cause::malformed);
  token_claims c;
  const bool ok =
      get_string(*o, k_aud, c.aud, true) && get_string(*o, k_kind, c.kind, true) &&
      get_string(*o, k_jti, c.jti, false) && get_string(*o, k_pkind, c.principal_kind, false) &&
      get_string(*o, k_tenant, c.tenant, false) && get_string(*o, k_app, c.app_id, false) &&
      get_string(*o, k_user, c.user_id, false) && get_string(*o, k_login, c.login_session, false) &&
      get_int(*o, k_iat, c.iat_ms, false) && get_int(*o, k_exp, c.exp_ms, true) &&
      get_string(*o, k_scopes, c.scopes, false);
  if (!ok) return auth_error(token_malformed_message, error_cause::malformed);
  if (now_ms >= c.exp_ms) return auth_error(token_expired_message, error_cause::expired);
  return c;
}

result<std::string> parse_token_key(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
  std::string key;
  if (t.size() == 64) {
    if (auto raw = hex_decode(t)) key = std::move(*raw);
  }
  if (key.empty()) key.assign(text);
  if (key.size() < 16)
    return error{errc::internal, "token key too short (at least 16 bytes, or 64 hex digits)"};
  return key;
}

// Both key files are created before they are read, never the other way round: O_EXCL makes one
// process the creator and every other one reads the creator's key, so two processes started on
// one data dir never end up with different keys.
result<std::string> load_or_create_key(const std::string& path) {
  std::string err;
  switch (create_exclusive(path, hex_encode(random_bytes(32)), err)) {
    case create_outcome::failed:
      return error{errc::internal, std::move(err)};
    case create_outcome::created:
    case create_outcome::exists:
      break;
  }
  auto text = read_small_file(path);
  if (!text) return std::move(text).err();
  auto key = parse_token_key(*text);
  if (!key) return error{errc::internal, path + ": " + key.err().message};
  return key;
}

result<std::pair<std::string, bool>> load_or_create_admin_key(const std::string& path) {
  std::string err;
  const std::string fresh = "hka_" + random_token(32);
  switch (create_exclusive(path, fresh, err)) {
    case create_outcome::failed:
      return error{errc::internal, std::move(err)};
    case create_outcome::created:
      return std::pair<std::string, bool>(fresh, true);
    case create_outcome::exists:
      break;
  }
  auto text = read_small_file(path);
  if (!text) return std::move(text).err();
  std::string_view t = *text;
  while (!t.empty() && is_space(t.front())) t.remove_prefix(1);
  while (!t.empty() && is_space(t.back())) t.remove_suffix(1);
  if (t.empty()) return error{errc::internal, path + ": the admin key file is empty"};
  return std::pair<std::string, bool>(std::string(t), false);
}

}  // namespace herald
