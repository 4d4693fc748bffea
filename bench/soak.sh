#!/usr/bin/env bash
# `make soak`: the chaos run at length (SOAK_SECONDS, default 300; SOAK_CLIENTS, default 400).
set -euo pipefail
cd "$(dirname "$0")/.."
CHAOS_SECONDS=${SOAK_SECONDS:-300} CHAOS_CLIENTS=${SOAK_CLIENTS:-400} \
  HERALD_BIN=${HERALD_BIN:-build/release/herald} /usr/bin/python3 tests/chaos/chaos_test.py
