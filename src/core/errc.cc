#include "core/errc.h"

namespace herald {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "herald"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::bad_json:
        return "the message is not valid JSON";
      case errc::bad_message:
        return "the message has the wrong shape";
      case errc::unknown_type:
        return "unknown message type";
      case errc::invalid_filter:
        return "invalid subscription filter";
      case errc::auth_failed:
        return "authentication failed";
      case errc::auth_timeout:
        return "authentication did not arrive in time";
      case errc::forbidden:
        return "not allowed";
      case errc::too_many_requests:
        return "too many requests";
      case errc::too_large:
        return "too large";
      case errc::not_found:
        return "not found";
      case errc::conflict:
        return "conflict";
      case errc::subject_corrupted:
        return "the subject is corrupted";
      case errc::already_corrupted:
        return "the subject is already corrupted";
      case errc::unavailable:
        return "service unavailable";
      case errc::internal:
        return "internal error";
    }
    return "unknown error";
  }
};

}  // namespace

const std::error_category& herald_category() noexcept {
  static const category c;
  return c;
}

}  // namespace herald
