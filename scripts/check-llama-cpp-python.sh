#!/usr/bin/env bash
# CI check that an exported config really loads in a real llama-cpp-python:
# runs the sweep tests/fixtures/export-check.toml on the demo model (its one
# trial plus the reference trials llama-sweep adds), exports each measured
# trial as config.yaml (and with --format json, when this llama-sweep has it),
# and has tests/python/load_exported.py check that every `llm:` key is a named
# Llama() parameter of the right type (Llama() swallows unknown keys in
# **kwargs), load it with Llama(**llm), compare what the context got, and
# generate a few tokens. Configs with a bogus key or a mistyped value must be
# rejected, so the checker cannot pass by accident.
#
# llama-cpp-python is pinned and built from PyPI's source distribution into a
# virtualenv outside the repo, ${LLAMA_SWEEP_PY_VENV:-~/.cache/llama-sweep/
# llama-cpp-python-venv}. The first run compiles llama.cpp (minutes); pip's
# wheel cache makes a new venv fast, and a venv that already has the pinned
# versions is used as it is. Extra CMAKE_ARGS (e.g. -DGGML_CUDA=on) are
# appended to ours, but note that pip's wheel cache does not key on them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

LLAMA_CPP_PYTHON_VERSION=0.3.36
PYYAML_VERSION=6.0.4
venv="${LLAMA_SWEEP_PY_VENV:-$HOME/.cache/llama-sweep/llama-cpp-python-venv}"
bin="${LLAMA_SWEEP_BIN:-$root/target/release/llama-sweep}"
py="$venv/bin/python"

step() { printf '\n== %s\n' "$*"; }

# --- the virtualenv -----------------------------------------------------------
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  command -v apt-get >/dev/null || { echo "python3 lacks venv/ensurepip: install python3-venv" >&2; exit 1; }
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  step "installing python3-venv with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
if [ ! -x "$py" ]; then
  step "creating $venv"
  python3 -m venv "$venv"
fi

pinned() {
  "$py" - "$LLAMA_CPP_PYTHON_VERSION" "$PYYAML_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("llama_cpp_python"), version("PyYAML")) == tuple(sys.argv[1:3]) else 1)
PY
}
if pinned; then
  echo "llama-cpp-python $LLAMA_CPP_PYTHON_VERSION and PyYAML $PYYAML_VERSION already in $venv"
else
  step "installing llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (built from its sdist) and PyYAML $PYYAML_VERSION"
  echo "(the first build compiles llama.cpp: several minutes with no output; later ones come from pip's wheel cache)"
  start=$SECONDS
  # Only the shared libraries the bindings load: no llava/mtmd, tests,
  # examples, tools or server. Not GGML_NATIVE: the wheel lands in pip's cache,
  # which CI may restore on another CPU, where -march=native code crashes.
  # (Release + shared libs are the package's own defaults.)
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF ${CMAKE_ARGS:-}" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$py" -m pip install --quiet --no-binary llama-cpp-python \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "pyyaml==$PYYAML_VERSION"
  pinned || { echo "the pinned versions are still not in $venv" >&2; exit 1; }
  echo "installed in $((SECONDS - start)) s"
fi

# --- a real export ---------------------------------------------------------------
if [ ! -x "$bin" ]; then
  step "building llama-sweep"
  cargo build --release --locked
fi
scripts/fetch-demo-model.sh

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The fixture's relative paths resolve from its own folder; the copy gets the
# model's absolute path (so the exported model_path is absolute too) and
# writes its results under $tmp.
sweep="$tmp/export-check.toml"
sed -e "s#^output_dir = .*#output_dir = \"$tmp/reports\"#" \
    -e "s#\"\.\./\.\./models/#\"$root/models/#" \
    tests/fixtures/export-check.toml > "$sweep"
grep -q "^output_dir = \"$tmp/reports\"" "$sweep" && grep -q "\"$root/models/" "$sweep" \
  || { echo "could not rewrite the paths of tests/fixtures/export-check.toml" >&2; exit 1; }

step "sweep: tests/fixtures/export-check.toml (its trial and llama-sweep's reference trials)"
"$bin" run "$sweep"
# Every measured trial is exported with --trial and loaded: the fixture's own
# trial (its values differ from every Llama() default) and whatever reference
# trials llama-sweep adds (llama.cpp's defaults: n_gpu_layers -1, flash_attn
# "auto"), whichever of them won. The fixture's trial is the row with n_ctx
# 1024; its exported values must be these (ggml type ids: q8_0 8, q4_0 2).
expect=(
  --expect n_gpu_layers=0 --expect n_ctx=1024 --expect n_batch=64 --expect n_ubatch=32
  --expect n_threads=2 --expect n_threads_batch=1 --expect flash_attn=true
  --expect type_k=8 --expect type_v=2 --expect use_mmap=false --expect use_mlock=true
  --expect offload_kqv=false --expect split_mode=0 --expect main_gpu=0 --expect op_offload=false
  --expect "tensor_split=[1.0]"
  --expect verbose=false --expect temperature=0.3 --expect max_tokens=8
)
folder="$tmp/reports/export-check"
"$py" - "$folder/results.csv" > "$tmp/trials" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["status"] == "ok"]
mine = [r["trial_id"] for r in rows if r["n_ctx"] == "1024"]
if len(mine) != 1:
    sys.exit(f"{sys.argv[1]}: expected one ok trial with n_ctx 1024, found {len(mine)}")
print(mine[0])  # the fixture's trial first
print("\n".join(r["trial_id"] for r in rows if r["trial_id"] != mine[0]))
PY
mapfile -t trials < "$tmp/trials"
has_json=false
if "$bin" export --help | grep -q -- '--format'; then
  has_json=true
else
  echo "(this llama-sweep has no export --format: the JSON export is not checked)"
fi
for trial in "${trials[@]}"; do
  [ -n "$trial" ] || continue
  step "export of trial $trial"
  yaml="$tmp/$trial.yaml"
  "$bin" export "$folder" --trial "$trial" -o "$yaml"
  cat "$yaml"
  args=("$yaml")
  if $has_json; then
    "$bin" export "$folder" --trial "$trial" --format json -o "$tmp/$trial.json"
    cat "$tmp/$trial.json"
    echo
    args+=("$tmp/$trial.json")
  fi
  if [ "$trial" = "${trials[0]}" ]; then
    args+=("${expect[@]}")
    cp "$yaml" "$tmp/config.yaml"  # the negative checks below start from it
  fi
  step "loading trial $trial in llama-cpp-python $LLAMA_CPP_PYTHON_VERSION"
  "$py" tests/python/load_exported.py "${args[@]}"
done

# --- the checker must reject a bad config -------------------------------------
# Exit status 1 and the key named on stderr: an import error or a crash does
# not count as rejecting.
must_reject() { # name, key, sed expression applied to config.yaml
  local bad="$tmp/$1.yaml" status=0
  sed -e "$3" "$tmp/config.yaml" > "$bad"
  cmp -s "$bad" "$tmp/config.yaml" && { echo "negative check $1: sed changed nothing" >&2; exit 1; }
  "$py" tests/python/load_exported.py "$bad" 2> "$tmp/$1.err" > /dev/null || status=$?
  if [ "$status" -ne 1 ] || ! grep -q "key '$2'" "$tmp/$1.err"; then
    echo "negative check $1: load_exported.py should reject key $2 with status 1, got $status:" >&2
    cat "$tmp/$1.err" >&2
    exit 1
  fi
  echo "rejected as it should be ($1): $(grep "key '$2'" "$tmp/$1.err")"
}
step "negative checks"
must_reject unknown-key n_ctxx 's/^llm:$/llm:\n  n_ctxx: 5/'
must_reject bool-as-int use_mmap 's/^  use_mmap: .*/  use_mmap: 0/'
must_reject int-as-string n_batch 's/^  n_batch: \(.*\)/  n_batch: "\1"/'

step "OK: the exported config loads in llama-cpp-python $LLAMA_CPP_PYTHON_VERSION"
