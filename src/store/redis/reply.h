// A RESP2 reply as a plain value, and a command as the RESP array Redis reads (binary-safe
// arguments). No Asio and no hiredis here: the store and its tests see only these values.
// Thread-safe: value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace herald::redis {

// One reply. A server error (`-ERR ...`) is a reply of kind `error`, not a failed call: the
// command reached Redis and Redis answered. Arrays nest (EVAL, XREAD, EXEC).
struct reply {
  enum class kind : std::uint8_t { nil, string, status, error, integer, array };
  kind type = kind::nil;
  std::string str;  // string (bulk), status (+OK) and error (-ERR ...) text
  std::int64_t integer = 0;
  std::vector<reply> elements;  // array

  bool is_nil() const noexcept { return type == kind::nil; }
  bool is_error() const noexcept { return type == kind::error; }
  bool is_string() const noexcept { return type == kind::string || type == kind::status; }
  bool is_array() const noexcept { return type == kind::array; }
  // Redis answered an FCALL that the function is not loaded (it restarted empty, or its
  // functions were flushed): the caller loads its library and calls again.
  bool is_function_missing() const noexcept;
  // A short rendering for logs and test failures: "OK", "(integer) 3", "(error) ERR x",
  // "[a, (nil), [1]]"; strings past 64 bytes are cut.
  std::string to_string() const;
};

// A command: its arguments encoded as a RESP array of bulk strings, so any byte (CR, LF, NUL)
// travels unchanged. Encoding happens as arguments are added, on the caller's thread.
class command {
 public:
  command() = default;
  command(std::initializer_list<std::string_view> args);
  command& arg(std::string_view a);
  command& arg(std::int64_t v);
  std::size_t argc() const noexcept { return argc_; }
  // The bytes on the wire: "*<argc>\r\n" then each "$<len>\r\n<bytes>\r\n".
  std::string wire() const;
  std::size_t wire_size_hint() const noexcept { return body_.size() + 16; }

 private:
  std::string body_;
  std::size_t argc_ = 0;
};

}  // namespace herald::redis
