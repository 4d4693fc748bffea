#!/usr/bin/env bash
# make bench: Herald against nats-server on the same shapes, driven by the same code
# (`herald bench`, docs/performance.md). Both servers run on 127.0.0.1 pinned to CPU 0, the load
# to CPU 1; each shape runs three times, alternating servers; medians, the spread of the runs
# and Herald/NATS ratios against the issue's targets are printed and written with JSON lines
# and PNG plots to docs/bench/.
#
# Herald runs as `herald serve` runs by default: SQLite store in a fresh data directory,
# durable acks (a 201 after the commit). The memory store is an extra, labelled row.
#
# The cluster rows (issue 16, docs/cluster.md): a fresh redis-server (AOF, appendfsync always:
# a 201 survives a Redis crash, as SQLite's durable ack does) and 1, then 3, Herald nodes on it
# (`--store redis://…`), the `latency` and `fanout-64` shapes, one `herald bench` spreading its
# subscribers and publishing streams round-robin over the nodes. Nodes and Redis share CPU 0,
# the load CPU 1: on a 2-core machine this measures the cluster's overhead, not its scaling.
#
#   bench/run.sh            full run (idle shape: 20 s, cost-model grid), about 15 minutes
#   bench/run.sh --quick    one run per shape, short durations, storm of 2,000, no grid, ~5 min
#
# Environment: JOBS (build parallelism, default 2), HERALD_BIN (use this binary, no build),
# BENCH_REPS (default 3; quick: 1), BENCH_OUT (default docs/bench; elsewhere, the README's
# table is left alone), BENCH_REDIS_FSYNC (the cluster's appendfsync: always, the default, or
# everysec), BENCH_ONLY=cluster (only the cluster rows: a check of that step). Bounded: every
# command has a timeout and the whole run stops adding runs past its budget (17 min; quick 5).
# Traffic only to 127.0.0.1. Kills only the PIDs it started (servers, Redis, the load, the
# CPU-bound neighbour).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
quick=0
[[ ${1:-} == --quick ]] && quick=1
if ((quick)); then reps=${BENCH_REPS:-1}; budget=300; else reps=${BENCH_REPS:-3}; budget=1020; fi
only=${BENCH_ONLY:-}
[[ -z $only || $only == cluster ]] || { echo "bench: BENCH_ONLY must be 'cluster'" >&2; exit 2; }
redis_fsync=${BENCH_REDIS_FSYNC:-always}
[[ $redis_fsync == always || $redis_fsync == everysec ]] ||
  { echo "bench: BENCH_REDIS_FSYNC must be always or everysec, not '$redis_fsync'" >&2; exit 2; }
out=${BENCH_OUT:-docs/bench}
[[ -n $only && $out == docs/bench ]] &&
  { echo "bench: BENCH_ONLY=cluster writes a partial results.jsonl: set BENCH_OUT elsewhere" >&2; exit 2; }
started=$SECONDS

say() { echo "bench: $*" >&2; }

# --- dependencies (Debian packages), release build ----------------------------------------
need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
command -v gnuplot >/dev/null 2>&1 || need+=(gnuplot-nox)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
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
idle_conns=5000
storm_sessions=10000
((quick)) && storm_sessions=2000
if ((nofile < storm_sessions + 200)); then
  storm_sessions=$((nofile - 200))
  say "open-files limit $nofile: the resume storm uses $storm_sessions sessions"
fi
((storm_sessions < idle_conns)) && idle_conns=$storm_sessions
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
redis_ver=$(redis-server --version 2>&1 | grep -o 'v=[0-9.]*' | head -1 || true)
[[ -n $redis_ver ]] || redis_ver=unknown
date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
$py - "$results" <<EOF
import json, sys
meta = {"meta": True, "date": "$date_utc", "machine": "$machine", "cpus": $ncpu, "memory": "$mem",
        "kernel": "$(uname -sr)", "herald": "$herald_ver", "nats": "$nats_ver",
        "quick": bool($quick), "reps": $reps, "server_cpu": $server_cpu, "load_cpu": $load_cpu,
        "open_files": $nofile, "storm_sessions": $storm_sessions, "idle_conns": $idle_conns,
        "redis": "redis-server ${redis_ver#v=}", "redis_appendfsync": "$redis_fsync"}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF

# --- servers ---------------------------------------------------------------------------------
admin_key="bench-admin-$RANDOM$RANDOM$RANDOM"
server_pid=
server_url=

start_herald() {  # name [store] [port]: the defaults (SQLite) unless store is "memory" or redis://
  local dir=$tmp/herald-$1 store=${2:-sqlite} port=${3:-0} extra=()
  mkdir -p "$dir"
  [[ $store == memory || $store == redis://* ]] && extra=(--store "$store")
  : >"$dir/out"
  HERALD_ADMIN_KEY=$admin_key taskset -c $server_cpu "$herald" serve --listen "127.0.0.1:$port" \
    "${extra[@]}" --data "$dir" >>"$dir/out" 2>>"$dir/err" &
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
if ((quick)); then d_max=2; d_lat=3; d_idle=3; else d_max=3; d_lat=5; d_idle=15; fi
common=(--threads 1 --payload 64 --drain 10 --quiet --json "$results")
# shape_secs: the kill timeout of one run; shape_est: what it usually takes (for the budget);
# shape_store: Herald's store (sqlite, the default, or memory); shape_servers: who runs it.
declare -A shape_args shape_secs shape_est shape_store shape_servers
# Publishing modes, the same for both servers: "1" one event per request (NATS: per frame),
# "64" arrays of 64; both with 16 requests in flight (--inflight 16: 16 streams, each its own
# keep-alive connection waiting for its 201 before its next POST; NATS: 16 connections).
pub1="--publishers 1 --inflight 16 --batch 1"
pub64="--publishers 1 --inflight 16 --batch 64"
add_shape() {  # name servers store est secs args...
  local name=$1
  shape_servers[$name]=$2
  shape_store[$name]=$3
  shape_est[$name]=$4
  shape_secs[$name]=$5
  shift 5
  shape_args[$name]="$*"
}
max="--rate 0 --duration $d_max"
add_shape fanout-1 "herald nats" sqlite $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1 $pub1 $max
add_shape fanout-64 "herald nats" sqlite $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1 $pub64 $max
add_shape topics-1 "herald nats" sqlite $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1000 $pub1 $max
add_shape topics-64 "herald nats" sqlite $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1000 $pub64 $max
add_shape fanout-64-memory herald memory $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1 $pub64 $max
add_shape topics-64-memory herald memory $((d_max + 5)) $((d_max + 25)) --subscribers 1000 --topics 1000 $pub64 $max
# 200 msg/s × 1,000 subscribers: 16 streams of 12.5 events/s; an event goes as soon as it is due,
# in one POST with any others due while its stream waited for a commit (at most 64).
lat="--subscribers 1000 --topics 1 --publishers 1 --inflight 16 --batch 64 --rate 200 --duration $d_lat"
add_shape latency "herald nats" sqlite $((d_lat + 5)) $((d_lat + 25)) $lat
add_shape latency-busy "herald nats" sqlite $((d_lat + 5)) $((d_lat + 25)) $lat
add_shape latency-slow "herald nats" sqlite $((d_lat + 5)) $((d_lat + 25)) $lat --slow-fraction 0.05 --slow-pause 1
add_shape idle "herald nats" sqlite $((d_idle + 8)) $((d_idle + 75)) --subscribers $idle_conns --publishers 0 --duration 0 --idle $d_idle --connect-concurrency 200 --connect-timeout 60
shapes=(fanout-1 fanout-64 topics-1 topics-64 fanout-64-memory topics-64-memory latency latency-busy latency-slow idle)

neighbour_pid=
start_neighbour() {  # a CPU-bound process on the server's core
  taskset -c $server_cpu bash -c 'while :; do :; done' &
  neighbour_pid=$!
  pids+=("$neighbour_pid")
}
stop_neighbour() {
  [[ -n $neighbour_pid ]] || return 0
  kill "$neighbour_pid" 2>/dev/null || true
  wait "$neighbour_pid" 2>/dev/null || true
  neighbour_pid=
}

over_budget() {  # est: true (and said) when a run of `est` seconds would pass the budget
  if ((SECONDS - started + $1 > budget)); then
    say "skipping $2: the $((budget / 60))-minute budget would pass"
    return 0
  fi
  return 1
}

run_one() {  # shape server rep
  local shape=$1 srv=$2 rep=$3 secs=${shape_secs[$1]}
  over_budget "${shape_est[$1]}" "$shape/$srv/$rep" && return 0
  if [[ $srv == herald ]]; then
    start_herald "$shape-$rep" "${shape_store[$shape]}" || return 0
  else
    start_nats "$shape-$rep" || return 0
  fi
  local args=(--target "$srv" --url "$server_url" --server-pid "$server_pid" --label "$shape")
  [[ $srv == herald ]] && args+=(--admin-key "$admin_key")
  [[ $shape == latency-busy ]] && start_neighbour
  # shellcheck disable=SC2086
  if ! timeout --kill-after=5 "$secs" taskset -c $load_cpu "$herald" bench "${args[@]}" \
      ${shape_args[$shape]} "${common[@]}" >"$tmp/last.json" 2>"$tmp/last.err"; then
    say "$shape/$srv/$rep failed: $(tail -2 "$tmp/last.err")"
  fi
  stop_neighbour
  $py bench/summarize.py --line "$tmp/last.json" "$shape/$srv/$rep" >&2 || true
  stop_server
}

# The resume storm (Herald only): sessions subscribed, the server drained (SIGTERM: close 1012)
# and restarted on the same data and port, every session resumes at once.
run_storm() {  # rep
  local rep=$1 port ready=$tmp/storm-$1.ready bench_pid
  over_budget $((15 + storm_sessions / 250)) "storm/herald/$rep" && return 0
  port=$(free_port)
  start_herald "storm-$rep" sqlite "$port" || return 0
  timeout --kill-after=5 240 taskset -c $load_cpu "$herald" bench --target herald --url "$server_url" \
    --admin-key "$admin_key" --label storm --resume-storm --storm-ready-file "$ready" \
    --subscribers "$storm_sessions" --topics 100 --storm-missed 2 --connect-concurrency 200 \
    --connect-timeout 120 --storm-restart-timeout 90 "${common[@]}" >"$tmp/last.json" 2>"$tmp/last.err" &
  bench_pid=$!
  pids+=("$bench_pid")
  for _ in $(seq 1200); do
    [[ -f $ready ]] && break
    kill -0 "$bench_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -f $ready ]]; then
    local t0=$SECONDS
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    say "storm/herald/$rep: drained in $((SECONDS - t0)) s; restarting on port $port"
    start_herald "storm-$rep" sqlite "$port" || true
  else
    say "storm/herald/$rep: the sessions never got ready: $(tail -2 "$tmp/last.err")"
  fi
  wait "$bench_pid" 2>/dev/null || say "storm/herald/$rep failed: $(tail -2 "$tmp/last.err")"
  $py bench/summarize.py --line "$tmp/last.json" "storm/herald/$rep" >&2 || true
  stop_server
}

if [[ -z $only ]]; then
  run_storm 1  # one storm: 10,000 sessions take a minute
  for shape in "${shapes[@]}"; do
    for rep in $(seq "$reps"); do
      # Alternate which server goes first, so drift in the machine does not favour one.
      if ((rep % 2)); then order=(herald nats); else order=(nats herald); fi
      for srv in "${order[@]}"; do
        [[ " ${shape_servers[$shape]} " == *" $srv "* ]] && run_one "$shape" "$srv" "$rep"
      done
    done
  done
fi

# --- the cluster rows (issue 16): 1 node, then 3, on one Redis -------------------------------
# A fresh redis-server per run (AOF in the run's directory, appendfsync $redis_fsync, no RDB),
# the nodes `herald serve --store redis://127.0.0.1:PORT` with the same admin key, all pinned
# to the server's CPU with Redis; one `herald bench` on the load CPU gets every node's URL
# (--url A,B,C): subscriber i on node i mod N, publishing stream s (of the 16) on node s mod N.
# --server-pid of every node and of Redis: the server CPU and RSS are the cluster's, summed.
# Labels cluster-<N>-<shape>.
redis_pid=
redis_port=
start_redis() {  # name
  local dir=$tmp/redis-$1
  mkdir -p "$dir"
  redis_port=$(free_port)
  taskset -c $server_cpu redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" \
    --save '' --appendonly yes --appendfsync "$redis_fsync" --protected-mode yes \
    --logfile "$dir/log" >"$dir/out" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 100); do
    [[ $(timeout 2 redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]] && return 0
    kill -0 "$redis_pid" 2>/dev/null || break  # it exited: no use waiting
    sleep 0.1
  done
  say "redis-server did not start: $(cat "$dir/log" "$dir/out" 2>/dev/null | grep -v "^$" | tail -n 3)"
  return 1
}
stop_pids() {  # pid...: ours, by PID
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cluster_shapes=(latency fanout-64)
run_cluster() {  # shape nodes rep
  local shape=$1 nodes=$2 rep=$3 label=cluster-$2-$1 node_pids=() urls=() i list p
  local measured=()
  over_budget $((${shape_est[$shape]} + 2 + nodes)) "$label/herald/$rep" && return 0
  if ! start_redis "$label-$rep"; then
    stop_pids "$redis_pid"
    return 0
  fi
  for i in $(seq "$nodes"); do
    if ! start_herald "$label-$rep-node$i" "redis://127.0.0.1:$redis_port"; then
      stop_pids "${node_pids[@]}" "$server_pid" "$redis_pid"
      return 0
    fi
    node_pids+=("$server_pid")
    urls+=("$server_url")
  done
  list=$(IFS=,; echo "${urls[*]}")
  for p in "${node_pids[@]}" "$redis_pid"; do measured+=(--server-pid "$p"); done
  # shellcheck disable=SC2086
  if ! timeout --kill-after=5 "$((${shape_secs[$shape]} + 15))" taskset -c $load_cpu "$herald" bench \
      --target herald --url "$list" "${measured[@]}" --admin-key "$admin_key" --label "$label" \
      ${shape_args[$shape]} "${common[@]}" >"$tmp/last.json" 2>"$tmp/last.err"; then
    say "$label/herald/$rep failed: $(tail -2 "$tmp/last.err")"
  fi
  $py bench/summarize.py --line "$tmp/last.json" "$label/herald/$rep" >&2 || true
  stop_pids "${node_pids[@]}" "$redis_pid"
  server_pid=
}
for shape in "${cluster_shapes[@]}"; do
  for rep in $(seq "$reps"); do
    if ((rep % 2)); then order=(1 3); else order=(3 1); fi
    for nodes in "${order[@]}"; do run_cluster "$shape" "$nodes" "$rep"; done
  done
done

# The cost model's grid (full mode): Herald alone, SQLite, 16 requests in flight; subscribers
# matched per event × batch size, and 1,000 topics × 1 subscriber (docs/performance.md).
if ((!quick)) && [[ -z $only ]]; then
  rm -f "$out/grid.jsonl.new"
  for cell in "1 1" "10 1" "100 1" "1000 1" "1000 1000"; do
    read -r subs topics <<<"$cell"
    for batch in 1 8 64; do
      over_budget 8 "grid/$subs/$topics/$batch" && continue
      start_herald "grid-$subs-$topics-$batch" sqlite || continue
      timeout --kill-after=5 40 taskset -c $load_cpu "$herald" bench --target herald \
        --url "$server_url" --server-pid "$server_pid" --admin-key "$admin_key" --label grid \
        --subscribers "$subs" --topics "$topics" --publishers 1 --inflight 16 --batch "$batch" \
        --rate 0 --duration 2 --threads 1 --payload 64 --drain 10 --quiet \
        --json "$out/grid.jsonl.new" >"$tmp/last.json" 2>"$tmp/last.err" ||
        say "grid/$subs/$topics/$batch failed: $(tail -2 "$tmp/last.err")"
      $py bench/summarize.py --line "$tmp/last.json" "grid/$subs/$topics/$batch" >&2 || true
      stop_server
    done
  done
  if [[ -s $out/grid.jsonl.new ]]; then
    mv "$out/grid.jsonl.new" "$out/grid.jsonl"
    $py bench/costmodel.py "$out/grid.jsonl" >"$out/costmodel.md" || say "cost model fit failed"
    cat "$out/costmodel.md" >&2
  fi
fi

# --- medians, ratios, plots ------------------------------------------------------------------
readme=()
[[ $out == docs/bench ]] && readme=(--readme README.md)
$py bench/summarize.py "$results" "$out" "${readme[@]}" >"$tmp/summary.txt"
cat "$tmp/summary.txt"
if command -v gnuplot >/dev/null 2>&1; then
  (cd "$out" && gnuplot "$root/bench/plots.gp") || say "gnuplot failed"
fi
say "done in $((SECONDS - started)) s: $out/results.jsonl, $out/summary.md, $out/*.png"
