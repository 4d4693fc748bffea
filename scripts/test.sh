#!/usr/bin/env bash
# `make test`: first the lint tier (clang-format on every tracked C++ file), then builds the release and sanitize
# (ASan+UBSan) modes and runs every test in both but the load runs and the compatibility suites
# (labels load and compat: release only;
# integration tests start the real binary on 127.0.0.1:0), then a fixed-seed fuzz run of every
# target. Tiers can be chosen:
# scripts/test.sh release, scripts/test.sh lint. The tidy tier (clang-tidy on the product TUs
# that do not include Beast/Asio, as `make lint`) is not a default one: its findings do not fail
# yet (a backlog, CHANGELOG.md), and it cost ~250 s of CI's 30 minutes for output that gates
# nothing: scripts/test.sh tidy (HERALD_TIDY_STRICT=1 makes findings fatal).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
modes=("${@:-lint release sanitize fuzz}")
read -r -a modes <<<"${modes[*]}"
jobs=$(nproc)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
start=$SECONDS
for mode in "${modes[@]}"; do
  echo "=== $mode (at ${SECONDS}s)"
  if [[ $mode == lint ]]; then
    bash scripts/lint.sh --format-only  # formatting is enforced
    continue
  fi
  if [[ $mode == tidy ]]; then
    # clang-tidy prints every finding but does not fail the run yet: the tree still carries a
    # backlog (CHANGELOG.md); HERALD_TIDY_STRICT=1 makes them fatal.
    if ! bash scripts/lint.sh --tidy-only; then
      [[ ${HERALD_TIDY_STRICT:-0} == 1 ]] && exit 1
      echo "lint: clang-tidy findings above (not yet fatal; HERALD_TIDY_STRICT=1 to enforce)"
    fi
    continue
  fi
  if [[ $mode == fuzz ]]; then
    [[ -f build/fuzz/build.ninja ]] || cmake -S . -B build/fuzz -G Ninja -DHERALD_MODE=fuzz -DCMAKE_CXX_COMPILER=clang++ >/dev/null
    ninja -C build/fuzz -j "$jobs"
    bash scripts/fuzz.sh --ci
    continue
  fi
  [[ -f build/$mode/build.ninja ]] || cmake -S . -B "build/$mode" -G Ninja -DHERALD_MODE="$mode" >/dev/null
  ninja -C "build/$mode" -j "$jobs"
  # The sanitize tier runs every functional test but not the load runs (label load: the tracker
  # fleet): under ASan they measure the sanitizer, and they add no code path the functional
  # suites miss. The release tier runs them.
  # Nor the compatibility suites (label compat: third-party clients of each dialect, 105 s of
  # test slots under ASan in a clean-clone CI run, which went past 30 minutes with them): they
  # run in release, and under ASan the same server paths run in the dialects' socket and
  # integration tests and their decoders in the fuzz tier.
  exclude=()
  [[ $mode == sanitize ]] && exclude=(-LE "load|compat")
  # Release: twice as many tests as cores. Most integration tests spend their time waiting on
  # timers and sockets (measured: 266 s at -j2, 123-140 s at -j4, all passing); the CPU-bound
  # ones (chaos runs) take two slots each (PROCESSORS in their CMakeLists). Sanitize: one per
  # core. Under ASan a test is CPU-bound where release waits, and at -j4 a rate-limit test
  # once saw its bucket refill between slowed requests.
  parallel=$((jobs * 2))
  [[ $mode == sanitize ]] && parallel=$jobs
  ctest --test-dir "build/$mode" --output-on-failure -j "$parallel" --timeout 600 "${exclude[@]}"
done
echo "=== all modes passed in $((SECONDS - start))s"
