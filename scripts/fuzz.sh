#!/usr/bin/env bash
# Runs every libFuzzer target from its committed seeds; fails on the first crash, leaving the
# reproducer in build/fuzz/crashes/.
#   scripts/fuzz.sh SECONDS  explore: random seed, SECONDS per target (default 30), corpus kept
#                            in build/fuzz/corpus/ between runs (`make fuzz`)
#   scripts/fuzz.sh --ci     regression (`make test`): fixed seed, fixed run count, fresh corpus,
#                            so that CI's result is the same on every machine and every run; a
#                            crash found by exploring is fixed and its input added to the seeds
#                            (HERALD_FUZZ_RUNS, default 1,000,000; the costlier targets get a
#                            fixed fraction of it, see ci_share below)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/fuzz/crashes
# Every fuzz/<t>_fuzz.cc (fuzz/CMakeLists.txt builds the same list).
mapfile -t targets < <(cd fuzz && ls -- *_fuzz.cc | sed 's/_fuzz\.cc$//')
# The CI run count of a target in thousandths of HERALD_FUZZ_RUNS, for the targets that cost
# more per input than a pure parser (CPU per input under ASan: the four parsers and the matcher
# 6-50 us; ringcentral_decode ~85 us, four HMACs; topic_trie ~150 us, a program of trie and
# filter operations; ws_frames ~180 us, an HTTP parser and a Beast websocket stream;
# redis_reply ~100 us, two hiredis readers per input, whole and split; the matcher ~98 us,
# measured in a clean-clone CI run: 1,000,000 runs took 98 s of its 206 s tier), so that
# `--ci` stays within ~3 minutes of CPU (half that on two cores, where targets run two by two).
# The pure parsers run 700,000 (a clean-clone CI run: filter_parse 20 s, native_decode 25 s,
# raw_json 32 s for 1,000,000; the matcher 46 s for 400,000): the tier stayed inside CI's 30
# minutes by 26 s, and a fixed-seed regression run is what it is for (`make fuzz` goes long).
declare -A ci_share=([ringcentral_decode]=200 [topic_trie]=150 [ws_frames]=50
                     [smsgw_decode]=100 [zoom_decode]=100 [tracker_decode]=100
                     [redis_reply]=100 [matcher]=300 [filter_parse]=700 [native_decode]=700
                     [raw_json]=700)
ci=false
mode_args=()
runs=${HERALD_FUZZ_RUNS:-1000000}
if [[ ${1:-} == --ci ]]; then
  ci=true
  corpus_root=$(mktemp -d)
  trap 'rm -rf "$corpus_root"' EXIT
else
  mode_args=(-max_total_time="${1:-30}")
  corpus_root=build/fuzz/corpus
fi
# One target per core at a time (CI's 2 cores: the targets run two by two); each one's output
# goes to build/fuzz/<t>.log and is printed when it is done.
run_target() {
  local t=$1 args=("${mode_args[@]}")
  if $ci; then
    args=(-seed=1 -runs=$((runs * ${ci_share[$t]:-1000} / 1000)))
  fi
  local corpus=$corpus_root/$t
  mkdir -p "$corpus"
  if ./build/fuzz/fuzz/${t}_fuzz "${args[@]}" -max_len=4096 -print_final_stats=0 \
    -artifact_prefix=build/fuzz/crashes/$t- "$corpus" fuzz/seeds/$t 2>build/fuzz/$t.log; then
    echo "fuzz: $t ${args[*]}: $(grep -E 'Done [0-9]+ runs' build/fuzz/$t.log | tail -1)"
  else
    tail -40 build/fuzz/$t.log
    echo "fuzz: $t ${args[*]} FAILED"
    return 1
  fi
}
jobs=${HERALD_FUZZ_JOBS:-$(nproc)}
failed=0
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done
if ((failed)); then
  echo "fuzz: a target FAILED (its reproducer is in build/fuzz/crashes/)"
  exit 1
fi
echo "fuzz: all targets passed"
