#!/usr/bin/env bash
# Checks llama-sweep's host memory bandwidth figure (`llama-sweep doctor`,
# "Memory bandwidth / read") against two independent measurements of the
# same thing, RAM read bandwidth with one reader per logical core:
#
#   sysbench  `sysbench memory --memory-oper=read --memory-block-size=1G`
#             (installed with apt-get when missing)
#   numpy     N processes, each summing its float64 share of 1 GiB, started
#             together at a barrier; best of 7 (numpy goes into a venv under
#             /tmp when python3 lacks it)
#
# Prints the three figures in GB/s (10^9 bytes/s) and llama-sweep's ratio to
# each. Exits 1 when llama-sweep's figure is outside 0.33x-3x of an
# independent one (the tools read memory differently, so they need not
# agree closely; a figure outside that range means one is measuring caches
# or is broken), 2 when no independent figure could be taken.
#
# Usage: scripts/check-bandwidth.sh          (SKIP_SYSBENCH=1 / SKIP_NUMPY=1)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/llama-sweep"
threads="$(nproc)"
[ -x "$bin" ] || (cd "$root" && cargo build --release --locked)

# --- llama-sweep ------------------------------------------------------------------
empty="$(mktemp -d)"
trap 'rm -rf "$empty"' EXIT
doctor="$(cd "$empty" && "$bin" doctor)"
ours="$(awk '$1 == "read" { print $2; exit }' <<<"$doctor")"
method="$(awk '$1 == "method" { $1 = ""; sub(/^ +/, ""); print; exit }' <<<"$doctor")"
[ -n "$ours" ] || { echo "no bandwidth line in llama-sweep doctor's output:" >&2; echo "$doctor" >&2; exit 1; }

# --- sysbench ---------------------------------------------------------------------
sysbench_gb=""
if [ -z "${SKIP_SYSBENCH:-}" ]; then
  if ! command -v sysbench >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
    else
      echo "sysbench is missing (apt-get install sysbench); skipping it" >&2
    fi
  fi
  if command -v sysbench >/dev/null; then
    # Each thread reads its own 1 GiB block, written once before timing.
    out="$(sysbench memory --memory-oper=read --memory-block-size=1G \
             --memory-total-size="$((threads * 8))G" --threads="$threads" run)"
    mib_s="$(grep -oP 'MiB transferred \(\K[0-9.]+(?= MiB/sec)' <<<"$out")"
    sysbench_gb="$(python3 -c "print(f'{$mib_s * 1048576 / 1e9:.2f}')")"
  fi
fi

# --- numpy ------------------------------------------------------------------------
numpy_gb=""
if [ -z "${SKIP_NUMPY:-}" ]; then
  py=python3
  if ! python3 -c 'import numpy' 2>/dev/null; then
    venv=/tmp/llama-sweep-bandwidth-venv
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet numpy
    py="$venv/bin/python"
  fi
  numpy_gb="$("$py" - "$threads" <<'EOF'
import multiprocessing as mp, sys, time
import numpy as np

def reader(share, start, done, runs):
    a = np.ones(share // 8, dtype=np.float64)  # written, so really in RAM
    for _ in range(runs):
        start.wait()
        a.sum()
        done.wait()

if __name__ == "__main__":
    procs, runs, total = int(sys.argv[1]), 7, 1 << 30
    start, done = mp.Barrier(procs + 1), mp.Barrier(procs + 1)
    workers = [mp.Process(target=reader, args=(total // procs, start, done, runs)) for _ in range(procs)]
    for w in workers:
        w.start()
    best = float("inf")
    for _ in range(runs):
        start.wait()
        t0 = time.perf_counter()
        done.wait()
        best = min(best, time.perf_counter() - t0)
    for w in workers:
        w.join()
    print(f"{(total // procs // 8 * 8 * procs) / best / 1e9:.2f}")
EOF
)"
fi

# --- compare ----------------------------------------------------------------------
echo "host RAM read bandwidth, $threads threads ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
printf '  %-12s %8s GB/s  (%s)\n' "llama-sweep" "$ours" "$method"
status=0
checked=0
for pair in "sysbench:$sysbench_gb" "numpy:$numpy_gb"; do
  name="${pair%%:*}" gb="${pair#*:}"
  [ -n "$gb" ] || continue
  checked=1
  verdict="$(python3 -c "
r = $ours / $gb
print(f'{r:.2f} {\"ok\" if 1/3 <= r <= 3 else \"OUT OF RANGE\"}')")"
  printf '  %-12s %8s GB/s  llama-sweep / %s = %s\n' "$name" "$gb" "$name" "$verdict"
  [[ "$verdict" == *ok ]] || status=1
done
[ "$checked" = 1 ] || { echo "no independent measurement could be taken" >&2; exit 2; }
[ "$status" = 0 ] && echo "llama-sweep's figure is within 0.33x-3x of every independent one"
exit "$status"
