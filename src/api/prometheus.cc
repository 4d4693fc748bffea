#include "api/prometheus.h"

#include <fmt/format.h>

namespace herald {
namespace {

// Label values today are close codes and outcome names, but the format requires these escapes
// and a future label (a tenant id) must not break the exposition.
std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

}  // namespace

void write_metric(std::string& out, const char* name, const char* type, const char* help,
                  double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

void write_histogram(std::string& out, const char* name, const char* help, const histogram& h) {
  const auto s = h.snapshot();
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < histogram::bounds_ms.size(); ++i) {
    cum += s.buckets[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, histogram::bounds_ms[i] / 1000, cum);
  }
  cum += s.buckets[histogram::bounds_ms.size()];
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cum);
  out += fmt::format("{}_sum {}\n", name, s.sum_ms / 1000);
  out += fmt::format("{}_count {}\n", name, s.count);
}

void write_labelled(std::string& out, const char* name, const char* label, const char* help,
                    const labelled_counter& c) {
  write_labelled(out, name, {label}, help, c);
}

void write_labelled(std::string& out, const char* name, std::initializer_list<const char*> labels,
                    const char* help, const labelled_counter& c) {
  out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
  for (const auto& [k, v] : c.snapshot()) {
    out += name;
    out.push_back('{');
    std::size_t i = 0;
    for (const char* l : labels) {
      if (i != 0) out.push_back(',');
      out += fmt::format("{}=\"{}\"", l, escape_label(i < k.size() ? k[i] : std::string()));
      ++i;
    }
    out += fmt::format("}} {}\n", v);
  }
}

}  // namespace herald
