#!/usr/bin/env bash
# `scimlab load --scim --find-max` end to end, as a vendor runs it: against the standalone SCIM
# endpoint of a `scimlab up` started here, two short rates, then the run's HTML report and the
# climb's page opened in headless Chromium (scripts/check-report-in-browser.sh).
# Usage: scripts/check-scim-load.sh [SCIMLAB_BINARY] [REPORT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/scimlab}
REPORT=${2:-target/ci-report/scim-load}
WORK=$(mktemp -d)
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$BIN" ] || cargo build --release --locked
"$BIN" up --port 0 --data "$WORK/data" --token load-token --no-fsync >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -qx ready "$WORK/out" 2>/dev/null && break; sleep 0.1; done
grep -qx ready "$WORK/out" || { echo "scimlab up did not start:"; cat "$WORK/err"; exit 2; }
scim=$(grep "^scim " "$WORK/out" | awk '{print $2}')

echo "== scimlab load --scim $scim --find-max (2 rates)"
"$BIN" load --scim "$scim" --token load-token --rate 10 --duration 5 --users 30 \
  --max-p99-ms 2000 --find-max --find-max-steps 2 --report "$REPORT"
scripts/check-report-in-browser.sh "$REPORT/index.html"
scripts/check-report-in-browser.sh "$REPORT/find-max.html"
