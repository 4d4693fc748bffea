#!/usr/bin/env bash
# make bench: Herald against nats-server on the same shapes, driven by the same code
# (`herald bench`, docs/performance.md). Both servers run on 127.0.0.1 pinned to CPU 0, the load
# to CPU 1; each shape runs three times, alternating servers; medians and Herald/NATS ratios
# are printed and written with JSON lines and PNG plots to docs/bench/.
#
#   bench/run.sh            full run (idle shape: 60 s), about 9 minutes
#   bench/run.sh --quick    short durations (idle 5 s), about 3 minutes
#
# Environment: JOBS (build parallelism, default 2), HERALD_BIN (use this binary, no build),
# BENCH_REPS (default 3). Bounded: every command has a timeout and the whole run stops adding
# runs past 10 minutes. Traffic only to 127.0.0.1. Kills only the PIDs it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
quick=0
[[ ${1:-} == --quick ]] && quick=1
reps=${BENCH_REPS:-3}
out=docs/bench
started=$SECONDS
budget=600

say() { echo "bench: $*" >&2; }

# --- dependencies (Debian packages), release build ----------------------------------------
need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  sudo_cmd=()
  ((EUID == 0)) || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
fi
py=/usr/bin/python3
[[ -x $py ]] || py=python3

herald=${HERALD_BIN:-}
if [[ -z $herald ]]; then
  [[ -f build/release/build.ninja ]] || cmake -S . -B build/release -G Ninja -DHERALD_MODE=release >&2
  ninja -C build/release -j "${JOBS:-2}" herald >&2
  herald=$root/build/release/herald
fi
[[ -x $herald ]] || { say "no herald binary at $herald"; exit 1; }

# --- limits, machine ------------------------------------------------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
idle_conns=10000
if ((nofile < idle_conns + 200)); then
  idle_conns=$((nofile - 200))
  say "open-files limit $nofile: the idle shape uses $idle_conns connections"
fi
ncpu=$(nproc --all)
if ((ncpu < 2)); then say "needs 2 CPUs (server on 0, load on 1)"; exit 1; fi
server_cpu=0
load_cpu=1

tmp=$(mktemp -d /tmp/herald-bench.XXXXXX)
# A private copy: a rebuild of build/release during the run must not change the servers.
cp "$herald" "$tmp/herald"
herald=$tmp/herald
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$out"
results=$out/results.jsonl
: >"$results"

machine=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
herald_ver="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
[[ -n ${HERALD_BIN:-} ]] && herald_ver="$herald_ver, binary $HERALD_BIN"
nats_ver=$(nats-server --version 2>&1 | head -1)
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
$py - "$results" <<EOF
import json, sys
meta = {"meta": True, "date": "$date_utc", "machine": "$machine", "cpus": $ncpu, "memory": "$mem",
        "kernel": "$(uname -sr)", "herald": "$herald_ver", "nats": "$nats_ver",
        "quick": bool($quick), "reps": $reps, "server_cpu": $server_cpu, "load_cpu": $load_cpu,
        "open_files": $nofile}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF

# --- servers ---------------------------------------------------------------------------------
admin_key="bench-admin-$RANDOM$RANDOM$RANDOM"
server_pid=
server_url=

start_herald() {
  local dir=$tmp/herald-$1
  mkdir -p "$dir"
  HERALD_ADMIN_KEY=$admin_key taskset -c $server_cpu "$herald" serve --listen 127.0.0.1:0 \
    --store memory --data "$dir" >"$dir/out" 2>"$dir/err" &
  server_pid=$!
  pids+=("$server_pid")
  server_url=
  for _ in $(seq 100); do
    server_url=$(grep -o 'http://[0-9.]*:[0-9]*' "$dir/out" | head -1 || true)
    [[ -n $server_url ]] && return 0
    sleep 0.1
  done
  say "herald did not start: $(tail -3 "$dir/err")"
  return 1
}

free_port() {
  $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_nats() {
  local dir=$tmp/nats-$1 port ws
  mkdir -p "$dir"
  port=$(free_port)
  ws=$(free_port)
  cat >"$dir/nats.conf" <<EOF
listen: 127.0.0.1:$port
max_connections: 100000
websocket {
  host: 127.0.0.1
  port: $ws
  no_tls: true
  compression: false
}
EOF
  taskset -c $server_cpu nats-server -c "$dir/nats.conf" >"$dir/out" 2>"$dir/err" &
  server_pid=$!
  pids+=("$server_pid")
  server_url="ws://127.0.0.1:$ws/"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ws") 2>/dev/null && return 0
    sleep 0.1
  done
  say "nats-server did not start: $(tail -3 "$dir/err")"
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# --- shapes ----------------------------------------------------------------------------------
if ((quick)); then d_max=2; d_lat=4; d_idle=5; else d_max=4; d_lat=6; d_idle=60; fi
common=(--threads 1 --payload 64 --batch 100 --drain 10 --quiet --json "$results")
# shape_secs: the kill timeout of one run; shape_est: what it usually takes (for the budget).
declare -A shape_args shape_secs shape_est
# Max-rate shapes use 3 publishers: a Herald publisher waits for each durable 201 before its
# next batch, so one alone leaves the server idle between batches; 3 saturate both servers.
shape_args[fanout]="--subscribers 1000 --topics 1 --publishers 3 --rate 0 --duration $d_max"
shape_secs[fanout]=$((d_max + 15))
shape_est[fanout]=$((d_max + 4))
shape_args[topics]="--subscribers 1000 --topics 1000 --publishers 3 --rate 0 --duration $d_max"
shape_secs[topics]=$((d_max + 15))
shape_est[topics]=$((d_max + 4))
shape_args[latency]="--subscribers 1000 --topics 1 --publishers 1 --rate 200 --duration $d_lat"
shape_secs[latency]=$((d_lat + 15))
shape_est[latency]=$((d_lat + 4))
shape_args[idle]="--subscribers $idle_conns --publishers 0 --duration 0 --idle $d_idle --connect-concurrency 200 --connect-timeout 60"
shape_secs[idle]=$((d_idle + 75))
shape_est[idle]=$((d_idle + 10))
shapes=(fanout topics latency idle)

run_one() {  # shape server rep
  local shape=$1 srv=$2 rep=$3 secs=${shape_secs[$1]}
  if ((SECONDS - started + ${shape_est[$1]} > budget)); then
    say "skipping $shape/$srv/$rep: the 10-minute budget would pass"
    return 0
  fi
  if [[ $srv == herald ]]; then start_herald "$shape-$rep" || return 0; else start_nats "$shape-$rep" || return 0; fi
  local args=(--target "$srv" --url "$server_url" --server-pid "$server_pid" --label "$shape")
  [[ $srv == herald ]] && args+=(--admin-key "$admin_key")
  # shellcheck disable=SC2086
  if ! timeout --kill-after=5 "$secs" taskset -c $load_cpu "$herald" bench "${args[@]}" \
      ${shape_args[$shape]} "${common[@]}" >"$tmp/last.json" 2>"$tmp/last.err"; then
    say "$shape/$srv/$rep failed: $(tail -2 "$tmp/last.err")"
  fi
  $py bench/summarize.py --line "$tmp/last.json" "$shape/$srv/$rep" >&2 || true
  stop_server
}

for shape in "${shapes[@]}"; do
  for rep in $(seq "$reps"); do
    # Alternate which server goes first, so drift in the machine does not favour one.
    if ((rep % 2)); then order=(herald nats); else order=(nats herald); fi
    for srv in "${order[@]}"; do run_one "$shape" "$srv" "$rep"; done
  done
done

# --- medians, ratios, plots ------------------------------------------------------------------
$py bench/summarize.py "$results" "$out" >"$tmp/summary.txt"
cat "$tmp/summary.txt"
if command -v gnuplot >/dev/null 2>&1; then
  (cd "$out" && gnuplot "$root/bench/plots.gp") || say "gnuplot failed"
fi
say "done in $((SECONDS - started)) s: $out/results.jsonl, $out/summary.md, $out/*.png"
