#!/usr/bin/env bash
# Opens a load report's index.html from the file system in headless Chromium (installed from
# Debian's packages when missing) with the network off, and checks that the page laid out all
# of its SVG plots. Writes a screenshot beside the page.
#   scripts/check-report-in-browser.sh target/ci-report/load
set -euo pipefail
dir="${1:?usage: $0 REPORT_DIR}"
page="$(cd "$dir" && pwd)/index.html"
[ -f "$page" ] || { echo "no index.html in $dir" >&2; exit 2; }

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "== installing Debian's chromium"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser="$(command -v chromium)"
fi

# The page must not reach for the network: no external scripts, styles, images or fonts.
if grep -Eo '(src|href)="(https?:)?//[^"]*"' "$page"; then
  echo "FAIL: the page loads something from the network" >&2
  exit 1
fi

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile" --proxy-server=127.0.0.1:9 --virtual-time-budget=3000)
dom="$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null)"
rendered="$(grep -o 'data-plots-rendered="[0-9]*/[0-9]*"' <<<"$dom" | head -1 | cut -d'"' -f2)"
timeout 120 "$browser" "${flags[@]}" --window-size=1100,2400 --screenshot="$dir/index.png" \
  "file://$page" >/dev/null 2>&1 || true
ok="${rendered%/*}"; total="${rendered#*/}"
if [ -z "$rendered" ] || [ "$total" -lt 3 ] || [ "$ok" != "$total" ]; then
  echo "FAIL: plots laid out: ${rendered:-none} (the page's script did not run or a plot is empty)" >&2
  exit 1
fi
echo "browser check: $rendered plots laid out in $("$browser" --version 2>/dev/null | head -1); screenshot $dir/index.png"
