#!/usr/bin/env bash
# The parent's own cost per trial — spawning the child, the protocol,
# bookkeeping, the CSV append and sync, the Parquet rewrite — measured on the
# real binary with children that answer at once (`run --test-fault
# instant`: no model is loaded), then stated as a fraction of a 5 s trial.
# Then the parent's memory over a 1,000-trial sweep with a mock executor
# (examples/mock_sweep.rs).
#
# Usage: scripts/bench-overhead.sh [TRIALS]   (default 200)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
trials="${1:-200}"
cd "$root"
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example mock_sweep
model="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || scripts/fetch-demo-model.sh

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/sweep.toml" <<TOML
[sweep]
name = "overhead"
output_dir = "$tmp/reports"
[[model]]
path = "$model"
[space]
n_ctx = 1024
n_threads = { min = 1, max = $trials }
[workload]
prompt_tokens = 16
gen_tokens = 4
repetitions = 1
[drift]
every = 0
TOML

echo "== $trials trials through the real binary, children answering at once"
start=$(date +%s.%N)
target/release/llama-sweep run "$tmp/sweep.toml" --test-fault instant >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
end=$(date +%s.%N)
python3 - "$start" "$end" "$trials" <<'PY'
import sys
start, end, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
per = (end - start) / n
print(f"wall {end - start:.2f} s for {n} trials (probe and summary included): {per * 1000:.1f} ms per trial")
print(f"as a fraction of a 5 s trial: {per / 5 * 100:.2f}%  (target < 2%)")
PY

echo
echo "== memory and time per trial of the parent over 1,000 trials (mock executor)"
target/release/examples/mock_sweep 1000
