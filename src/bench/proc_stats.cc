#include "bench/proc_stats.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

namespace herald::bench {

std::optional<proc_sample> sample_process(int pid) {
  const std::string dir = pid == 0 ? "/proc/self" : "/proc/" + std::to_string(pid);
  proc_sample s;
  s.wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now().time_since_epoch())
                  .count();
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(hz > 0 ? hz : 100);
  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    auto kb = [&](const char* key) -> std::optional<std::uint64_t> {
      const std::string k = key;
      if (line.compare(0, k.size(), k) != 0) return std::nullopt;
      return std::stoull(line.substr(k.size())) * 1024;
    };
    if (auto v = kb("VmRSS:")) s.rss_bytes = *v;
    if (auto v = kb("VmHWM:")) s.hwm_bytes = *v;
  }
  return s;
}

std::optional<proc_sample> sample_processes(const std::vector<int>& pids) {
  if (pids.empty()) return std::nullopt;
  proc_sample sum;
  for (int pid : pids) {
    const auto s = sample_process(pid);
    if (!s) return std::nullopt;
    sum.wall_ns = s->wall_ns;
    sum.cpu_s += s->cpu_s;
    sum.rss_bytes += s->rss_bytes;
    sum.hwm_bytes += s->hwm_bytes;
  }
  return sum;
}

double cpu_percent(const proc_sample& a, const proc_sample& b) {
  const double wall = static_cast<double>(b.wall_ns - a.wall_ns) / 1e9;
  return wall > 0 ? 100.0 * (b.cpu_s - a.cpu_s) / wall : 0.0;
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

}  // namespace herald::bench
