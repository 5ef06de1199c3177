#!/usr/bin/env bash
# Parity check: llama-sweep's quality measurement (`llama-sweep quality`)
# against llama.cpp's own perplexity tool (llama-perplexity), on the same
# models, evaluation text, context and llama.cpp source.
#
# llama-sweep follows tools/perplexity/perplexity.cpp: tokenize with
# add_special, cut into chunks of n_ctx tokens, BOS replaces each chunk's
# first token, score the second half; the KL divergence reads the reference's
# log-probabilities stored as uint16 like --kl-divergence-base. This script
# shows that both give the same figures.
#
# 1. Builds llama-perplexity and llama-quantize (if missing) with
#    scripts/build-llama-tools.sh, as compare-llama-bench.sh builds llama-bench:
#    the tools' sources, which the llama-cpp-sys-2 crate does not ship, from
#    PyPI's llama-cpp-python sdist, linked against the llama.cpp libraries
#    that crate built for llama-sweep.
# 2. llama.cpp: llama-perplexity on the reference with --kl-divergence-base
#    (its PPL and the stored log-probabilities), then --kl-divergence for each
#    model (and the reference itself). -b = -c so that llama.cpp evaluates one
#    sequence per batch (perplexity.cpp uses n_seq = n_batch / n_ctx sequences
#    per decode; llama-sweep always decodes one chunk at a time).
# 3. llama-sweep quality MODEL --reference REF --json for the same pairs.
# 4. A table of both tools' figures; exits 1 if a difference exceeds the
#    tolerance: PPL 0.5% relative; mean KLD 2% relative or 0.0005 absolute;
#    top-1 agreement 0.5 percentage points; and the reference against itself
#    must give a llama-sweep KLD < 1e-4 and top-1 = 100%, less the positions
#    where the stored reference has a tie at the top (two tokens within half
#    a quantization step, 16/65535/2 nats, both stored as 65535: the stored
#    argmax is then the first of them, which llama.cpp itself reports as a
#    disagreement; the script counts them in llama.cpp's base file).
#
# Usage: scripts/compare-llama-perplexity.sh [REF.gguf [MODEL.gguf ...]]
#   (default: the demo model's derived Q8_0 as reference; its Q6_K, Q4_K_M and
#   the Q4_1 source as models)
#   TEXT=FILE    evaluation text (default data/eval/moby-dick-ch1-15.txt)
#   N_CTX=512    tokens per chunk;  CHUNKS=8  chunks
#   THREADS=N    CPU threads of both tools (default: nproc)
#   KEEP=DIR     keep the logs and JSON there (default: a temporary dir)
# Needs: cmake, a C++ compiler, python3 with pip, and `cargo build --release`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
demo="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"
text="$(realpath "${TEXT:-$root/data/eval/moby-dick-ch1-15.txt}")"
n_ctx="${N_CTX:-512}"
chunks="${CHUNKS:-8}"
threads="${THREADS:-$(nproc)}"
work="$root/target/llama-bench"
sweep_bin="$root/target/release/llama-sweep"
mkdir -p "$work"

[ -x "$sweep_bin" ] || (cd "$root" && cargo build --release --locked)

# --- 1. build llama-perplexity ------------------------------------------------
{ read -r ppl_bin; read -r quantize_bin; } < <("$root/scripts/build-llama-tools.sh" llama-perplexity llama-quantize) || true
[ -x "${ppl_bin:-}" ] && [ -x "${quantize_bin:-}" ] || { echo "llama-perplexity / llama-quantize did not build" >&2; exit 1; }

# --- the models ---------------------------------------------------------------
# The demo sweep's derived quantizations when it has run; otherwise derived
# here with llama.cpp's quantizer (the same function llama-sweep calls).
derived() { # QUANT → a quantization of the demo model
  local f
  f="$(ls "$root"/models/derived/SmolLM2-135M-Instruct.Q4_1.*."$1".gguf 2>/dev/null | head -n1)"
  if [ -z "$f" ]; then
    f="$work/derived/SmolLM2-135M-Instruct.Q4_1.$1.gguf"
    if [ ! -f "$f" ]; then
      mkdir -p "$work/derived"
      "$quantize_bin" --allow-requantize "$demo" "$f.partial" "$1" > "$work/derived/quantize-$1.log" 2>&1 ||
        { tail -5 "$work/derived/quantize-$1.log" >&2; echo "llama-quantize $1 failed" >&2; exit 2; }
      mv "$f.partial" "$f"
    fi
  fi
  echo "$f"
}
if [ $# -ge 1 ]; then
  ref="$(realpath "$1")"; shift
else
  ref="$(derived Q8_0)"
fi
if [ $# -ge 1 ]; then
  models=(); for m in "$@"; do models+=("$(realpath "$m")"); done
else
  models=("$(derived Q6_K)" "$(derived Q4_K_M)" "$demo")
fi

# --- helpers --------------------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
out="$tmp"
[ -z "${KEEP:-}" ] || out="$(mkdir -p "$KEEP" && realpath "$KEEP")"
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.1f}')"; }
name() { basename "$1" .gguf; }

# --- 2. llama.cpp ---------------------------------------------------------------
echo
echo "reference: $(name "$ref")"
echo "text: $text"
echo "settings: n_ctx $n_ctx, $chunks chunks, n_batch $n_ctx (one sequence per decode), $threads threads"
# shellcheck source=scripts/repack-route.sh
. "$root/scripts/repack-route.sh"
route_around_repack "$ppl_bin" -m "$ref" -f "$text" -c 64 --chunks 1 -b 64 -t 1
lcpp=(-c "$n_ctx" --chunks "$chunks" -b "$n_ctx" -t "$threads" "${COMMON_REPACK[@]}")  # offload: both tools' default
: > "$out/times.tsv"
t0=$(now)
"$ppl_bin" -m "$ref" -f "$text" "${lcpp[@]}" --kl-divergence-base "$tmp/base.kld" > "$out/lcpp.ref.log" 2>&1 ||
  { tail -20 "$out/lcpp.ref.log"; echo "llama-perplexity failed on the reference"; exit 1; }
t1=$(now)
printf 'llama.cpp\treference (base)\t%s\n' "$(elapsed "$t0" "$t1")" >> "$out/times.tsv"
echo "  llama-perplexity, reference base: $(elapsed "$t0" "$t1") s"
for i in self "${!models[@]}"; do
  if [ "$i" = self ]; then m="$ref"; else m="${models[$i]}"; fi
  t0=$(now)
  "$ppl_bin" -m "$m" "${lcpp[@]}" --kl-divergence-base "$tmp/base.kld" --kl-divergence > "$out/lcpp.$i.log" 2>&1 ||
    { tail -20 "$out/lcpp.$i.log"; echo "llama-perplexity --kl-divergence failed on $m"; exit 1; }
  t1=$(now)
  printf 'llama.cpp\t%s\t%s\n' "$(name "$m")" "$(elapsed "$t0" "$t1")" >> "$out/times.tsv"
  echo "  llama-perplexity --kl-divergence, $(name "$m"): $(elapsed "$t0" "$t1") s"
done

# --- 3. llama-sweep -------------------------------------------------------------
for i in self "${!models[@]}"; do
  if [ "$i" = self ]; then m="$ref"; else m="${models[$i]}"; fi
  t0=$(now)
  "$sweep_bin" quality "$m" --reference "$ref" --text "$text" --n-ctx "$n_ctx" --chunks "$chunks" \
    --threads "$threads" --json > "$out/sweep.$i.json" 2> "$out/sweep.$i.log" ||
    { cat "$out/sweep.$i.log"; echo "llama-sweep quality failed on $m"; exit 1; }
  t1=$(now)
  printf 'llama-sweep\t%s\t%s\n' "$(name "$m")" "$(elapsed "$t0" "$t1")" >> "$out/times.tsv"
  echo "  llama-sweep quality --reference, $(name "$m"): $(elapsed "$t0" "$t1") s (reference + model)"
done

# --- 4. compare -----------------------------------------------------------------
echo
python3 - "$out" "$tmp/base.kld" self "${!models[@]}" -- "$ref" "${models[@]}" <<'EOF'
import json, os, re, sys

import array, struct

out, base_path = sys.argv[1], sys.argv[2]
sep = sys.argv.index("--")
keys = sys.argv[3:sep]
paths = sys.argv[sep + 1:]
names = [os.path.basename(p).removesuffix(".gguf") for p in paths]
ref_name = names[0]

def top_ties(path):
    """Scored positions of llama.cpp's --kl-divergence-base file whose top
    stored log-probability (65535) is shared by more than one token."""
    with open(path, "rb") as f:
        if f.read(8) != b"_logits_":
            sys.exit(f"{path}: not a llama.cpp log-probability file")
        n_ctx, n_vocab, n_chunk = struct.unpack("<Iii", f.read(12))
        f.seek(20 + 4 * n_ctx * n_chunk)
        nv = 2 * ((n_vocab + 1) // 2) + 4
        rows, ties = n_chunk * (n_ctx - 1 - n_ctx // 2), 0
        for _ in range(rows):
            a = array.array("H")
            a.frombytes(f.read(2 * nv))
            v = a[4:4 + n_vocab]
            ties += v.count(max(v)) > 1
    return rows, ties

def grab(log, pattern):
    m = re.search(pattern, log, re.M)
    if not m:
        sys.exit(f"cannot find /{pattern}/ in llama-perplexity's output")
    return float(m.group(1))

NUM = r"\s*([-+0-9.eE]+|nan|inf)"
def lcpp(key):
    log = open(os.path.join(out, f"lcpp.{key}.log"), encoding="utf-8", errors="replace").read()
    return {
        "ppl": grab(log, r"^Mean PPL\(Q\)\s*:" + NUM),
        "base_ppl": grab(log, r"^Mean PPL\(base\)\s*:" + NUM),
        "kld": grab(log, r"^Mean    KLD:" + NUM),
        "p99": grab(log, r"^99\.0%   KLD:" + NUM),
        "max": grab(log, r"^Maximum KLD:" + NUM),
        "top1": grab(log, r"^Same top p:" + NUM),
    }

def sweep(key):
    j = json.load(open(os.path.join(out, f"sweep.{key}.json")))
    m = j["model"]
    return j, {"ppl": m["ppl"], "base_ppl": m["base_ppl"], "kld": m["kld_mean"], "p99": m["kld_p99"],
               "max": m["kld_max"], "top1": m["top1_pct"], "tokens": m["tokens_scored"]}

def rel(a, b):
    return (b - a) / a if abs(a) > 1e-9 else float("nan")

failures = []
ref_log = open(os.path.join(out, "lcpp.ref.log"), encoding="utf-8", errors="replace").read()
ref_ppl_lcpp = grab(ref_log, r"Final estimate: PPL =" + NUM)
j, _ = sweep("self")
ref_ppl_sweep = j["reference"]["ppl"]
r = rel(ref_ppl_lcpp, ref_ppl_sweep)
ok = abs(r) <= 0.005
if not ok:
    failures.append(f"{ref_name} (reference run): PPL differs by {100*r:+.3f}%")

rows = []
for key, name in zip(keys, names):
    a = lcpp(key)
    _, b = sweep(key)
    rows.append((key, name, a, b))

w = max(len(n) for n in names) + 24
hdr = (f"{'model':<{w}} {'PPL llama.cpp':>13} {'llama-sweep':>11} {'Δ%':>7}  "
       f"{'KLD llama.cpp':>13} {'llama-sweep':>11} {'Δabs':>9} {'Δ%':>7}  "
       f"{'p99 llama.cpp':>13} {'llama-sweep':>11}  {'top-1 llama.cpp':>15} {'llama-sweep':>11} {'Δpp':>6}")
print(hdr)
print("-" * len(hdr))
print(f"{ref_name + ' (reference, PPL only)':<{w}} {ref_ppl_lcpp:>13.4f} {ref_ppl_sweep:>11.4f} {100*r:>+7.3f}")
for key, name, a, b in rows:
    label = name + (" (vs itself)" if key == "self" else "")
    r_ppl = rel(a["ppl"], b["ppl"])
    d_kld = b["kld"] - a["kld"]
    r_kld = rel(a["kld"], b["kld"])
    d_top = b["top1"] - a["top1"]
    print(f"{label:<{w}} {a['ppl']:>13.4f} {b['ppl']:>11.4f} {100*r_ppl:>+7.3f}  "
          f"{a['kld']:>13.6f} {b['kld']:>11.6f} {d_kld:>+9.6f} {100*r_kld:>+7.2f}  "
          f"{a['p99']:>13.6f} {b['p99']:>11.6f}  {a['top1']:>15.3f} {b['top1']:>11.3f} {d_top:>+6.3f}")
    if abs(r_ppl) > 0.005:
        failures.append(f"{label}: PPL differs by {100*r_ppl:+.3f}% (tolerance 0.5%)")
    if abs(d_kld) > 0.0005 and not abs(r_kld) <= 0.02:
        failures.append(f"{label}: mean KLD differs by {d_kld:+.6f} ({100*r_kld:+.2f}%; tolerance 2% or 0.0005)")
    if abs(d_top) > 0.5:
        failures.append(f"{label}: top-1 differs by {d_top:+.3f} pp (tolerance 0.5)")
    if key == "self":
        if not b["kld"] < 1e-4:
            failures.append(f"{label}: llama-sweep's KLD of the reference against itself is {b['kld']:.3g} (must be < 1e-4)")
        rows_n, ties = top_ties(base_path)
        floor = 100.0 * (rows_n - ties) / rows_n
        self_note = (f"reference against itself: {ties} of {rows_n} scored positions have a tie at the top of "
                     f"the stored log-probabilities, so top-1 must be >= {floor:.3f}% (100% less the ties)")
        if b["top1"] < floor - 1e-9:
            failures.append(f"{label}: llama-sweep's top-1 of the reference against itself is {b['top1']:.3f}% (must be >= {floor:.3f}%)")
print()
print(f"tokens scored by llama-sweep: {rows[0][3]['tokens']} per model "
      f"(llama.cpp: n_ctx - 1 - n_ctx/2 per chunk)")
print(self_note)
print("wall time, s:")
for line in open(os.path.join(out, "times.tsv")):
    tool, what, s = line.rstrip("\n").split("\t")
    print(f"  {tool:<12} {what:<{w - 13}} {s:>7}")
print()
if failures:
    print("FAIL: outside the tolerance:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("OK: llama-sweep and llama.cpp agree within the tolerance "
      "(PPL 0.5%, KLD 2% or 0.0005, top-1 0.5 pp; self KLD < 1e-4, self top-1 100% less ties)")
EOF
