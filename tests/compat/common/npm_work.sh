# Sourced (bash) by the Node-based suites: tests/compat/{ringcentral,smsgw,tracker}/run.sh and
# tests/ops/specs.sh. `npm_work SRC WORK FILE...` checks that node and npm are installed (they
# are part of the build environment: missing is a failure), installs SRC's pinned packages from
# its committed lockfile with `npm ci` into WORK (again only when the lockfile changed), copies
# FILE... (paths relative to SRC) and tests/compat/common/harness.js there, and cds into WORK:
# the suite's scripts then run from WORK, where their node_modules are.
npm_work() {
  local src=$1 work=$2 f
  shift 2
  command -v node >/dev/null || { echo "FAIL: node is not installed (required)"; exit 1; }
  command -v npm >/dev/null || { echo "FAIL: npm is not installed (required)"; exit 1; }
  mkdir -p "$work"
  if [[ ! -d $work/node_modules ]] || ! cmp -s "$src/package-lock.json" "$work/package-lock.json"; then
    rm -rf "$work/node_modules"
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  for f in "$@"; do cp "$src/$f" "$work/"; done
  cp "$(dirname "${BASH_SOURCE[0]}")/harness.js" "$work/"
  cd "$work"
}
