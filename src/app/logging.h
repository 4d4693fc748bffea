// The log output (issue #14): `core.log_level` (debug|info|warn|error) and `core.log_format`
// (text: "TS LEVEL msg k=v ...", json: one object per line with ts, level, msg and the event's
// fields) for every line the process writes to stderr, spdlog's and core/oplog.h's alike.
// Thread-safe: lines are written whole under one mutex.
#pragma once

#include "app/config.h"

namespace herald {

// Applies the logging keys of `c` (level, format, flood limit). Called at start-up and again on
// reload (SIGHUP); safe to call while other threads log.
void apply_log_config(const config& c);

}  // namespace herald
