#!/usr/bin/env bash
# ctest `ops_specs`: validates docs/openapi.yaml (OpenAPI 3.1) and docs/asyncapi.yaml (AsyncAPI
# 3.0) with the validators pinned in package-lock.json, installed by `npm ci` into a work
# directory (re-installed only when the lockfile changes; tests/compat/common/npm_work.sh).
# Node and npm are required.
# Run by hand: bash tests/ops/specs.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${OPS_NPM_WORK:-${TMPDIR:-/tmp}/herald-ops-npm}
source "$root/tests/compat/common/npm_work.sh"
npm_work "$here" "$work" validate_specs.js
exec node validate_specs.js "$root/docs"
