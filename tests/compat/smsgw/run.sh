#!/usr/bin/env bash
# ctest entry of the smsgw compatibility suite (smsgw.md §9): installs the pinned `ws` client
# from the committed lockfile (npm ci) into a work directory, then runs run.js there against
# HERALD_BIN. run.js runs the gateway's own reconnecting client (seed_client.js, the seed's
# snippet with only its URL and key literals replaced at run time). Node and npm are part of the
# build environment: missing is a failure.
# Run by hand: HERALD_BIN=build/release/herald bash tests/compat/smsgw/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${SMSGW_COMPAT_WORK:-${TMPDIR:-/tmp}/herald-compat-smsgw}
command -v node >/dev/null || { echo "FAIL: node is not installed (required)"; exit 1; }
command -v npm >/dev/null || { echo "FAIL: npm is not installed (required)"; exit 1; }
: "${HERALD_BIN:?HERALD_BIN must name the herald binary}"
mkdir -p "$work"
if [[ ! -d $work/node_modules ]] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  rm -rf "$work/node_modules"
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp "$here/run.js" "$here/seed_client.js" "$work/"
cd "$work"
exec node run.js
