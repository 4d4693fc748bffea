#!/usr/bin/env bash
# Runs every libFuzzer target from its committed seeds; fails on the first crash, leaving the
# reproducer in build/fuzz/crashes/.
#   scripts/fuzz.sh SECONDS  explore: random seed, SECONDS per target (default 30), corpus kept
#                            in build/fuzz/corpus/ between runs (`make fuzz`)
#   scripts/fuzz.sh --ci     regression (`make test`): fixed seed, fixed run count, fresh corpus,
#                            so that CI's result is the same on every machine and every run; a
#                            crash found by exploring is fixed and its input added to the seeds
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/fuzz/crashes
mode_args=()
if [[ ${1:-} == --ci ]]; then
  mode_args=(-seed=1 -runs="${HERALD_FUZZ_RUNS:-1000000}")
  corpus_root=$(mktemp -d)
  trap 'rm -rf "$corpus_root"' EXIT
else
  mode_args=(-max_total_time="${1:-30}")
  corpus_root=build/fuzz/corpus
fi
for t in native_decode filter_parse matcher raw_json; do
  corpus=$corpus_root/$t
  mkdir -p "$corpus"
  echo "fuzz: $t ${mode_args[*]}"
  ./build/fuzz/fuzz/${t}_fuzz "${mode_args[@]}" -max_len=4096 -print_final_stats=0 \
    -artifact_prefix=build/fuzz/crashes/$t- "$corpus" fuzz/seeds/$t 2>build/fuzz/$t.log || {
    tail -40 build/fuzz/$t.log
    echo "fuzz: $t FAILED"
    exit 1
  }
  grep -E 'Done [0-9]+ runs' build/fuzz/$t.log | tail -1 || true
done
echo "fuzz: all targets passed"
