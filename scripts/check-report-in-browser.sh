#!/usr/bin/env bash
# Opens the HTML report in headless Chromium and checks it as a person would
# see it (tests/browser/check-report.mjs says what is checked).
#
#   scripts/check-report-in-browser.sh              # render the fixture's report, check it
#   scripts/check-report-in-browser.sh some.html    # check an existing report instead
#
# Installs what it needs and is missing: Debian's chromium (apt-get), and
# playwright-core from tests/browser/package-lock.json (npm ci; it drives
# /usr/bin/chromium, no browser is downloaded). Builds target/release/llama-sweep
# if it is absent. Without an argument it renders tests/fixtures/real-demo-grid
# to target/ci-artifacts/report.html. Screenshots go to
# target/ci-artifacts/report.png (full page) and report-top.png (first
# 1280x900). Exits non-zero when a check fails. Safe to run again.
set -euo pipefail

report=""
if [ $# -gt 1 ]; then
  echo "usage: $0 [report.html]" >&2
  exit 2
fi
if [ $# -eq 1 ]; then
  [ -f "$1" ] || { echo "no such file: $1" >&2; exit 2; }
  report="$(realpath "$1")"
fi

cd "$(dirname "$0")/.."
artifacts=target/ci-artifacts
fixture=tests/fixtures/real-demo-grid

# Debian's Chromium (fonts-liberation gives text a real font on a bare machine).
if [ ! -x /usr/bin/chromium ]; then
  if ! command -v apt-get >/dev/null; then
    echo "please install Chromium at /usr/bin/chromium, then run this again" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing chromium with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null
fi

# playwright-core, exactly as locked; reinstalled when the lock file changed.
command -v npm >/dev/null || { echo "node and npm are missing: install Node.js 20 or later" >&2; exit 1; }
lock_sum="$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)"
stamp=tests/browser/node_modules/.installed-lock-sha256
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "installing tests/browser's packages (npm ci)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stamp"
fi

mkdir -p "$artifacts"
if [ -z "$report" ]; then
  if [ ! -x target/release/llama-sweep ]; then
    echo "building target/release/llama-sweep"
    cargo build --release --locked --bin llama-sweep
  fi
  report="$artifacts/report.html"
  rm -f "$report"
  echo "rendering $fixture to $report"
  target/release/llama-sweep report "$fixture" --output "$report"
fi
rm -f "$artifacts/report.png" "$artifacts/report-top.png"

status=0
node tests/browser/check-report.mjs "$report" "$artifacts/report.png" || status=$?

echo
echo "artifacts:"
for f in "$report" "$artifacts/report.png" "$artifacts/report-top.png"; do
  if [ -f "$f" ]; then echo "  $(realpath "$f")"; fi
done
exit "$status"
