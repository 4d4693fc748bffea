#!/usr/bin/env bash
# ctest entry of the tracker compatibility suite (tracker.md §9): installs atmosphere.js 2.3.6
# from the committed lockfile (npm ci) into a work directory, then runs run.js there against
# HERALD_BIN. Node and npm are part of the build environment: missing is a failure.
# `run.sh fleet SECONDS` runs the fleet run (fleet.js) instead, for SECONDS (default 60).
# Run by hand: HERALD_BIN=build/rel/herald bash tests/compat/tracker/run.sh [fleet 60]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${TRACKER_COMPAT_WORK:-${TMPDIR:-/tmp}/herald-compat-tracker}
command -v node >/dev/null || { echo "FAIL: node is not installed (required)"; exit 1; }
command -v npm >/dev/null || { echo "FAIL: npm is not installed (required)"; exit 1; }
: "${HERALD_BIN:?HERALD_BIN must name the herald binary}"
mkdir -p "$work"
if [[ ! -d $work/node_modules ]] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  rm -rf "$work/node_modules"
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp "$here/run.js" "$here/fleet.js" "$work/"
cd "$work"
if [[ ${1:-} == fleet ]]; then
  FLEET_SECONDS=${2:-60} exec node fleet.js
fi
exec node run.js
