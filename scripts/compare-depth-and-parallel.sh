#!/usr/bin/env bash
# Parity benchmark of the filled-cache and parallel-sequence measurements:
# llama-sweep's workload.n_depth against llama-bench -d, and its n_parallel
# (with kv_unified) against llama-batched-bench, on the same model,
# parameters and llama.cpp source, the tools alternated in one run.
#
# 1. Builds llama-bench and llama-batched-bench with scripts/build-llama-tools.sh
#    (once): the tools' sources from PyPI's llama-cpp-python sdist, linked
#    against the llama.cpp libraries llama-cpp-sys-2 built for llama-sweep.
# 2. Depth: ROUNDS times, alternately (the order swapped every round):
#    llama-bench -p PROMPT -n GEN -r REPS -d 0,DEPTH, and a one-trial
#    llama-sweep with n_depth = [0, DEPTH] and the same settings (the request
#    test that llama-bench does not make shrunk to 1 token). Ratio
#    llama-sweep / llama-bench of pp and tg at depth 0 (pp_tps_mean,
#    tg_tps_mean) and at DEPTH (the at_depth column).
# 3. Parallel: ROUNDS times, alternately: llama-batched-bench -npp PROMPT
#    -ntg GEN -kvu (prompts not shared) with -npl the first N once (a warm-up,
#    dropped) and then NPL REPS times (the repetitions), and a
#    llama-sweep with n_parallel = [NPL], kv_unified = [true] and
#    n_depth = [PROMPT]. Its S_PP (N prompts decoded together from an empty
#    cache) against llama-sweep's depth-0 pp_tps_mean; its S_TG (N sequences,
#    each on top of its PROMPT-token prompt, one token each per step, all
#    sequences' tokens per second) against N x llama-sweep's tg at depth
#    PROMPT (tg is per sequence there). Ratios per N.
# 4. Server (PARTS=server): ROUNDS times, alternately: llama-batched-bench as
#    in 3, and a llama-sweep with runtime = "server" (every trial through the
#    llama-server scripts/build-llama-tools.sh builds from the same source),
#    n_parallel = [NPL], kv_unified = [true], its N streaming clients each
#    sending a PROMPT-token request for GEN tokens at once. Its aggregate
#    (aggregate_tps_mean: all clients' tokens per second while generating)
#    against llama-batched-bench's S_TG per N: what HTTP, streaming,
#    sampling and the server's slots cost over llama.cpp's batched decode.
# Every figure is printed per round with its spread (the standard deviation
# over repetitions), then the medians over rounds with min-max.
#
# Usage: scripts/compare-depth-and-parallel.sh [MODEL.gguf]
#   ROUNDS=3        alternations of each part (default 3)
#   THREADS=2       CPU threads of every tool (default 2)
#   REPS=3          repetitions of every tool (default 3)
#   PROMPT=64 GEN=16  pp and tg sizes (default 64, 16)
#   DEPTH=512       the depth of part 2 (default 512)
#   NPL=1,2,4       the parallel sequences of part 3 (default 1,2,4)
#   PARTS="depth parallel"  the parts to run: depth, parallel, server (default
#                   the first two)
#   TOLERANCE=0.12  fail (exit 1) when a median ratio is outside 1 ± this;
#                   unset: report only
#   KEEP=DIR        keep every tool's output there (default: a temporary dir)
#   LLAMA_SWEEP_BIN the llama-sweep binary (default target/release/llama-sweep,
#                   built with cargo when missing)
# Exit status: 0 ok, 1 outside the tolerance or a tool failed, 2 bad usage.
# Needs: cmake, a C++ compiler, python3 with pip, and `cargo build --release`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "compare-depth-and-parallel.sh: $1" >&2; exit "${2:-1}"; }

model_arg="${1:-$root/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
[ -f "$model_arg" ] || die "no model at $model_arg (scripts/setup.sh fetches the demo model)" 2
model="$(realpath "$model_arg")"
rounds="${ROUNDS:-3}"
threads="${THREADS:-2}"
reps="${REPS:-3}"
prompt="${PROMPT:-64}"
gen="${GEN:-16}"
depth="${DEPTH:-512}"
npl="${NPL:-1,2,4}"
parts="${PARTS:-depth parallel}"
tolerance="${TOLERANCE:-}"
sweep_bin="${LLAMA_SWEEP_BIN:-$root/target/release/llama-sweep}"

for v in rounds threads reps prompt gen depth; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "${v^^} must be a positive integer, not '${!v}'" 2
done
[[ "$npl" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "NPL must be a comma-separated list of positive integers, not '$npl'" 2
[ -z "$tolerance" ] || [[ "$tolerance" =~ ^[0-9]*\.?[0-9]+$ ]] || die "TOLERANCE must be a number, not '$tolerance'" 2
for p in $parts; do
  case "$p" in depth|parallel|server) ;; *) die "PARTS: unknown part '$p' (depth, parallel, server)" 2 ;; esac
done

if [ ! -x "$sweep_bin" ]; then
  [ -z "${LLAMA_SWEEP_BIN:-}" ] || die "LLAMA_SWEEP_BIN=$sweep_bin is not an executable" 2
  (cd "$root" && cargo build --release --locked)
fi

# --- 1. build llama-bench and llama-batched-bench ------------------------------
{ read -r bench_bin; read -r batched_bin; read -r server_bin; } < <("$root/scripts/build-llama-tools.sh" llama-bench llama-batched-bench llama-server) || true
[ -x "${bench_bin:-}" ] && [ -x "${batched_bin:-}" ] && [ -x "${server_bin:-}" ] || die "llama-bench / llama-batched-bench / llama-server did not build"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
out="$tmp"
[ -z "${KEEP:-}" ] || out="$(mkdir -p "$KEEP" && realpath "$KEEP")"
records="$out/records.tsv"
: > "$records"

# --- helpers --------------------------------------------------------------------
cat > "$tmp/parity.py" <<'PY'
"""Reads both tools' outputs, appends records, prints rounds and summaries.

A record (records.tsv): part, test, round, llama.cpp value, its sd (or empty),
llama-sweep value, its sd."""
import csv, json, statistics, sys

csv.field_size_limit(1 << 24)

def fmt(v, sd=None):
    if v is None:
        return "-"
    return f"{v:.1f}" + (f" ±{sd:.1f}" if sd is not None else "")

def sweep_rows(out_dir):
    """The plan's trials (not the reference trial of llama-server's defaults)."""
    planned = set(json.load(open(f"{out_dir}/parity/plan.json"))["trial_ids"])
    rows = [r for r in csv.DictReader(open(f"{out_dir}/parity/results.csv")) if r["trial_id"] in planned]
    if not rows:
        sys.exit(f"llama-sweep recorded none of its planned trials in {out_dir}/parity/results.csv")
    for r in rows:
        if r["status"] != "ok":
            sys.exit(f"llama-sweep trial {r['trial_id']}: {r['status']}: {r.get('error', '')}")
    return rows

def num(row, key):
    if key not in row:
        sys.exit(f"llama-sweep's results.csv has no column {key!r} (is this build older than the feature?)")
    return float(row[key]) if row[key] not in ("", None) else None

def at_depth(row, depth):
    if "at_depth" not in row:
        sys.exit("llama-sweep's results.csv has no at_depth column (is this build older than the feature?)")
    stats = json.loads(row["at_depth"]) if row["at_depth"].strip() else []
    hit = next((d for d in stats if d["depth"] == depth), None)
    if hit is None:
        sys.exit(f"llama-sweep trial {row['trial_id']}: no depth {depth} in at_depth ({row['at_depth']!r})")
    return hit

def append(records, part, test, rnd, ref, ref_sd, mine, mine_sd):
    with open(records, "a") as f:
        f.write("\t".join(str(x) if x is not None else "" for x in
                          (part, test, rnd, ref, ref_sd, mine, mine_sd)) + "\n")

def depth_round(rnd, bench_json, out_dir, depth, prompt, gen, records):
    rows = json.load(open(bench_json))
    def bench(kind, d):
        for r in rows:
            if r["n_depth"] == d and (r["n_prompt"] == prompt and r["n_gen"] == 0 if kind == "pp"
                                      else r["n_gen"] == gen and r["n_prompt"] == 0):
                return r["avg_ts"], r["stddev_ts"]
        sys.exit(f"llama-bench's output has no {kind} test at depth {d}")
    (row,) = sweep_rows(out_dir)
    at = at_depth(row, depth)
    mine = {
        ("pp", 0): (num(row, "pp_tps_mean"), num(row, "pp_tps_sd")),
        ("tg", 0): (num(row, "tg_tps_mean"), num(row, "tg_tps_sd")),
        ("pp", depth): (at["pp_tps_mean"], at["pp_tps_sd"]),
        ("tg", depth): (at["tg_tps_mean"], at["tg_tps_sd"]),
    }
    line = []
    for kind, d in mine:
        ref = bench(kind, d)
        test = f"{kind}{prompt if kind == 'pp' else gen} @ d{d}"
        append(records, "depth", test, rnd, *ref, *mine[(kind, d)])
        line.append(f"{test}: llama-bench {fmt(*ref)}, llama-sweep {fmt(*mine[(kind, d)])}")
    print(f"  round {rnd}: " + "; ".join(line))

def mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)

def parallel_round(rnd, batched_log, out_dir, depth, npl, records):
    results = []
    for text in open(batched_log, errors="replace"):
        text = text.strip()
        if text.startswith("{") and '"speed_tg"' in text:
            results.append(json.loads(text))
    # The first result is the warm-up run, the rest the repetitions.
    by_n = {}
    for r in results[1:]:
        by_n.setdefault(r["pl"], []).append(r)
    ref = {n: (mean_sd([r["speed_pp"] for r in rs]), mean_sd([r["speed_tg"] for r in rs]))
           for n, rs in by_n.items()}
    mine = {}
    for row in sweep_rows(out_dir):
        n = int(num(row, "n_parallel"))
        at = at_depth(row, depth)
        tg, tg_sd = at["tg_tps_mean"], at["tg_tps_sd"]
        mine[n] = ((num(row, "pp_tps_mean"), num(row, "pp_tps_sd")),
                   (n * tg, n * tg_sd if tg_sd is not None else None))
    line = []
    for n in npl:
        if n not in ref:
            sys.exit(f"llama-batched-bench printed no result for {n} sequences (see {batched_log})")
        if n not in mine:
            sys.exit(f"llama-sweep has no trial with n_parallel = {n}")
        for i, what in enumerate(("S_PP", "S_TG")):
            append(records, "parallel", f"{what} N={n}", rnd, *ref[n][i], *mine[n][i])
        line.append(f"N={n}: S_PP {fmt(*ref[n][0])} / {fmt(*mine[n][0])}, S_TG {fmt(*ref[n][1])} / {fmt(*mine[n][1])}")
    print(f"  round {rnd} (llama-batched-bench / llama-sweep): " + "; ".join(line))

def server_round(rnd, batched_log, out_dir, npl, records):
    s_tg = {}
    results = [json.loads(t) for t in (l.strip() for l in open(batched_log, errors="replace"))
               if t.startswith("{") and '"speed_tg"' in t]
    for r in results[1:]:  # the first is the warm-up
        s_tg.setdefault(r["pl"], []).append(r["speed_tg"])
    mine = {}
    for row in sweep_rows(out_dir):
        n = int(num(row, "n_parallel"))
        mine[n] = (num(row, "aggregate_tps_mean"), num(row, "aggregate_tps_sd"))
    line = []
    for n in npl:
        if n not in s_tg:
            sys.exit(f"llama-batched-bench printed no result for {n} sequences (see {batched_log})")
        if n not in mine or mine[n][0] is None:
            sys.exit(f"llama-sweep has no aggregate for n_parallel = {n}")
        ref = mean_sd(s_tg[n])
        append(records, "server", f"S_TG N={n}", rnd, *ref, *mine[n])
        line.append(f"N={n}: S_TG {fmt(*ref)} / {fmt(*mine[n])}")
    print(f"  round {rnd} (llama-batched-bench / llama-sweep through llama-server): " + "; ".join(line))

def spread(xs, digits):
    m = statistics.median(xs)
    return f"{m:.{digits}f} ({min(xs):.{digits}f}–{max(xs):.{digits}f})"

def summary(records, tolerance):
    tests = {}
    for line in open(records):
        part, test, _rnd, ref, _ref_sd, mine, _mine_sd = line.rstrip("\n").split("\t")
        tests.setdefault((part, test), []).append((float(ref), float(mine)))
    tol = float(tolerance) if tolerance else None
    titles = {
        "depth": ("llama-bench", "ratio llama-sweep / llama-bench"),
        "parallel": ("llama-batched-bench", "ratio llama-sweep / llama-batched-bench"),
        "server": ("llama-batched-bench", "ratio llama-sweep through llama-server / llama-batched-bench"),
    }
    bad = []
    for part in ("depth", "parallel", "server"):
        keys = [k for k in tests if k[0] == part]
        if not keys:
            continue
        ref_name, ratio_name = titles[part]
        print()
        print(f"{part}: median over rounds (min–max), t/s; {ratio_name} (1.000 = identical)")
        print(f"  {'test':<14} {ref_name:>24} {'llama-sweep':>24}   ratio")
        for key in keys:
            pairs = tests[key]
            refs = [p[0] for p in pairs]
            mine = [p[1] for p in pairs]
            ratios = [m / r for r, m in pairs]
            med = statistics.median(ratios)
            flag = ""
            if tol is not None and abs(med - 1) > tol:
                flag = "  <-- outside tolerance"
                bad.append(f"{part} {key[1]}: median ratio {med:.3f}")
            print(f"  {key[1]:<14} {spread(refs, 1):>24} {spread(mine, 1):>24}   "
                  f"{spread(ratios, 3)}, {len(ratios)} rounds{flag}")
    if tol is None:
        return
    print()
    if bad:
        print(f"PARITY FAILED (tolerance ±{tol:.0%}): " + "; ".join(bad))
        sys.exit(1)
    print(f"parity within ±{tol:.0%} for every test")

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "depth-round":
    rnd, bench_json, out_dir, depth, prompt, gen, records = args
    depth_round(int(rnd), bench_json, out_dir, int(depth), int(prompt), int(gen), records)
elif cmd == "parallel-round":
    rnd, batched_log, out_dir, depth, npl, records = args
    parallel_round(int(rnd), batched_log, out_dir, int(depth), [int(n) for n in npl.split(",")], records)
elif cmd == "server-round":
    rnd, batched_log, out_dir, npl, records = args
    server_round(int(rnd), batched_log, out_dir, [int(n) for n in npl.split(",")], records)
elif cmd == "summary":
    summary(*args)
else:
    sys.exit(f"unknown command {cmd}")
PY
parity() { python3 "$tmp/parity.py" "$@"; }

# sweep_toml DIR N_CTX N_BATCH N_DEPTH [EXTRA_SPACE_LINES]: a one-config sweep
# with the request test shrunk to 1 token; its outputs go to DIR/out.
sweep_toml() {
  mkdir -p "$1"
  cat > "$1/sweep.toml" <<EOF
[sweep]
name = "parity"
output_dir = "$1/out"
[[model]]
name = "m"
path = "$model"
[space]
n_gpu_layers = 0
n_ctx = $2
n_batch = $3
n_ubatch = $3
n_threads = $threads
flash_attn = "off"
use_mmap = true
${5:-}
[workload]
prompt_tokens = $prompt
gen_tokens = $gen
repetitions = $reps
warmup = 1
request_prompt_tokens = 1
request_max_tokens = 1
n_depth = $4
# llama-bench's figures are what is compared (the request is shrunk to
# a token when it is not measured): rank by one of them.
[objective]
metric = "tg_tps"
[trial]
timeout_s = 600
early_drop = 0
[quality]
measure = false
[confirm]
top = 0
[drift]
every = 0
EOF
}

# A sweep file llama-sweep refuses ends the script before anything is measured.
check_sweep() { # DIR WHAT
  "$sweep_bin" plan "$1/sweep.toml" > "$1/plan.log" 2>&1 || {
    tail -15 "$1/plan.log" >&2
    die "llama-sweep refuses the $2 sweep ($1/sweep.toml; does this build know $3?)"
  }
}

run_sweep() { # DIR LOG
  rm -rf "$1/out"
  local rc=0
  "$sweep_bin" run "$1/sweep.toml" > "$2" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -20 "$2" >&2
    die "llama-sweep run failed (exit $rc; log: $2)"
  fi
}

# One round of PART: llama.cpp's tool (the function TOOL) and llama-sweep on
# DIR's sweep, the order swapped every round; the sweep's results are kept
# beside the tool's output.
alternate() { # ROUND TOOL DIR PART
  if (( $1 % 2 )); then
    "$2"; run_sweep "$3" "$out/$4.sweep.$1.log"
  else
    run_sweep "$3" "$out/$4.sweep.$1.log"; "$2"
  fi
  [ "$out" = "$tmp" ] || cp "$3/out/parity/results.csv" "$out/$4.results.$1.csv"
}

# batched_setup CTX PART: llama-batched-bench's command for the parallel and
# server parts (-npl: the first N once as a warm-up, as llama-sweep and
# llama-bench warm up too, then the list REPS times: llama-batched-bench
# repeats nothing itself), and run_batched, which runs it for $round into
# $out/PART.batched.$round.jsonl.
batched_setup() {
  local batched_npl
  batched_npl="${npl%%,*}$(for _ in $(seq "$reps"); do printf ',%s' "$npl"; done)"
  batched_cmd=("$batched_bin" -m "$model" -c "$1" -b 512 -ub 512 -npp "$prompt" -ntg "$gen" -npl "$batched_npl"
               -t "$threads" -kvu -fa off -ngl 0 "${COMMON_REPACK[@]}" --output-format jsonl)
  batched_part="$2"
  echo "  ${batched_cmd[*]##*/}"
}
run_batched() {
  "${batched_cmd[@]}" > "$out/$batched_part.batched.$round.jsonl" 2> "$out/$batched_part.batched.$round.log" || {
    tail -20 "$out/$batched_part.batched.$round.log" >&2; die "llama-batched-bench failed: ${batched_cmd[*]}"; }
}

# shellcheck source=scripts/repack-route.sh
. "$root/scripts/repack-route.sh"
route_around_repack "$bench_bin" -m "$model" -p 16 -n 1 -r 1 -t 1

echo
echo "model: $model"
echo "llama-sweep: $("$sweep_bin" --version 2>/dev/null || echo "$sweep_bin")"

# --- 2. depth ------------------------------------------------------------------
if [[ " $parts " == *" depth "* ]]; then
  ctx=$(( depth + (prompt > gen ? prompt : gen) ))
  ctx=$(( (ctx + 255) / 256 * 256 ))
  sweep_toml "$tmp/depth" "$ctx" 512 "[0, $depth]"
  check_sweep "$tmp/depth" depth "workload.n_depth"
  echo
  echo "depth: pp $prompt, tg $gen, depths 0 and $depth, $reps repetitions, $threads threads," \
       "n_batch = n_ubatch = 512, flash_attn off, CPU (llama-sweep n_ctx $ctx)"
  bench_cmd=("$bench_bin" -m "$model" -p "$prompt" -n "$gen" -r "$reps" -t "$threads" -d "0,$depth"
             -b 512 -ub 512 -fa 0 -ngl 0 "${BENCH_REPACK[@]}" -o json)
  echo "  ${bench_cmd[*]##*/}"
  run_bench() {
    "${bench_cmd[@]}" > "$out/depth.bench.$round.json" 2> "$out/depth.bench.$round.log" || {
      tail -20 "$out/depth.bench.$round.log" >&2; die "llama-bench failed: ${bench_cmd[*]}"; }
  }
  for round in $(seq "$rounds"); do
    alternate "$round" run_bench "$tmp/depth" depth
    parity depth-round "$round" "$out/depth.bench.$round.json" "$tmp/depth/out" "$depth" "$prompt" "$gen" "$records"
  done
fi

# --- 3. parallel sequences --------------------------------------------------------
if [[ " $parts " == *" parallel "* ]]; then
  most=$(tr , '\n' <<<"$npl" | sort -n | tail -1)
  # Each sequence holds its prompt (the depth) and then a test: enough for
  # llama-sweep (depth + the larger test) and for llama-batched-bench (pp + tg).
  need=$(( most * (prompt + (prompt > gen ? prompt : gen)) ))
  ctx=2048
  (( ctx >= need )) || ctx=$(( (need + 255) / 256 * 256 ))
  (( most <= 512 )) || die "NPL: at most 512 sequences (n_batch 512)" 2
  sweep_toml "$tmp/parallel" "$ctx" 512 "[$prompt]" "n_parallel = [${npl//,/, }]
kv_unified = [true]"
  check_sweep "$tmp/parallel" parallel "space.n_parallel, space.kv_unified and workload.n_depth"
  echo
  echo "parallel: pp $prompt, tg $gen on top of it, N = $npl sequences, unified KV cache of $ctx," \
       "$threads threads, n_batch = n_ubatch = 512, flash_attn off, CPU, $reps repetitions"
  batched_setup "$ctx" parallel
  for round in $(seq "$rounds"); do
    alternate "$round" run_batched "$tmp/parallel" parallel
    parity parallel-round "$round" "$out/parallel.batched.$round.jsonl" "$tmp/parallel/out" "$prompt" "$npl" "$records"
  done
fi

# --- 4. parallel clients of a llama-server -----------------------------------------
if [[ " $parts " == *" server "* ]]; then
  most=$(tr , '\n' <<<"$npl" | sort -n | tail -1)
  need=$(( most * (prompt + gen) ))
  ctx=2048
  (( ctx >= need )) || ctx=$(( (need + 255) / 256 * 256 ))
  sweep_toml "$tmp/server" "$ctx" 512 "[]" "n_parallel = [${npl//,/, }]
kv_unified = [true]"
  sed -i -e 's/^\[sweep\]$/[sweep]\nruntime = "server"/' \
      -e "s/^request_prompt_tokens = 1$/request_prompt_tokens = $prompt/" \
      -e "s/^request_max_tokens = 1$/request_max_tokens = $gen/" "$tmp/server/sweep.toml"
  printf '[app]\nserver = "%s"\n' "$server_bin" >> "$tmp/server/sweep.toml"
  check_sweep "$tmp/server" server "runtime = \"server\""
  echo
  echo "server: N = $npl clients at once, each a $prompt-token prompt and $gen generated tokens," \
       "unified KV cache of $ctx, $threads threads, n_batch = n_ubatch = 512, flash_attn off, CPU," \
       "$reps repetitions"
  batched_setup "$ctx" server
  for round in $(seq "$rounds"); do
    alternate "$round" run_batched "$tmp/server" server
    parity server-round "$round" "$out/server.batched.$round.jsonl" "$tmp/server/out" "$npl" "$records"
  done
fi

parity summary "$records" "$tolerance"
