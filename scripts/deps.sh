#!/usr/bin/env bash
# Installs every Debian package Herald needs to build, test and run. Idempotent: it asks apt
# only for what is missing, so `make run` / `make test` call it on every invocation.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  clang libclang-rt-14-dev
  clang-format clang-tidy
  python3-websockets python3-pytest curl
  # tests/ops: promtool (metrics and alert rules), YAML for the spec files, systemd-analyze
  prometheus python3-yaml systemd
  # store/redis: hiredis's reply parser (0.14, RESP2); its tests start a real redis-server (7.0)
  libhiredis-dev redis-server
)
missing=()
# Node and npm run the compatibility suites. The machines ship Node 20 with its own npm (not
# Debian's package, which would conflict with it): only a machine without them gets Debian's.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  ((EUID == 0)) || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
