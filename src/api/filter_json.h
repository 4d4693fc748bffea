// Filters as JSON (native.md §1): {topic, types?, subjects?, where?}, read from subscribes and
// written in acks and persisted sessions. Pure functions; thread-safe.
#pragma once

#include <string>

#include <boost/json/fwd.hpp>

#include "core/errc.h"
#include "core/filter.h"

namespace herald {

// A filter object; `at` prefixes error messages (invalid_filter naming the field).
result<filter_spec> parse_filter_json(const boost::json::value& v, const std::string& at);
// The filter as echoed in a subscribe ack.
boost::json::object filter_json(const filter_spec& f);

}  // namespace herald
