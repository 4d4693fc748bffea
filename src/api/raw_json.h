// Byte spans inside JSON text that has already been validated (by Boost.JSON): the members
// of an object and the elements of an array, as the exact bytes received. Publish uses it to
// keep `data` byte-exact. Thread-safe: pure functions.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace herald {

// Elements of a top-level JSON array, each as its exact bytes (surrounding whitespace trimmed).
std::vector<std::string_view> raw_array_elements(std::string_view array_text);

// The exact bytes of member `key` of a JSON object (the last one, if repeated); nullopt when
// absent. Keys are compared decoded, as Boost.JSON reads them (`"d\\u0061ta"` is `data`).
std::optional<std::string_view> raw_member(std::string_view object_text, std::string_view key);

}  // namespace herald
