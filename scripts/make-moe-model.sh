#!/usr/bin/env bash
# Writes a tiny random-weight mixture-of-experts GGUF (llama.cpp's qwen3moe,
# 8 experts, 2 used; ~14 MiB) for speed and placement tests of MoE models.
# Usage: scripts/make-moe-model.sh [OUT]   (default models/test-moe.gguf; a
# relative OUT is relative to the repo root). Without OUT it also writes
# models/test-other-vocab.gguf, the same with two tokens swapped: another
# vocabulary to llama.cpp, the draft model the speculation tests must see refused. The tokenizer comes from the demo
# model, fetched first if missing; the gguf package is installed from PyPI if
# python3 lacks it. An up-to-date OUT is kept. See scripts/make-moe-model.py.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-models/test-moe.gguf}"
demo="models/SmolLM2-135M-Instruct.Q4_1.gguf"

[ -f "$demo" ] || scripts/fetch-demo-model.sh
python3 -c 'import gguf' 2>/dev/null || python3 -m pip install --quiet gguf==0.19.0
mkdir -p "$(dirname "$out")"
python3 scripts/make-moe-model.py "$out" "$demo"
if [ $# -eq 0 ]; then
    python3 scripts/make-moe-model.py models/test-other-vocab.gguf "$demo" --other-vocab
fi
