// `herald bench`: the load generator's command line (docs/performance.md). Parses options,
// creates the bench tenant and apps through the admin API when given the admin key, runs one
// measurement (bench/load.h) and writes a JSON line plus a short human table.
// Thread ownership: called once, on the main thread.
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "bench/load.h"

namespace herald::bench {

// argv[0] is "bench". Returns the process exit status: 0, or 1 on bad options, on a failed
// setup, or (with --check) when the run saw loss, duplicates, reordering, connect errors,
// publish errors or no deliveries.
// Not the program's main (bugprone-exception-escape goes by the name): the run itself is inside
// a try; only CLI11 set-up errors (a programming error) or bad_alloc could escape.
int main(int argc, char** argv);  // NOLINT(bugprone-exception-escape)

// The JSON line of one run (every field of the result plus the options that shaped it).
boost::json::object to_json(const load_options& o, const load_result& r, const std::string& label);
// The human table of one run.
std::string to_table(const load_options& o, const load_result& r, const std::string& label);
// True when the run is clean: no lost or undelivered events, duplicates, reordering, seq
// errors, connect or publish errors, unexpected disconnects, and (when publishing) at least one
// delivery.
bool clean(const load_options& o, const load_result& r);

}  // namespace herald::bench
