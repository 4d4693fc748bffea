#include "api/filter_json.h"

#include <boost/json/object.hpp>

namespace herald {
namespace json = boost::json;

result<filter_spec> parse_filter_json(const json::value& v, const std::string& at) {
  auto bad = [&](const std::string& m) { return error{errc::invalid_filter, at + m}; };
  if (!v.is_object()) return bad(": must be an object");
  const auto& o = v.as_object();
  filter_spec f;
  const auto* topic = o.if_contains("topic");
  if (topic == nullptr || !topic->is_string()) return bad(".topic: required string");
  f.topic = std::string(topic->get_string());
  auto list = [&](const char* name, std::optional<std::vector<std::string>>& dst) -> status {
    const auto* l = o.if_contains(name);
    if (l == nullptr || l->is_null()) return {};
    if (!l->is_array()) return bad(std::string(".") + name + ": must be an array of strings");
    std::vector<std::string> out;
    for (const auto& e : l->get_array()) {
      if (!e.is_string()) return bad(std::string(".") + name + ": must be an array of strings");
      out.emplace_back(e.get_string());
    }
    dst = std::move(out);
    return {};
  };
  if (status s = list("types", f.types); !s) return s.err();
  if (status s = list("subjects", f.subjects); !s) return s.err();
  if (const auto* w = o.if_contains("where"); w != nullptr && !w->is_null()) {
    if (!w->is_object()) return bad(".where: must be an object");
    for (const auto& kv : w->get_object()) {
      const json::value& val = kv.value();
      if (val.is_string())
        f.where.emplace_back(std::string(kv.key()), std::string(val.get_string()));
      else if (val.is_number())
        f.where.emplace_back(std::string(kv.key()), val.to_number<double>());
      else
        return bad(".where." + std::string(kv.key()) + ": a string or a number");
    }
  }
  return f;
}

json::object filter_json(const filter_spec& f) {
  json::object o{{"topic", f.topic}};
  auto arr = [](const std::vector<std::string>& l) {
    json::array a;
    for (const auto& s : l) a.emplace_back(s);
    return a;
  };
  if (f.types) o["types"] = arr(*f.types);
  if (f.subjects) o["subjects"] = arr(*f.subjects);
  if (!f.where.empty()) {
    json::object w;
    for (const auto& [k, v] : f.where) {
      if (const auto* s = std::get_if<std::string>(&v))
        w[k] = *s;
      else
        w[k] = std::get<double>(v);
    }
    o["where"] = std::move(w);
  }
  return o;
}

}  // namespace herald
