#include "core/filter.h"

#include <boost/json/object.hpp>
#include <fmt/format.h>

namespace herald {
namespace {

// Calls f(segment) for each '/'-separated segment after the leading '/'.
template <class F>
bool for_each_segment(std::string_view topic, F&& f) {
  if (topic.empty() || topic.front() != '/') return false;
  std::size_t pos = 1;
  while (true) {
    const std::size_t end = topic.find('/', pos);
    const std::string_view seg =
        topic.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (!f(seg)) return false;
    if (end == std::string_view::npos) return true;
    pos = end + 1;
  }
}

error invalid(std::string message) { return {errc::invalid_filter, std::move(message)}; }

}  // namespace

bool valid_topic(std::string_view topic) noexcept {
  if (topic.size() > max_topic_bytes) return false;
  // Control characters (NUL included) would reach logs, headers and the store as they are;
  // a `*` or `**` segment is a filter's wildcard: an event there would match as a pattern.
  for (const char c : topic)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return for_each_segment(topic,
                          [](std::string_view s) { return !s.empty() && s != "*" && s != "**"; });
}

result<filter> filter::compile(const filter_spec& spec, std::string_view own_tenant,
                               const filter_limits& limits) {
  filter f;
  f.spec_ = spec;
  if (spec.topic.size() > max_topic_bytes) return invalid("topic: longer than 1024 bytes");
  std::string resolved;
  std::string error_text;
  const bool ok = for_each_segment(spec.topic, [&](std::string_view s) {
    if (s.empty()) {
      error_text = "topic: empty segment";
      return false;
    }
    if (!f.segments_.empty() && f.segments_.back().kind == seg_kind::rest) {
      error_text = "topic: '**' may only be the last segment";
      return false;
    }
    if (s == "*") {
      f.segments_.push_back({seg_kind::one, {}});
    } else if (s == "**") {
      f.segments_.push_back({seg_kind::rest, {}});
    } else if (s.find('*') != std::string_view::npos) {
      error_text = "topic: '*' must be a whole segment";
      return false;
    } else if (s == "~") {
      f.segments_.push_back({seg_kind::literal, std::string(own_tenant)});
    } else {
      f.segments_.push_back({seg_kind::literal, std::string(s)});
    }
    resolved += '/';
    resolved +=
        f.segments_.back().kind == seg_kind::literal ? f.segments_.back().text : std::string(s);
    return true;
  });
  if (!ok) return invalid(error_text.empty() ? "topic: must start with '/'" : error_text);
  // `~` grows into the tenant id: the resolved pattern must fit too (it is what is echoed,
  // persisted with the session and compiled again after a restart).
  if (resolved.size() > max_topic_bytes)
    return invalid("topic: longer than 1024 bytes once '~' is replaced by the tenant id");
  f.spec_.topic = std::move(resolved);

  if (spec.types) {
    if (spec.types->empty()) return invalid("types: empty list");
    if (spec.types->size() > limits.max_types_per_filter)
      return invalid("types: more than " + std::to_string(limits.max_types_per_filter) +
                     " entries");
    f.any_type_ = false;
    for (const auto& t : *spec.types) {
      if (t == "*") {
        f.any_type_ = true;
      } else if (!t.empty() && t.back() == '*') {
        const std::string prefix = t.substr(0, t.size() - 1);
        if (!valid_type(prefix)) return invalid("types: '" + t + "' is not a type or prefix");
        f.type_prefixes_.push_back(prefix);
      } else {
        if (!valid_type(t)) return invalid("types: '" + t + "' is not a valid type");
        f.exact_types_.insert(t);
      }
    }
  }
  if (spec.subjects) {
    if (spec.subjects->empty()) return invalid("subjects: empty list");
    if (spec.subjects->size() > limits.max_subjects_per_filter)
      return invalid("subjects: more than " + std::to_string(limits.max_subjects_per_filter) +
                     " entries");
    for (const auto& s : *spec.subjects) {
      if (!valid_subject_id(s)) return invalid("subjects: '" + s + "' is not a valid subject id");
      f.subjects_.insert(s);
    }
  }
  if (spec.where.size() > limits.max_where_keys)
    return invalid("where: more than " + std::to_string(limits.max_where_keys) + " keys");
  return f;
}

bool filter::matches_topic(std::string_view topic) const noexcept {
  std::size_t i = 0;
  bool rest_matched = false;
  const bool walked = for_each_segment(topic, [&](std::string_view s) {
    if (i >= segments_.size()) return false;
    const segment& p = segments_[i];
    switch (p.kind) {
      case seg_kind::rest:
        rest_matched = true;
        return true;  // stay on `**`: it eats every remaining segment
      case seg_kind::one:
        ++i;
        return true;
      case seg_kind::literal:
        if (s != p.text) return false;
        ++i;
        return true;
    }
    return false;
  });
  if (!walked) return false;
  return rest_matched ? i == segments_.size() - 1 : i == segments_.size();
}

filter::miss filter::check(const event& e, std::string* why) const {
  auto fail = [why](miss m, auto&&... text) {
    if (why != nullptr) *why = (std::string(text) + ...);
    return m;
  };
  if (!any_type_ && !exact_types_.contains(e.type)) {
    bool prefixed = false;
    for (const auto& p : type_prefixes_) {
      if (e.type.size() >= p.size() && e.type.compare(0, p.size(), p) == 0) {
        prefixed = true;
        break;
      }
    }
    if (!prefixed) return fail(miss::type, "type '", e.type, "' is not in types");
  }
  if (!subjects_.empty() && (e.subject.empty() || !subjects_.contains(e.subject)))
    return e.subject.empty() ? fail(miss::subject, "the event has no subject")
                             : fail(miss::subject, "subject '", e.subject, "' is not in subjects");
  if (!matches_topic(e.topic))
    return fail(miss::topic, "topic '", e.topic, "' does not match '", spec_.topic, "'");
  if (!spec_.where.empty()) {
    const boost::json::object* data = e.data_object();
    if (data == nullptr) return fail(miss::where, "where: data is not a JSON object");
    for (const auto& [key, want] : spec_.where) {
      const boost::json::value* got = data->if_contains(key);
      if (got == nullptr) return fail(miss::where, "where: data has no '", key, "'");
      if (const auto* s = std::get_if<std::string>(&want)) {
        if (!got->is_string() || got->get_string() != *s)
          return fail(miss::where, "where: data.", key, " is not \"", *s, "\"");
      } else {
        const double w = std::get<double>(want);
        double g;
        if (got->is_int64())
          g = static_cast<double>(got->get_int64());
        else if (got->is_uint64())
          g = static_cast<double>(got->get_uint64());
        else if (got->is_double())
          g = got->get_double();
        else
          return fail(miss::where, "where: data.", key, " is not a number");
        if (g != w) return fail(miss::where, "where: data.", key, " is not ", fmt::format("{}", w));
      }
    }
  }
  return miss::none;
}

bool any_matches(const std::vector<filter>& filters, const event& e) {
  for (const auto& f : filters)
    if (f.matches(e)) return true;
  return false;
}

}  // namespace herald
