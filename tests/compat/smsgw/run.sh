#!/usr/bin/env bash
# ctest entry of the smsgw compatibility suite (smsgw.md §9): installs the pinned `ws` client
# from the committed lockfile (npm ci) into a work directory, then runs run.js there against
# HERALD_BIN (tests/compat/common/npm_work.sh). run.js runs the gateway's own reconnecting
# client (seed_client.js, the seed's snippet with only its URL and key literals replaced at run
# time).
# Run by hand: HERALD_BIN=build/release/herald bash tests/compat/smsgw/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${HERALD_BIN:?HERALD_BIN must name the herald binary}"
source "$here/../common/npm_work.sh"
npm_work "$here" "${SMSGW_COMPAT_WORK:-${TMPDIR:-/tmp}/herald-compat-smsgw}" run.js seed_client.js
exec node run.js
