#include "api/native_errors.h"

namespace herald {

const char* errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return "ok";
    case errc::bad_json:
      return "bad_json";
    case errc::bad_message:
      return "bad_message";
    case errc::unknown_type:
      return "unknown_type";
    case errc::invalid_filter:
      return "invalid_filter";
    case errc::auth_failed:
      return "auth_failed";
    case errc::auth_timeout:
      return "auth_timeout";
    case errc::forbidden:
      return "forbidden";
    case errc::too_many_requests:
      return "too_many_requests";
    case errc::too_large:
      return "too_large";
    case errc::not_found:
      return "not_found";
    case errc::conflict:
      return "conflict";
    case errc::subject_corrupted:
      return "subject_corrupted";
    case errc::already_corrupted:
      return "already_corrupted";
    case errc::unavailable:
      return "unavailable";
    case errc::internal:
      return "internal";
  }
  return "internal";
}

int errc_http_status(errc e) noexcept {
  switch (e) {
    case errc::ok:
      return 200;
    case errc::bad_json:
    case errc::bad_message:
    case errc::unknown_type:
    case errc::invalid_filter:
      return 400;
    case errc::auth_failed:
    case errc::auth_timeout:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::conflict:
    case errc::subject_corrupted:
    case errc::already_corrupted:
      return 409;
    case errc::too_large:
      return 413;
    case errc::too_many_requests:
      return 429;
    case errc::unavailable:
      return 503;
    case errc::internal:
      return 500;
  }
  return 500;
}

}  // namespace herald
