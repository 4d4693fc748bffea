#!/usr/bin/env bash
# ctest entry of the tracker compatibility suite (tracker.md §9): installs atmosphere.js 2.3.6
# from the committed lockfile (npm ci) into a work directory, then runs run.js there against
# HERALD_BIN (tests/compat/common/npm_work.sh).
# `run.sh fleet SECONDS` runs the fleet run (fleet.js) instead, for SECONDS (default 60).
# Run by hand: HERALD_BIN=build/rel/herald bash tests/compat/tracker/run.sh [fleet 60]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${HERALD_BIN:?HERALD_BIN must name the herald binary}"
source "$here/../common/npm_work.sh"
npm_work "$here" "${TRACKER_COMPAT_WORK:-${TMPDIR:-/tmp}/herald-compat-tracker}" run.js fleet.js
if [[ ${1:-} == fleet ]]; then
  FLEET_SECONDS=${2:-60} exec node fleet.js
fi
exec node run.js
