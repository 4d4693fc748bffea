#!/usr/bin/env bash
# ctest bench_smoke: ~2 s of `herald bench` against a real server (memory store, port 0); the
# run must be clean: no loss, duplicates, reordering, connect or publish errors.
# Usage: smoke_test.sh path/to/herald
set -euo pipefail
herald=${1:?usage: smoke_test.sh path/to/herald}
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

export HERALD_ADMIN_KEY="smoke-admin-$RANDOM$RANDOM$RANDOM"
"$herald" serve --listen 127.0.0.1:0 --store memory --data "$tmp/data" >"$tmp/out" 2>"$tmp/err" &
server_pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$tmp/out" | head -1 || true)
  [[ -n $url ]] && break
  sleep 0.1
done
if [[ -z $url ]]; then
  echo "bench_smoke: server did not start"; cat "$tmp/err"; exit 1
fi

# A tenant, an app and a publisher through the admin API (POST /v1/admin/tenants, /v1/admin/apps).
create() {
  "$herald" app create --server "$url" --tenant smoke --name "$1" --role "$2" \
    --admin-key "$HERALD_ADMIN_KEY" --json | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p'
}
app_key=$(create smoke-app app)
pub_key=$(create smoke-pub publisher)
if [[ -z $app_key || -z $pub_key ]]; then
  echo "bench_smoke: could not create the apps"; exit 1
fi

# 100 subscribers on 4 topics over 2 threads, 2 publishers with 2 requests in flight each at
# 2,000 events/s for 2 s.
"$herald" bench --url "$url" --api-key "$app_key" --publisher-key "$pub_key" \
  --subscribers 100 --topics 4 --threads 2 --publishers 2 --inflight 2 --rate 2000 --batch 50 \
  --duration 2 --drain 5 --server-pid "$server_pid" --label smoke --check >"$tmp/result.json"
cat "$tmp/result.json"
grep -q '"clean":true' "$tmp/result.json"
grep -q '"lost":0,' "$tmp/result.json"
grep -q '"duplicates":0,' "$tmp/result.json"
grep -q '"reordered":0,' "$tmp/result.json"
grep -q '"pub_requests":[1-9]' "$tmp/result.json"  # publish -> commit latency measured
echo "bench_smoke: ok"
