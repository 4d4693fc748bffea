#!/usr/bin/env bash
# ctest `ops_specs`: validates docs/openapi.yaml (OpenAPI 3.1) and docs/asyncapi.yaml (AsyncAPI
# 3.0) with the validators pinned in package-lock.json, installed by `npm ci` into a work
# directory (re-installed only when the lockfile changes). Node and npm are required.
# Run by hand: bash tests/ops/specs.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${OPS_NPM_WORK:-${TMPDIR:-/tmp}/herald-ops-npm}
command -v node >/dev/null || { echo "FAIL: node is not installed (required)"; exit 1; }
command -v npm >/dev/null || { echo "FAIL: npm is not installed (required)"; exit 1; }
mkdir -p "$work"
if [[ ! -d $work/node_modules ]] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  rm -rf "$work/node_modules"
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp "$here/validate_specs.js" "$work/"
cd "$work"
exec node validate_specs.js "$root/docs"
