#!/usr/bin/env bash
# Runs every libFuzzer target for $1 seconds (default 30) from its committed seeds. Fails on
# the first crash; the reproducer is left in build/fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
mkdir -p build/fuzz/crashes
for t in native_decode filter_parse matcher raw_json; do
  corpus=build/fuzz/corpus/$t
  mkdir -p "$corpus"
  echo "fuzz: $t for ${secs}s"
  ./build/fuzz/fuzz/${t}_fuzz -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
    -artifact_prefix=build/fuzz/crashes/$t- "$corpus" fuzz/seeds/$t 2>build/fuzz/$t.log || {
    tail -40 build/fuzz/$t.log
    echo "fuzz: $t FAILED"
    exit 1
  }
  grep -E 'Done [0-9]+ runs' build/fuzz/$t.log | tail -1 || true
done
echo "fuzz: all targets passed"
