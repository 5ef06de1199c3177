#!/usr/bin/env bash
# How many trials random and Bayesian search need to find a configuration
# within 2% of the best of a full grid, replayed against the three recorded
# grids in tests/fixtures (one real demo-model grid, two synthetic ones):
# the median over SEEDS seeds, next to the targets (bayes within 20% of the
# grid's size and at most half of random's trials). Then the time one bayes
# proposal takes with 200 observations.
#
# Usage: scripts/bench-search.sh            (SEEDS=20 by default)
# Takes about 10 minutes on 2 cores. Replays are deterministic for a seed;
# only the proposal times depend on the machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seeds="${SEEDS:-20}"
cargo build --release --locked --quiet
bin=target/release/llama-sweep

printf '%-32s %5s %18s %18s %10s %10s  %s\n' "grid (objective)" size "random: median" "bayes: median" "bayes/grid" "bayes/rand" "targets"
# The real grid was recorded for tg_tps; it is replayed for end-to-end
# latency too (the same rows, another question).
for case in real-demo-grid real-demo-grid:e2e_ms synthetic-gpu-offload synthetic-cpu-threads; do
  grid=${case%%:*}
  metric=()
  label="$grid (recorded objective)"
  if [ "$case" != "$grid" ]; then metric=(--metric "${case#*:}"); label="$grid (${case#*:})"; fi
  dir="tests/fixtures/$grid"
  size=$("$bin" replay "$dir" --strategy grid --csv | awk -F, 'NR==2 {print $9}')
  # Bayes gets 40% of the grid: enough to place a median target of 20%.
  bayes_budget=$(( (size * 2 + 4) / 5 ))
  random=$("$bin" replay "$dir" "${metric[@]}" --strategy random --seeds "$seeds" --csv | awk -F, '$2==2 {print $3" ["$4"-"$5"]"}')
  bayes=$("$bin" replay "$dir" "${metric[@]}" --strategy bayes --seeds "$seeds" --budget "$bayes_budget" --csv | awk -F, '$2==2 {print $3" ["$4"-"$5"]"}')
  r=${random%% *}; b=${bayes%% *}
  verdict=$(awk -v b="$b" -v r="$r" -v n="$size" 'BEGIN {
      ok1 = (b <= 0.2 * n) ? "met" : "MISSED"; ok2 = (b <= 0.5 * r) ? "met" : "MISSED";
      printf "%.2f %.2f <=20%%:%s <=half:%s", b / n, b / r, ok1, ok2 }')
  read -r frac ratio rest <<<"$verdict"
  printf '%-32s %5s %18s %18s %10s %10s  %s\n' "$label" "$size" "$random" "$bayes" "$frac" "$ratio" "$rest"
done
echo "(medians [quartiles] of trials until one within 2% of the grid's best was measured, $seeds seeds;"
echo " bayes budget: 40% of the grid, a seed that missed counts as budget+1)"

echo
echo "== one bayes proposal with 200 observations (synthetic-gpu-offload, 288 candidates)"
"$bin" replay tests/fixtures/synthetic-gpu-offload --strategy bayes --seeds 1 --budget 201 --csv |
  awk -F, 'NR==2 {printf "slowest proposal: %s ms (at %s observations)\n", $10, $11}'
