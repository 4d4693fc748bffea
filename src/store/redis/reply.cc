#include "store/redis/reply.h"

#include <fmt/format.h>

namespace herald::redis {

bool reply::is_function_missing() const noexcept {
  return is_error() && (str.find("Function not found") != std::string::npos ||
                        str.find("function not found") != std::string::npos);
}

std::string reply::to_string() const {
  constexpr std::size_t max_shown = 64;
  auto cut = [](const std::string& s) {
    return s.size() <= max_shown ? s : s.substr(0, max_shown) + "...";
  };
  switch (type) {
    case kind::nil:
      return "(nil)";
    case kind::string:
    case kind::status:
      return cut(str);
    case kind::error:
      return "(error) " + cut(str);
    case kind::integer:
      return fmt::format("(integer) {}", integer);
    case kind::array:
      break;
  }
  std::string out = "[";
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i) out += ", ";
    out += elements[i].to_string();
  }
  return out + "]";
}

command::command(std::initializer_list<std::string_view> args) {
  for (auto a : args) arg(a);
}

command& command::arg(std::string_view a) {
  fmt::format_to(std::back_inserter(body_), "${}\r\n", a.size());
  body_.append(a);
  body_ += "\r\n";
  ++argc_;
  return *this;
}

command& command::arg(std::int64_t v) { return arg(fmt::format("{}", v)); }

std::string command::wire() const {
  std::string out = fmt::format("*{}\r\n", argc_);
  out += body_;
  return out;
}

}  // namespace herald::redis
