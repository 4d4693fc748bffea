// Herald's error codes: one enum for every layer, an error_category whose messages name the
// problem, and a small result<T>. No wire format here: each dialect maps errc to its wire codes
// in one table (native's names and HTTP statuses are api/native_errors.h).
// Thread-safe: everything here is immutable or value-typed.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace herald {

enum class errc {
  ok = 0,
  bad_json,           // the bytes are not JSON
  bad_message,        // valid JSON of the wrong shape (the message names the field)
  unknown_type,       // a client message type this dialect does not know
  invalid_filter,     // a subscription filter that cannot be compiled
  auth_failed,        // no, bad, expired, reused or revoked credential
  auth_timeout,       // in-band authentication did not arrive in time
  forbidden,          // authenticated, but not allowed
  too_many_requests,  // a rate, in-flight or connection limit
  too_large,          // a size limit
  not_found,
  conflict,
  subject_corrupted,
  already_corrupted,
  unavailable,  // the store or another dependency is down
  internal,
};

const std::error_category& herald_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), herald_category()};
}

// The bounded class of an error, set where the error is made: the `reason` of an authentication
// failure and the `limit` of a refusal in logs and metrics labels (core/op_events.h), so that
// rewording a message never changes a label. `unspecified`: the code's default class (an
// authentication failure's `invalid`, a refusal's `rate`).
enum class error_cause : std::uint8_t {
  unspecified,
  // errc::auth_failed
  missing,     // no credential
  malformed,   // not the shape of one
  expired,     // past its expiry (a token, a login session)
  reused,      // a single-use token presented again
  revoked,     // its app, user or login session ended or is blocked
  wrong_kind,  // a credential of another kind, audience or scheme
  // errc::too_many_requests
  auth_failures,  // failed authentications from the address
  connections,    // a dialect's own bound on sockets (smsgw's per API key)
  connections_per_app,
  connections_per_tenant,
  connections_per_session,
  publish_rate,
};

// An error: a code plus a human message naming the problem ("filters[2].topic: empty segment"),
// and its class for labels.
struct error {
  errc code = errc::internal;
  std::string message;
  error_cause cause = error_cause::unspecified;
};

// A value or an error. The data path returns these instead of throwing.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)
  result(errc code, std::string message) : v_(error{code, std::move(message)}) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const error& err() const& { return std::get<1>(v_); }
  error&& err() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

// result<void>: success or an error.
struct status {
  status() = default;
  status(error e) : err_(std::move(e)), failed_(true) {}  // NOLINT(google-explicit-constructor)
  status(errc code, std::string message) : err_{code, std::move(message)}, failed_(true) {}
  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const error& err() const { return err_; }

 private:
  error err_;
  bool failed_ = false;
};

}  // namespace herald

template <>
struct std::is_error_code_enum<herald::errc> : std::true_type {};
