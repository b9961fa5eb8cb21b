#!/usr/bin/env bash
# Real client libraries from the registries, unchanged, against scimlab's mocks: Okta's Python
# and Node SDKs against mock-idp (over HTTPS: both refuse http://), dohq-teamcity (PyPI) and
# teamcity-client (npm) against mock-teamcity. Installs them into a venv (default target/sdk-venv) and an npm folder (default
# target/sdk-npm) and starts its own `scimlab up` servers.
# Usage: scripts/sdk/run.sh [SCIMLAB_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/scimlab}
VENV=${SDK_VENV:-target/sdk-venv}
NPM_DIR=${SDK_NPM:-target/sdk-npm}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$BIN" ] || cargo build --release --locked
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/sdk/requirements.txt
mkdir -p "$NPM_DIR"
cp scripts/sdk/package.json "$NPM_DIR/"
(cd "$NPM_DIR" && npm install --silent --no-audit --no-fund)

# Starts `scimlab up` with these flags in the data folder $WORK/NAME, which it sets as DATA
# (not run in a subshell, so that the trap knows its pid).
up() {
  DATA="$WORK/$1"; shift
  local data=$DATA
  "$BIN" up --data "$data" --token sdk-token --no-fsync "$@" >"$data.out" 2>"$data.err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -qx ready "$data.out" 2>/dev/null && break; sleep 0.1; done
  grep -qx ready "$data.out" || { echo "scimlab up did not start:"; cat "$data.err"; exit 2; }
}
url() { grep "^$2 " "$1.out" | awk '{print $2}'; }

status=0
up tls --tls
tls=$DATA
echo "== Okta Python SDK against mock-idp ($(url "$tls" idp))"
SSL_CERT_FILE="$tls/tls/ca.pem" "$VENV/bin/python" scripts/sdk/okta_python.py "$(url "$tls" idp)" sdk-token || status=1
echo "== Okta Node SDK against mock-idp ($(url "$tls" idp))"
NODE_PATH="$NPM_DIR/node_modules" NODE_EXTRA_CA_CERTS="$tls/tls/ca.pem" \
  node scripts/sdk/okta_node.js "$(url "$tls" idp)" sdk-token || status=1
up plain
plain=$DATA
echo "== dohq-teamcity against mock-teamcity ($(url "$plain" teamcity))"
"$VENV/bin/python" scripts/sdk/teamcity_dohq.py "$(url "$plain" teamcity)" sdk-token || status=1
echo "== teamcity-client (npm) against mock-teamcity ($(url "$plain" teamcity))"
NODE_PATH="$NPM_DIR/node_modules" node scripts/sdk/teamcity_client.js "$(url "$plain" teamcity)" sdk-token || status=1
exit $status
