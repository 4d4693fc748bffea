#include "core/principal.h"

#include <algorithm>

namespace herald {

const char* role_name(role r) noexcept {
  switch (r) {
    case role::app:
      return "app";
    case role::admin:
      return "admin";
    case role::publisher:
      return "publisher";
  }
  return "app";
}

std::optional<role> parse_role(std::string_view s) noexcept {
  if (s == "app") return role::app;
  if (s == "admin") return role::admin;
  if (s == "publisher") return role::publisher;
  return std::nullopt;
}

std::uint32_t default_scopes(role r) noexcept {
  return r == role::publisher ? scope_publish : (scope_subscribe | scope_history);
}

std::optional<std::uint32_t> parse_scope(std::string_view s) noexcept {
  if (s == "publish") return scope_publish;
  if (s == "subscribe") return scope_subscribe;
  if (s == "history") return scope_history;
  return std::nullopt;
}

std::vector<std::string> scope_names(std::uint32_t scopes) {
  std::vector<std::string> out;
  if (scopes & scope_publish) out.emplace_back("publish");
  if (scopes & scope_subscribe) out.emplace_back("subscribe");
  if (scopes & scope_history) out.emplace_back("history");
  return out;
}

bool principal::same_as(const principal& o) const noexcept {
  if (kind != o.kind || tenant != o.tenant) return false;
  return kind == principal_kind::app ? app_id == o.app_id : user_id == o.user_id;
}

bool topic_allowed(const principal& who, std::string_view tenant, std::string_view topic) {
  if (who.kind == principal_kind::app) return who.app_role == role::admin || tenant == who.tenant;
  if (tenant != who.tenant) return false;
  if (who.user_admin) return true;
  // A non-admin user sees a topic holding `extension/<x>` only when x is its own extension.
  std::string_view prev;
  std::size_t pos = 1;
  while (pos <= topic.size()) {
    const std::size_t end = std::min(topic.find('/', pos), topic.size());
    const std::string_view seg = topic.substr(pos, end - pos);
    if (prev == "extension" && seg != who.extension_id) return false;
    prev = seg;
    pos = end + 1;
  }
  return true;
}

const char* hidden_name(hidden h) noexcept {
  switch (h) {
    case hidden::none:
      return "none";
    case hidden::role:
      return "role";
    case hidden::tenant:
      return "tenant";
    case hidden::app:
      return "app";
    case hidden::restriction:
      return "restriction";
    case hidden::subject_blocked:
      return "subject_blocked";
    case hidden::subject_corrupted:
      return "subject_corrupted";
  }
  return "none";
}

hidden why_hidden(const principal& who, const event& e, const subject_lookup* subjects) {
  if (who.kind == principal_kind::app) {
    if (who.app_role == role::publisher) return hidden::role;
    if (who.app_role != role::admin) {
      if (e.tenant != who.tenant) return hidden::tenant;
      if (!e.app.empty() && e.app != who.app_id) return hidden::app;
    }
  } else if (e.tenant != who.tenant) {
    return hidden::tenant;
  } else if (!topic_allowed(who, e.tenant, e.topic)) {
    return hidden::restriction;
  }
  return subject_hides(who, e, subjects);
}

hidden why_hidden_in_set(const principal& who, const event& e, const subject_lookup* subjects) {
  // Only an app of role `app` has an own-tenant rule to lift; the set (checked by the caller)
  // stands in for it. Its app-id rule and the subject rules still hold.
  if (who.kind != principal_kind::app || who.app_role != role::app || e.tenant == who.tenant)
    return why_hidden(who, e, subjects);
  if (!e.app.empty() && e.app != who.app_id) return hidden::app;
  return subject_hides(who, e, subjects);
}

hidden subject_hides(const principal& who, const event& e, const subject_lookup* subjects) {
  if (e.subject.empty() || subjects == nullptr) return hidden::none;
  const auto flags = subjects->flags(e.tenant, e.subject);
  if (!flags) return hidden::none;
  // Blocked and corrupted subjects keep only server lifecycle events flowing to non-admins (the
  // `corrupt` event itself must reach those who held the subject; nothing follows it).
  if ((flags->corrupted || flags->blocked) && !who.is_admin_app() && e.type != "lifecycle")
    return flags->corrupted ? hidden::subject_corrupted : hidden::subject_blocked;
  if (who.kind == principal_kind::user && who.trackers && flags->kind == "tracker" &&
      std::find(who.trackers->begin(), who.trackers->end(), e.subject) == who.trackers->end())
    return hidden::restriction;
  return hidden::none;
}

}  // namespace herald
