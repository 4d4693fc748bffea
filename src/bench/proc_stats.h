// Readers of /proc for the server's and the bench's own resource use: RSS from
// /proc/<pid>/status, CPU time from /proc/<pid>/stat (utime + stime). Thread-safe (no state).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace herald::bench {

struct proc_sample {
  std::int64_t wall_ns = 0;     // steady clock at the sample
  double cpu_s = 0;             // user + system CPU seconds so far
  std::uint64_t rss_bytes = 0;  // VmRSS
  std::uint64_t hwm_bytes = 0;  // VmHWM (peak RSS)
};

// nullopt when the process is gone or /proc is unreadable. pid 0: this process.
std::optional<proc_sample> sample_process(int pid);
// The sum over several processes (a cluster's nodes and its Redis): CPU seconds, RSS and peak
// RSS added up, the wall time of the last read. nullopt when `pids` is empty or one is gone.
std::optional<proc_sample> sample_processes(const std::vector<int>& pids);
// CPU use between two samples in percent of one core.
double cpu_percent(const proc_sample& a, const proc_sample& b);
// CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpus();

}  // namespace herald::bench
