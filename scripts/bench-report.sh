#!/usr/bin/env bash
# How long `llama-sweep report` takes on a 10,000-row sweep, and how big the
# page gets (targets: under 5 s on 2 cores, under 5 MB). The rows are the
# synthetic 288-trial CPU grid (tests/fixtures/synthetic-cpu-threads)
# repeated over 35 values of n_gpu_layers with a small speed change and noise
# each, so every parameter is swept and the effects, front and plots have
# real work to do.
#
# Usage: scripts/bench-report.sh [ROWS] [RUNS]   (default 10000, 5)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rows="${1:-10000}"
runs="${2:-5}"
cd "$root"
cargo build --release --locked --quiet
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/big"
python3 - "$root/tests/fixtures/synthetic-cpu-threads" "$tmp/big" "$rows" <<'PY'
import csv, hashlib, json, random, shutil, sys
src, dst, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copy(f"{src}/manifest.json", f"{dst}/manifest.json")
with open(f"{src}/results.csv", newline="") as f:
    reader = csv.DictReader(f)
    fields, base = reader.fieldnames, list(reader)
rng = random.Random(7)
with open(f"{dst}/results.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    n = 0
    k = 0
    while n < want:
        for row in base:
            if n >= want:
                break
            r = dict(row)
            r["trial_id"] = hashlib.sha256(f"{row['trial_id']}-{k}".encode()).hexdigest()[:12]
            r["n_gpu_layers"] = str(k)
            r["seq"] = str(n)
            factor = (1 + 0.004 * k) * rng.uniform(0.97, 1.03)
            for m in ("pp_tps", "tg_tps"):
                for col in (f"{m}_mean",):
                    if r[col]:
                        r[col] = f"{float(r[col]) * factor:.4f}"
                if r[f"{m}_samples"]:
                    r[f"{m}_samples"] = ";".join(f"{float(x) * factor:.4f}" for x in r[f"{m}_samples"].split(";"))
            for m in ("ttft_ms", "e2e_ms"):
                if r[f"{m}_mean"]:
                    r[f"{m}_mean"] = f"{float(r[f'{m}_mean']) / factor:.4f}"
                if r[f"{m}_samples"]:
                    r[f"{m}_samples"] = ";".join(f"{float(x) / factor:.4f}" for x in r[f"{m}_samples"].split(";"))
            w.writerow(r)
            n += 1
        k += 1
PY
echo "rows: $(($(wc -l < "$tmp/big/results.csv") - 1)) in $tmp/big/results.csv"
times=()
for i in $(seq "$runs"); do
  rm -rf "$tmp/out"
  start=$(date +%s.%N)
  target/release/llama-sweep report "$tmp/big" -o "$tmp/out/report.html" 2>/dev/null
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc)")
done
bytes=$(stat -c %s "$tmp/out/report.html")
printf '%s\n' "${times[@]}" | sort -n | awk -v bytes="$bytes" -v runs="$runs" '
  { t[NR] = $1 }
  END {
    median = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    printf "report: median %.2f s (min %.2f, max %.2f over %d runs) = %.2f of the 5 s target\n", median, t[1], t[NR], runs, median / 5
    printf "report.html: %.2f MB = %.2f of the 5 MB target\n", bytes / 1e6, bytes / 5e6
  }'
ls "$tmp/out/plots" | wc -l | xargs echo "plot files:"
