#!/usr/bin/env bash
# Runs `scimlab conformance` and scim2-tester side by side against scim2-server (both from PyPI,
# pinned in peers-requirements.txt), on loopback, and prints each tool's findings and time.
# Usage: scripts/compare-peers.sh [PORT]     (installs into target/peers on first use)
# Each tool gets a freshly started server: scim2-tester's list checks read only the first page.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${1:-18080}
TOKEN=scimlab-peers
VENV="$ROOT/target/peers/venv"
URL="http://127.0.0.1:$PORT/v2"

if [ ! -x "$VENV/bin/scim2-server" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/peers-requirements.txt"
fi
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p harness

server=""
stop() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=""
}
trap stop EXIT
start() {
  stop
  "$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$PORT" --bearer-token "$TOKEN" >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 50); do
    curl -fs -o /dev/null -H "Authorization: Bearer $TOKEN" "$URL/ServiceProviderConfig" && return
    sleep 0.1
  done
  echo "scim2-server did not start on port $PORT" >&2
  exit 1
}

echo "== scimlab conformance against scim2-server $("$VENV/bin/pip" show scim2-server | sed -n 's/^Version: //p')"
start
report="$ROOT/target/peers/scimlab-report"
start_ns=$(date +%s%N)
"$ROOT/target/release/scimlab" conformance "$URL" --token "$TOKEN" --report "$report" | grep -v '^skip\|^note' || true
echo "wall: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms (report: $report)"

echo "== scim2-tester $("$VENV/bin/pip" show scim2-tester | sed -n 's/^Version: //p') against the same server, freshly started"
start
start_ns=$(date +%s%N)
timeout 600 "$VENV/bin/python" - "$URL" "$TOKEN" <<'PY' || true
import collections, sys, time
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
url, token = sys.argv[1], sys.argv[2]
client = SyncSCIMClient(Client(base_url=url.rstrip("/") + "/", headers={"Authorization": f"Bearer {token}"}, timeout=10))
t0 = time.monotonic()
results = check_server(client)
elapsed = time.monotonic() - t0
for r in results:
    if r.status not in {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}:
        print(r.status.name, r.title, r.resource_type or "", "--", " | ".join(str(r.reason).splitlines()))
print(f"scim2-tester: {len(results)} checks, by status {dict(collections.Counter(r.status.name for r in results))} in {elapsed:.2f} s")
PY
echo "wall: $(( ($(date +%s%N) - start_ns) / 1000000 )) ms (Python start-up included)"
