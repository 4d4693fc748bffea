#!/usr/bin/env bash
# ctest entry of the RingCentral compatibility suite (ringcentral.md §9): installs the pinned,
# unmodified client from the committed lockfile (npm ci) into a work directory, then runs run.js
# there against HERALD_BIN (tests/compat/common/npm_work.sh).
# Run by hand: HERALD_BIN=build/release/herald bash tests/compat/ringcentral/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${HERALD_BIN:?HERALD_BIN must name the herald binary}"
source "$here/../common/npm_work.sh"
npm_work "$here" "${RC_COMPAT_WORK:-${TMPDIR:-/tmp}/herald-compat-ringcentral}" run.js
exec node run.js
