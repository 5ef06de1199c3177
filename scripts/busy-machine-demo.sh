#!/usr/bin/env bash
# What a sweep does on a machine that is not quiet, on the demo model: the
# examples of docs/overnight.md#a-busy-machine come from this script.
#
# 1. "stays busy": stress-ng keeps one core busy for the whole sweep; the
#    first trial is recorded `busy` and the sweep stops with exit status 11,
#    saying what kept the machine busy.
# 2. "transient": a quiet sweep, and stress-ng on one core for BURST seconds
#    from AFTER seconds in; the trial it disturbs is recorded `busy`, the
#    sweep waits for the machine to be quiet, goes on, and measures that
#    trial again after the others, before the confirmation.
#
# Each part prints its terminal output (without the setup lines) and its
# exit status. A demonstration, not a test: it fails only when a tool
# cannot run. Run it on an otherwise idle machine.
#
# Usage: scripts/busy-machine-demo.sh [MODEL.gguf]
#   WAIT_S=60      [trial] busy_wait_s of both sweeps (default 60)
#   AFTER=40 BURST=100  the transient load (defaults 40 s in, for 100 s)
#   KEEP=DIR       keep the sweeps' folders there (default: a temporary dir)
#   LLAMA_SWEEP_BIN the llama-sweep binary (default target/release/llama-sweep)
# Needs: stress-ng (apt-get install stress-ng), `cargo build --release`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "busy-machine-demo.sh: $1" >&2; exit "${2:-1}"; }
model="${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
bin="${LLAMA_SWEEP_BIN:-$root/target/release/llama-sweep}"
wait_s="${WAIT_S:-60}" after="${AFTER:-40}" burst="${BURST:-100}"
[ -f "$model" ] || die "no model at $model (scripts/fetch-demo-model.sh fetches the demo)" 2
[ -x "$bin" ] || die "no llama-sweep at $bin (cargo build --release)" 2
command -v stress-ng >/dev/null || die "stress-ng is not installed (apt-get install stress-ng)" 2

work="${KEEP:-$(mktemp -d)}"
mkdir -p "$work"
stress_pid=""
trap '[ -n "$stress_pid" ] && kill "$stress_pid" 2>/dev/null; true' EXIT

sweep_file() { # NAME
    cat > "$work/$1.toml" <<EOF
[sweep]
name = "$1"
seed = 42
output_dir = "$work/reports"

[[model]]
name = "smollm2-135m"
path = "$model"

[space]
n_gpu_layers = 0
n_ctx = 2048
n_batch = 512
n_threads = [1, 2]
flash_attn = ["on", "off"]

[workload]
prompt_tokens = 256
gen_tokens = 64
repetitions = 3
warmup = 1
request_prompt_tokens = 256
request_max_tokens = 64

[quality]
measure = false

[trial]
busy_wait_s = $wait_s
EOF
}

# The trial lines, the busy notes, the verdict and the ending.
show() { # NAME
    grep -hE '^\[[0-9]+/[0-9]+\]|^trial |^the machine is busy|^confirmed:|^Stopped:|^Recommended' \
        "$work/$1.err" "$work/$1.out" || true
}

echo "== 1. stress-ng on one core for the whole sweep (busy_wait_s = $wait_s)"
sweep_file stays-busy
stress-ng --cpu 1 --timeout 3600s >/dev/null 2>&1 &
stress_pid=$!
sleep 2
rc=0
"$bin" run "$work/stays-busy.toml" >"$work/stays-busy.out" 2>"$work/stays-busy.err" || rc=$?
kill "$stress_pid" 2>/dev/null || true
wait "$stress_pid" 2>/dev/null || true
stress_pid=""
show stays-busy
echo "exit status $rc (11: stopped, the machine stayed busy)"
[ "$rc" = 0 ] || [ "$rc" = 11 ] || die "the sweep failed (exit $rc): see $work/stays-busy.err"

sleep 5
echo
echo "== 2. stress-ng on one core for $burst s, from $after s into a quiet sweep"
sweep_file transient
(sleep "$after"; exec stress-ng --cpu 1 --timeout "${burst}s" >/dev/null 2>&1) &
stress_pid=$!
rc=0
"$bin" run "$work/transient.toml" >"$work/transient.out" 2>"$work/transient.err" || rc=$?
wait "$stress_pid" 2>/dev/null || true
stress_pid=""
show transient
echo "exit status $rc"
[ "$rc" = 0 ] || die "the sweep failed (exit $rc): see $work/transient.err"
echo "folders: $work/reports"
