#!/usr/bin/env bash
# `make lint`: the house style, checked. Two passes, both over tracked files only:
#   format  clang-format 14 (.clang-format) on every `git ls-files '*.cc' '*.h'`; fails with the
#           list of files that differ. `--fix` rewrites them in place (`make format`).
#   tidy    clang-tidy 14 (.clang-tidy) on the tracked .cc files, 2 at a time, with the compile
#           database of a configure-only build dir (build/lint, release flags; build/lint-fuzz,
#           clang, for fuzz/). Any warning from a check fails, in a .cc or in a header of src/
#           or fuzz/ (each finding is printed once, however many TUs include the header).
#
# Scope of tidy, and why not every TU by default: clang-tidy 14 parses a TU the way the compiler
# does and then runs its matchers over the whole AST, system headers included, so its cost is
# the TU's include weight. Measured (CPU seconds, user+sys, clang-tidy 14.0.6, 2 jobs): all 67
# TUs of the tree when this script came in took 599 CPU-s, ~300 s on CI's 2 cores, the whole 5-minute lint
# budget, and the 9 of them that reach Boost.Beast/Asio (transport/, client/, bench/'s load
# engine and command) about 210 CPU-s of that (by difference), 25-45 CPU-s each against 2-10 for most others. The
# default scope, every TU that does not reach Beast/Asio (70 TUs a few commits later), took 465
# CPU-s, ~4 minutes on 2 cores. So `make lint` runs tidy on those (core, auth, store, api, the
# dialects, app, fuzz targets, tests: the model, policy and every parser, where a bugprone or
# performance finding matters most), and
# `--all` adds the Beast TUs: run it when touching transport/, client/ or bench/ (the lead runs
# it before a release). A TU is "Beast" when the closure of its quoted includes, or its target's
# precompiled header, reaches <boost/asio...> or <boost/beast...>; the closure is computed from
# the sources on every run, so a TU that starts including Beast moves to --all by itself.
# On a machine shared with other jobs wall time is far worse (the full pass took 30 minutes of
# wall time for its 10 CPU-minutes here; the default one 14 for its 8); the script prints both.
# When the default scope itself passes ~600 CPU-s, split it (e.g. tests/ to --all). It did: the
# tree grew to 108 such TUs at ~6.1 CPU-s each (~660 CPU-s; a GoogleTest program costs about the
# same as a product TU: 6.2 on average over 47 TUs of one run here, hub_test.cc 9.6). So the 26
# GoogleTest programs (*_test.cc, ~160 CPU-s) are left to --all too; the default scope keeps the
# product code, where a finding matters; the lead's --all run before a release still covers the
# tests. Measured after the split: 82 TUs, 490 CPU-s (~245 s on 2 idle cores), 18 findings.
# The format pass costs ~1 CPU-s.
#
# Usage: scripts/lint.sh [--fix] [--all] [--format-only|--tidy-only] [FILE.cc ...]
#   FILE.cc ...   tidy only these (format still checks every tracked file)
# Env: HERALD_LINT_BUILD (default build/lint), HERALD_LINT_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fix=0 all=0 do_format=1 do_tidy=1 files=()
for a in "$@"; do
  case $a in
    --fix) fix=1 ;;
    --all) all=1 ;;
    --format-only) do_tidy=0 ;;
    --tidy-only) do_format=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "lint: unknown option $a" >&2; exit 2 ;;
    *) files+=("$a") ;;
  esac
done
build=${HERALD_LINT_BUILD:-build/lint}
jobs=${HERALD_LINT_JOBS:-2}
for tool in clang-format clang-tidy; do
  command -v "$tool" >/dev/null || { echo "lint: $tool missing (bash scripts/deps.sh)" >&2; exit 2; }
done
# Debian 12's clang-format/clang-tidy are 14; another major version formats differently.
clang-format --version | grep -q 'version 14\.' ||
  echo "lint: warning: $(clang-format --version) is not clang-format 14" >&2
status=0

if ((do_format)); then
  t0=$SECONDS
  mapfile -t sources < <(git ls-files '*.cc' '*.h')
  present=()
  for f in "${sources[@]}"; do [[ -f $f ]] && present+=("$f"); done  # skip deleted, unstaged
  # One process for the lot: --dry-run names each file whose formatting would change.
  mapfile -t differ < <(clang-format --style=file --dry-run --ferror-limit=1 "${present[@]}" 2>&1 |
    grep -oE '^[^ :]+:[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u)
  if ((${#differ[@]})) && ((fix)); then
    clang-format --style=file -i "${differ[@]}"
    echo "lint: format: rewrote ${#differ[@]} files"
  elif ((${#differ[@]})); then
    echo "lint: format: ${#differ[@]} of ${#sources[@]} files differ from .clang-format" \
      "(make format rewrites them; clang-format -i FILE for one):"
    printf '  %s\n' "${differ[@]}"
    status=1
  else
    echo "lint: format: ${#sources[@]} files ok"
  fi
  echo "lint: format took $((SECONDS - t0))s"
fi

if ((do_tidy)); then
  t0=$SECONDS
  # Configure only (a few seconds, every run: a new source file must be in the database): nothing
  # is built there, so no GCC precompiled header (.gch) sits beside cmake_pch.hxx for clang to
  # trip on. build/lint-fuzz (clang, fuzz mode) holds the fuzz targets' commands.
  mkdir -p "$(dirname "$build")"
  cmake -S . -B "$build" -G Ninja -DHERALD_MODE=release >"$build.configure.log" 2>&1 ||
    { cat "$build.configure.log"; exit 2; }
  if command -v clang++ >/dev/null; then
    cmake -S . -B "$build-fuzz" -G Ninja -DHERALD_MODE=fuzz -DCMAKE_CXX_COMPILER=clang++ \
      >"$build-fuzz.configure.log" 2>&1 || { cat "$build-fuzz.configure.log"; exit 2; }
  fi
  # TU -> database and whether it reaches Beast/Asio (quoted-include closure, see header).
  plan=$(python3 - "$root" "$build" "$all" "${files[@]}" <<'EOF'
import json, os, re, subprocess, sys
root, build, want_all, only = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
inc = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
beast = re.compile(r'^boost/(asio|beast)\b')
memo = {}
def reaches_beast(path, seen):
    if path in memo: return memo[path]
    if path in seen or not os.path.isfile(path): return False
    seen.add(path)
    text = open(path, errors="replace").read()
    hit = False
    for kind, name in inc.findall(text):
        if kind == "<":
            hit = bool(beast.match(name))
        else:
            for base in (os.path.dirname(path), os.path.join(root, "src")):
                cand = name if os.path.isabs(name) else os.path.normpath(os.path.join(base, name))
                if os.path.isfile(cand):
                    hit = reaches_beast(cand, seen)
                    break
        if hit: break
    memo[path] = hit
    return hit
dbs = {}
for b in (build, build + "-fuzz"):
    p = os.path.join(b, "compile_commands.json")
    if os.path.isfile(p):
        for e in json.load(open(p)):
            dbs.setdefault(os.path.normpath(e["file"]), (b, e["command"]))
tracked = subprocess.check_output(["git", "ls-files", "*.cc"], text=True).split()
chosen = [os.path.abspath(f) for f in (only or tracked)]
for f in chosen:
    rel = os.path.relpath(f, root)
    if f not in dbs:
        print(f"skip {rel} (in no compile database)"); continue
    b, cmd = dbs[f]
    heavy = reaches_beast(f, set())
    m = re.search(r"-include (\S+cmake_pch\.hxx)", cmd)
    if m and not heavy: heavy = reaches_beast(m.group(1), set())
    if heavy and not (want_all or only):
        print(f"beast {rel}")
    elif rel.endswith("_test.cc") and not (want_all or only):
        print(f"gtest {rel}")
    else:
        print(f"tidy {b} {rel}")
EOF
  )
  mapfile -t todo < <(grep '^tidy ' <<<"$plan" | cut -d' ' -f2-)
  skipped=$(grep -c '^beast ' <<<"$plan" || true)
  gtests=$(grep -c '^gtest ' <<<"$plan" || true)
  grep '^skip ' <<<"$plan" | sed 's/^skip /lint: tidy: skipped /' >&2 || true
  echo "lint: tidy: ${#todo[@]} TUs, $jobs at a time$( ((skipped)) && echo "; $skipped TUs that include Beast/Asio left to --all")$( ((gtests)) && echo "; $gtests GoogleTest programs left to --all")"
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  # One clang-tidy per TU. -Wno-error: the database carries GCC's -Werror, and clang's own
  # compiler warnings are not this tier's business (GCC's build already gates on its warnings).
  # Each line of $todo is "DB_DIR FILE"; xargs appends its two words after the fixed arguments.
  printf '%s\n' "${todo[@]}" | xargs -P "$jobs" -L 1 bash -c '
    out=$1 root=$2 db=$3 f=$4
    log=$out/$(tr / _ <<<"$f").log
    # CPU seconds (user+sys) per TU: what the 2-core budget is measured in (wall time on a
    # shared machine says more about the neighbours than about this TU).
    TIMEFORMAT="%U %S"
    { time clang-tidy -p "$db" --quiet --header-filter="^$root/(src|fuzz)/" \
        --extra-arg=-Wno-error "$f" >"$log" 2>&1 ||
        echo "clang-tidy exited $? on $f" >>"$log"; } 2>"$log.time"
    read -r u sy <"$log.time"
    echo "$(awk -v u="$u" -v s="$sy" "BEGIN { printf \"%.1f\", u + s }") $f" >>"$out/times"
  ' _ "$out" "$root"
  # A finding is "path:line:col: warning|error: ... [check]"; a header's finding comes once per
  # TU that includes it, so findings are de-duplicated before they are counted.
  # clang-tidy 14 also prints some header findings without a location in the TUs that reach
  # them through a template instantiation: such a line is dropped when the same message has a
  # located line.
  cat "$out"/*.log 2>/dev/null | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):|^(warning|error):|^clang-tidy exited' |
    sed "s|^$root/||" | sort -u |
    awk '/^(warning|error):/ { bare[$0] = 1; next }
         { print; if (match($0, /: (warning|error): .*/)) seen[substr($0, RSTART + 2)] = 1 }
         END { for (b in bare) if (!(b in seen)) print b }' >"$out/findings" || true
  n=$(wc -l <"$out/findings")
  if ((n)); then
    echo "lint: tidy: $n findings:"
    cat "$out/findings"
    echo "lint: tidy: findings by folder:"
    awk -F: '/^[^ ]+:[0-9]+:/ { n = split($1, p, "/"); d = p[1]; for (i = 2; i < n; i++) d = d "/" p[i]; print d; next }
             { print "(no location)" }' "$out/findings" | sort | uniq -c | sort -rn | sed 's/^ */  /'
    status=1
  else
    echo "lint: tidy: no findings"
  fi
  cpu=$(awk '{ t += $1 } END { printf "%.0f", t }' "$out/times")
  echo "lint: tidy took $((SECONDS - t0))s wall, ${cpu} CPU-s (~$((cpu / jobs))s on $jobs idle cores);" \
    "slowest TUs (CPU-s): $(sort -rn "$out/times" | head -3 | paste -sd, | sed 's/,/, /g')"
fi
exit $status
