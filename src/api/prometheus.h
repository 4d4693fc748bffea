// The Prometheus text exposition format (version 0.0.4) for /metrics, written from core's
// counters (core/metrics.h), which know nothing of it. Kept over prometheus-cpp (Debian
// prometheus-cpp-dev) by measurement: docs/production.md, "Metrics" (bench/metrics_cost/).
// Thread-safe: pure functions over snapshots.
#pragma once

#include <initializer_list>
#include <string>

#include "core/metrics.h"

namespace herald {

// Appends one series: HELP, TYPE ("counter", "gauge") and the value.
void write_metric(std::string& out, const char* name, const char* type, const char* help,
                  double value);

// Appends a histogram in seconds, Prometheus's base unit (core counts milliseconds):
// cumulative `_bucket{le=...}` series, `_sum` and `_count`. Name it `..._seconds`.
void write_histogram(std::string& out, const char* name, const char* help, const histogram& h);

// Appends a counter with one series per label value, `name{label="value"} n`.
void write_labelled(std::string& out, const char* name, const char* label, const char* help,
                    const labelled_counter& c);
// The same with several labels, named in the order the counter's values were added.
void write_labelled(std::string& out, const char* name, std::initializer_list<const char*> labels,
                    const char* help, const labelled_counter& c);

}  // namespace herald
