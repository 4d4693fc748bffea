// Topics, topic patterns and subscription filters (native.md §1), and their matcher.
// A filter_spec is what a client sends; compile() checks it against the limits and resolves
// `~`; the resulting filter matches events with no allocation. Thread-safe: values only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/errc.h"
#include "core/event.h"

namespace herald {

constexpr std::size_t max_topic_bytes = 1024;

// "/a/b" with no empty segment, no `*` or `**` segment and no control character (NUL
// included), at most max_topic_bytes.
bool valid_topic(std::string_view topic) noexcept;

// A `where` value: a string, or a number compared by value (3 == 3.0).
using where_value = std::variant<std::string, double>;

struct filter_spec {
  std::string topic;  // pattern
  std::optional<std::vector<std::string>> types;
  std::optional<std::vector<std::string>> subjects;
  std::vector<std::pair<std::string, where_value>> where;
};

struct filter_limits {
  std::size_t max_filters = 100;
  std::size_t max_subjects_per_filter = 1000;
  std::size_t max_where_keys = 16;
  std::size_t max_types_per_filter = 100;
};

class filter {
 public:
  // Checks and compiles `spec`; `~` becomes `own_tenant`. Errors are invalid_filter and name
  // the problem ("topic: '**' may only be the last segment").
  static result<filter> compile(const filter_spec& spec, std::string_view own_tenant,
                                const filter_limits& limits);

  // Why this filter does not match `e`: the first of its constraints `e` fails (none: it
  // matches). `why`, when given, gets that in words ("type 'a.b' is not in types"). The one
  // matcher: matches() is this == none, and the admin API's `why` reports it.
  enum class miss : std::uint8_t { none, type, subject, topic, where };
  miss check(const event& e, std::string* why = nullptr) const;
  bool matches(const event& e) const { return check(e) == miss::none; }
  bool matches_topic(std::string_view topic) const noexcept;

  // The spec with `~` resolved, as echoed back to the client.
  const filter_spec& spec() const noexcept { return spec_; }
  bool lists_subjects() const noexcept { return spec_.subjects.has_value(); }
  // Constrains nothing but the topic: matches(e) == matches_topic(e.topic).
  bool topic_only() const noexcept { return any_type_ && subjects_.empty() && spec_.where.empty(); }

 private:
  enum class seg_kind : std::uint8_t { literal, one, rest };
  struct segment {
    seg_kind kind;
    std::string text;
  };
  filter_spec spec_;
  std::vector<segment> segments_;
  std::unordered_set<std::string> exact_types_;
  std::vector<std::string> type_prefixes_;
  bool any_type_ = true;
  std::unordered_set<std::string> subjects_;
};

// True when any filter of `filters` matches `e` (an empty list matches nothing).
bool any_matches(const std::vector<filter>& filters, const event& e);

}  // namespace herald
