#!/usr/bin/env bash
# Reproduces the README's HTTP figures: the standalone provider (release build, durable writes)
# under wrk on loopback, GET /Users/{id} then POST /Users, 8 connections for SECONDS each.
# Usage: benches/load.sh [SECONDS=10] [CONNECTIONS=8]. Bounded in time; talks to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-8}
PEERS=${PEERS_TOOLS:-../shared/tools/peers}
[ -f "$PEERS/bench-scim.sh" ] || { echo "need $PEERS/bench-scim.sh (set PEERS_TOOLS)" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing: apt-get install wrk" >&2; exit 2
  fi
fi
cargo build --release -q
data=$(mktemp -d)
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data" "$out"' EXIT
./target/release/scimlab up --port 0 --token load --data "$data" >"$out" &
pid=$!
for _ in $(seq 50); do grep -q '^ready' "$out" && break; sleep 0.1; done
url=$(awk '$1 == "scim" {print $2}' "$out")
[ -n "$url" ] || { echo "the provider did not start" >&2; exit 1; }
SCIM_TOKEN=load MAX_REQ=${MAX_REQ:-5000000} bash "$PEERS/bench-scim.sh" "$url" "$SECS" "$CONNS" 1 | grep -E '^(==|SUMMARY|LATENCY_MS)'
