#!/usr/bin/env bash
# Opens a report page from the file system in headless Chromium (installed from Debian's
# packages when missing) with the network off, and checks that its script laid out everything
# the page says it holds: the page sets data-expected (written by scimlab) and its script sets
# data-rendered="laid-out/total" (plots of a load report, result rows of a conformance report).
# Writes a screenshot beside the page.
#   scripts/check-report-in-browser.sh target/ci-report/load/index.html
set -euo pipefail
page="${1:?usage: $0 PAGE.html}"
[ -f "$page" ] || { echo "no page $page" >&2; exit 2; }
page="$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"

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
rendered="$(grep -o 'data-rendered="[0-9]*/[0-9]*"' <<<"$dom" | head -1 | cut -d'"' -f2)"
expected="$(grep -o 'data-expected="[0-9]*"' "$page" | head -1 | cut -d'"' -f2)"
timeout 120 "$browser" "${flags[@]}" --window-size=1100,2400 --screenshot="${page%.html}.png" \
  "file://$page" >/dev/null 2>&1 || true
ok="${rendered%/*}"; total="${rendered#*/}"
if [ -z "$rendered" ] || [ -z "$expected" ] || [ "$expected" -lt 1 ] || [ "$total" != "$expected" ] || [ "$ok" != "$total" ]; then
  echo "FAIL: laid out ${rendered:-nothing} of ${expected:-?} (the page's script did not run, or something is empty)" >&2
  exit 1
fi
echo "browser check: $rendered laid out in $("$browser" --version 2>/dev/null | head -1); screenshot ${page%.html}.png"
