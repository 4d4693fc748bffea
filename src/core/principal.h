// Who a request or socket acts as (native.md §1), and the scoping policy every path applies:
// socket delivery, history, state and request-over-socket all ask may_see(). Thread-safe: values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"

namespace herald {

enum class role : std::uint8_t { app, admin, publisher };
const char* role_name(role r) noexcept;
std::optional<role> parse_role(std::string_view s) noexcept;

enum scope : std::uint32_t {
  scope_publish = 1u << 0,
  scope_subscribe = 1u << 1,
  scope_history = 1u << 2,
};
std::uint32_t default_scopes(role r) noexcept;
std::optional<std::uint32_t> parse_scope(std::string_view s) noexcept;
std::vector<std::string> scope_names(std::uint32_t scopes);

enum class principal_kind : std::uint8_t { app, user };

struct principal {
  principal_kind kind = principal_kind::app;
  std::string tenant;
  std::string app_id;         // the app; for a user, the app it logged in through
  role app_role = role::app;  // meaningful for app principals
  std::uint32_t scopes = 0;
  bool via_api_key = false;  // authenticated by the app's API key (rotation closes it)
  // User principals only.
  std::string user_id;
  std::string login_session;  // "lgn_…", empty for apps
  std::string extension_id;
  bool user_admin = false;
  std::optional<std::vector<std::string>> trackers;

  bool has(std::uint32_t s) const noexcept { return (scopes & s) == s; }
  bool is_admin_app() const noexcept {
    return kind == principal_kind::app && app_role == role::admin;
  }
  // Same identity for resume purposes (native.md §3.6).
  bool same_as(const principal& o) const noexcept;
};

// What the policy needs to know of a subject (from the directory).
struct subject_flags {
  std::string kind;  // "" when only published, never registered
  bool blocked = false;
  bool corrupted = false;
};

// Lookup of a subject's flags; nullptr when the subject is unregistered.
class subject_lookup {
 public:
  virtual ~subject_lookup() = default;
  virtual std::optional<subject_flags> flags(std::string_view tenant,
                                             std::string_view subject) const = 0;
};

// The first visibility rule that hides `e` from `who` (hidden::none: it may see it). The one
// source of the rules: may_see() and friends below are these == none, and the admin API's
// `why` (hub::explain) reports the value itself, so the two cannot drift.
enum class hidden : std::uint8_t {
  none,
  role,               // a publisher app sees nothing
  tenant,             // another tenant than the principal's (or outside its explicit set)
  app,                // the event names another app
  restriction,        // a user's extension restriction or tracker list
  subject_blocked,    // the subject is blocked (only lifecycle events pass, admins see all)
  subject_corrupted,  // the subject is corrupted (likewise)
};
// "role", "tenant", …: the stable names the admin API reports.
const char* hidden_name(hidden h) noexcept;

hidden why_hidden(const principal& who, const event& e, const subject_lookup* subjects);
hidden why_hidden_in_set(const principal& who, const event& e, const subject_lookup* subjects);
hidden subject_hides(const principal& who, const event& e, const subject_lookup* subjects);

// True when `who` may see `e` at all (tenant, app binding, restrictions, blocked subjects).
// `in_tenant_set` narrows further when the caller holds a stored subscription.
inline bool may_see(const principal& who, const event& e, const subject_lookup* subjects) {
  return why_hidden(who, e, subjects) == hidden::none;
}

// may_see() for a session whose subscription holds an explicit tenant set (a stored
// subscription, zoom.md §4.2), which the caller has already checked: the set bounds the tenants
// for every role, so role `app`'s own-tenant rule gives way to it; its app-id rule, publishers
// and the subject rules are as in may_see().
inline bool may_see_in_set(const principal& who, const event& e, const subject_lookup* subjects) {
  return why_hidden_in_set(who, e, subjects) == hidden::none;
}

// The subject part of may_see(): blocked and corrupted subjects, a user's tracker list.
inline bool subject_allows(const principal& who, const event& e, const subject_lookup* subjects) {
  return subject_hides(who, e, subjects) == hidden::none;
}

// The tenant/app/user-restriction part of may_see(), without subject flags: the topic rules.
bool topic_allowed(const principal& who, std::string_view tenant, std::string_view topic);

}  // namespace herald
