#!/usr/bin/env bash
# Parity benchmark of the app's request figure, request_tps (the request's
# generation speed after its prompt: 1000 / time per output token after the
# first), against llama.cpp's own counts of the same thing, from the same
# llama.cpp source, flash attention on and off, the tools alternated:
#
# 1. llama-bench -p 0 -n GEN -d PROMPT: GEN tokens generated with PROMPT
#    tokens already in the cache, the kernels' view of the same answer
#    (without sampling). Against llama-sweep's in-process request_tps of a
#    PROMPT + GEN request.
# 2. llama-server's own timings of the request (predicted_per_second, its
#    `server_tg_tps_mean` column) and its client's clock (request_tps) in a
#    sweep with runtime = "server", against the in-process request_tps.
#
# Every round prints each figure with its spread; then, per test, the
# median ratio over rounds with min-max. A benchmark: it reports, and fails
# only when a tool fails.
#
# Usage: scripts/compare-request.sh [MODEL.gguf]
#   ROUNDS=3       alternations (default 3)
#   THREADS=2      CPU threads of every tool (default 2)
#   REPS=3         repetitions of every tool (default 3)
#   PROMPT=256 GEN=64  the request (default 256 + 64)
#   KEEP=DIR       keep every tool's output there (default: a temporary dir)
#   LLAMA_SWEEP_BIN the llama-sweep binary (default target/release/llama-sweep)
# Needs: cmake, a C++ compiler, python3 with pip, `cargo build --release`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "compare-request.sh: $1" >&2; exit "${2:-1}"; }

model="$(realpath "${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}")"
[ -f "$model" ] || die "no model at $model (scripts/setup.sh fetches the demo model)" 2
rounds="${ROUNDS:-3}" threads="${THREADS:-2}" reps="${REPS:-3}"
prompt="${PROMPT:-256}" gen="${GEN:-64}"
sweep_bin="${LLAMA_SWEEP_BIN:-$root/target/release/llama-sweep}"
for v in rounds threads reps prompt gen; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v^^} must be a positive integer, not '${!v}'" 2
done
[ -x "$sweep_bin" ] || (cd "$root" && cargo build --release --locked)

{ read -r bench_bin; read -r server_bin; } < <("$root/scripts/build-llama-tools.sh" llama-bench llama-server) || true
[ -x "${bench_bin:-}" ] && [ -x "${server_bin:-}" ] || die "llama-bench / llama-server did not build"

# shellcheck source=scripts/repack-route.sh
. "$root/scripts/repack-route.sh"
route_around_repack "$bench_bin" -m "$model" -p 16 -n 1 -r 1 -t 1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[ -z "${KEEP:-}" ] || { mkdir -p "$KEEP"; tmp="$(realpath "$KEEP")"; trap - EXIT; }
records="$tmp/records.tsv"
: > "$records"

# A one-model sweep of flash attention on and off with the app's request;
# through llama-server when $2 is "server".
sweep() {
  local dir="$1" runtime="$2"
  mkdir -p "$dir"
  cat > "$dir/sweep.toml" <<EOF
[sweep]
name = "request"
output_dir = "$dir"
model_cache = "$tmp/models"
seed = 7
$( [ "$runtime" = server ] && echo 'runtime = "server"' )

[[model]]
name = "m"
path = "$model"

[space]
n_gpu_layers = 0
n_threads = $threads
n_ctx = $(( (prompt + gen) * 2 ))
n_batch = 512
flash_attn = ["on", "off"]

[workload]
prompt_tokens = 32
gen_tokens = 8
repetitions = $reps
warmup = 1
request_prompt_tokens = $prompt
request_max_tokens = $gen

[quality]
measure = false

[confirm]
top = 0

[drift]
every = 0

[trial]
early_drop = 0
timeout_s = 600

[app]
server = "$server_bin"
EOF
  "$sweep_bin" run "$dir/sweep.toml" > "$dir/out.txt" 2>&1 || die "llama-sweep failed: $(tail -5 "$dir/out.txt")"
}

cat > "$tmp/request.py" <<'PY'
import csv, json, statistics, sys
csv.field_size_limit(1 << 24)

def rows(folder):
    planned = set(json.load(open(f"{folder}/request/plan.json"))["trial_ids"])
    out = {}
    for r in csv.DictReader(open(f"{folder}/request/results.csv")):
        if r["trial_id"] in planned:
            if r["status"] != "ok":
                sys.exit(f"{r['trial_id']}: {r['status']}: {r['error']}")
            out[r["flash_attn"]] = r
    return out

def f(r, k):
    return float(r[k]) if r.get(k) else None

mode, rnd, records = sys.argv[1], sys.argv[2], sys.argv[3]
with open(records, "a") as out:
    if mode == "round":
        bench_json, own, server = sys.argv[4], sys.argv[5], sys.argv[6]
        bench = {}
        for r in json.load(open(bench_json)):
            bench["on" if r["flash_attn"] else "off"] = (r["avg_ts"], r["stddev_ts"])
        mine, through = rows(own), rows(server)
        line = []
        for fa in ("on", "off"):
            m, s = mine[fa], through[fa]
            figures = [
                ("request_tps / llama-bench tg@d", f(m, "request_tps_mean"), bench[fa][0]),
                ("request_tps / llama-server's timings", f(m, "request_tps_mean"), f(s, "server_tg_tps_mean")),
                ("server clients / server's timings", f(s, "request_tps_mean"), f(s, "server_tg_tps_mean")),
            ]
            for what, a, b in figures:
                out.write(f"{what} (fa {fa})\t{rnd}\t{a}\t{b}\n")
            line.append(
                f"fa {fa}: in-process {f(m, 'request_tps_mean'):.1f} ±{f(m, 'request_tps_sd'):.1f}, "
                f"llama-bench {bench[fa][0]:.1f} ±{bench[fa][1]:.1f}, "
                f"server clients {f(s, 'request_tps_mean'):.1f}, server timings {f(s, 'server_tg_tps_mean'):.1f} t/s")
        print(f"  round {rnd}: " + "; ".join(line))
PY

for r in $(seq 1 "$rounds"); do
  d="$tmp/r$r"
  mkdir -p "$d"
  run_bench() { "$bench_bin" -m "$model" -t "$threads" -p 0 -n "$gen" -d "$prompt" -fa 1,0 -r "$reps" "${BENCH_REPACK[@]}" -o json > "$d/bench.json" 2> "$d/bench.err" || die "llama-bench failed: $(tail -3 "$d/bench.err")"; }
  if (( r % 2 )); then
    run_bench; sweep "$d/own" own; sweep "$d/server" server
  else
    sweep "$d/server" server; sweep "$d/own" own; run_bench
  fi
  python3 "$tmp/request.py" round "$r" "$records" "$d/bench.json" "$d/own" "$d/server"
done

python3 - "$records" <<'PY'
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    what, rnd, a, b = line.rstrip("\n").split("\t")
    by.setdefault(what, []).append(float(a) / float(b))
print("median ratio over rounds (min-max):")
for what, ratios in by.items():
    print(f"  {what}: {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
PY
