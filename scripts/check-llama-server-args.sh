#!/usr/bin/env bash
# Check that `llama-sweep export --format server-args` and `--format env`
# say what they mean to llama.cpp: a tiny program parses them with the
# vendored llama.cpp's own common_params_parse (as llama-server does, with
# LLAMA_EXAMPLE_SERVER) and prints the settings it got, which must be the
# trial's. The trial is a row of tests/fixtures/real-demo-grid edited into the
# hard cases: all GPU layers, no mmap, no KV offload, quantized KV caches,
# flash attention "auto", a batch thread count of its own, a model path with
# spaces, quotes and a $, and every placement and threadpool knob away from
# its default (MoE experts on the CPU, a tensor override, a row split with
# proportions, no offload devices, no op offload, poll, priority, CPU mask),
# and llama-server's own knobs (speculative decoding with a draft model whose
# path has a space, its draft sizes and probability, no continuous batching).
#
# Links against the llama.cpp libraries scripts/build-llama-tools.sh linked
# its tools with (listed in target/llama-bench/build*/link-libraries.txt: the
# ones llama-sweep itself links, or a second compile of them); run that first.
# No model is loaded.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="${LLAMA_SWEEP_BIN:-$root/target/release/llama-sweep}"
src="$root/target/llama-bench/src"
libs=""
for build in "$root/target/llama-bench/build" "$root/target/llama-bench/build-full"; do
  if [ -f "$build/link-libraries.txt" ]; then libs="$build/link-libraries.txt"; break; fi
done
[ -n "$libs" ] || {
  echo "no llama.cpp libraries listed in target/llama-bench/build*/link-libraries.txt:" \
       "run scripts/build-llama-tools.sh first" >&2
  exit 1
}
mapfile -t link_libraries < "$libs"
[ -x "$bin" ] || { echo "no $bin: run cargo build --release" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat >"$work/parse.cpp" <<'CPP'
#include "arg.h"
#include "common.h"
#include "speculative.h"
#include <cstdio>
int main(int argc, char ** argv) {
    common_params p;
    if (!common_params_parse(argc, argv, p, LLAMA_EXAMPLE_SERVER)) { return 1; }
    printf("model=%s\n", p.model.path.c_str());
    printf("n_gpu_layers=%d\n", p.n_gpu_layers);
    printf("n_ctx=%d n_batch=%d n_ubatch=%d\n", p.n_ctx, p.n_batch, p.n_ubatch);
    printf("n_threads=%d n_threads_batch=%d\n", p.cpuparams.n_threads, p.cpuparams_batch.n_threads);
    printf("flash_attn=%s\n", llama_flash_attn_type_name(p.flash_attn_type));
    printf("type_k=%s type_v=%s\n", ggml_type_name(p.cache_type_k), ggml_type_name(p.cache_type_v));
    printf("load_mode=%s no_kv_offload=%d fit=%d\n", llama_load_mode_name(p.load_mode), p.no_kv_offload, p.fit_params);
    printf("overrides=");
    for (const auto & o : p.tensor_buft_overrides) {
        if (o.pattern) { printf("%s=%s;", o.pattern, ggml_backend_buft_name(o.buft)); }
    }
    printf("\nsplit_mode=%d tensor_split=%g,%g main_gpu=%d devices=%zu\n", (int) p.split_mode,
           p.tensor_split[0], p.tensor_split[1], p.main_gpu, p.devices.size());
    printf("op_offload=%d poll=%u prio=%d cpumask=%d%d%d strict=%d\n", !p.no_op_offload,
           p.cpuparams.poll, (int) p.cpuparams.priority, p.cpuparams.cpumask[0],
           p.cpuparams.cpumask[1], p.cpuparams.cpumask[2], p.cpuparams.strict_cpu);
    printf("spec=%s draft=%s n_max=%d n_min=%d p_min=%g cont_batching=%d\n",
           common_speculative_type_name_str(p.speculative.types).c_str(),
           p.speculative.draft.mparams.path.c_str(), p.speculative.draft.n_max,
           p.speculative.draft.n_min, p.speculative.draft.p_min, p.cont_batching);
    return 0;
}
CPP
g++ -std=c++17 -I"$src/common" -I"$src/include" -I"$src/ggml/include" -I"$src/vendor" \
  "$work/parse.cpp" -o "$work/llama-server" "${link_libraries[@]}" -lpthread -lgomp -ldl

mkdir "$work/sweep"
cp tests/fixtures/real-demo-grid/manifest.json "$work/sweep/"
python3 - "$work/sweep/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open("tests/fixtures/real-demo-grid/results.csv")))
row = next(r for r in rows if r["status"] == "ok")
row.update(trial_id="hardcase0001", n_gpu_layers="-1", n_ctx="1024", n_batch="256",
           n_ubatch="128", n_threads="2", n_threads_batch="1", flash_attn="auto",
           flash_attn_resolved="", type_k="q8_0", type_v="q4_0", use_mmap="false",
           offload_kqv="false", model_path="/models/my models/it's \"best\" $x.gguf",
           n_cpu_moe="2", override_tensor="token_embd=CPU", split_mode="row",
           tensor_split="3,1", main_gpu="1", devices="none", op_offload="false",
           poll="10", prio="1", cpu_mask="0x5", cpu_strict="true",
           spec_type="draft-simple", draft_model="/models/draft model.gguf", draft_n_max="8",
           draft_n_min="2", draft_p_min="0.75", cont_batching="false")
w = csv.DictWriter(open(sys.argv[1], "w", newline=""), fieldnames=row.keys())
w.writeheader()
w.writerow(row)
PY

# (--spec-type adds its kinds to llama.cpp's default list, "none": it
# reads "none,draft-simple", which speculates with the draft model.)
expected() {  # what llama.cpp ends up with: $1 batch threads, $2 poll, $3 prio,
             # $4 CPUs 0-2 in the mask, $5 strict, $6 op offload
  cat <<TXT
model=/models/my models/it's "best" \$x.gguf
n_gpu_layers=-2
n_ctx=1024 n_batch=256 n_ubatch=128
n_threads=2 n_threads_batch=$1
flash_attn=auto
type_k=q8_0 type_v=q4_0
load_mode=none no_kv_offload=1 fit=0
overrides=token_embd=CPU;blk\\.0\\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU;blk\\.1\\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU;
split_mode=2 tensor_split=3,1 main_gpu=1 devices=1
op_offload=$6 poll=$2 prio=$3 cpumask=$4 strict=$5
spec=none,draft-simple draft=/models/draft model.gguf n_max=8 n_min=2 p_min=0.75 cont_batching=0
TXT
}

"$bin" export "$work/sweep" --format server-args -o "$work/server-args.txt"
got="$(cd "$work" && PATH="$work:$PATH" sh server-args.txt 2>/dev/null)"
diff <(expected 1 10 1 101 1 0) <(echo "$got") || { echo "server-args: llama.cpp read something else" >&2; exit 1; }
echo "server-args: llama.cpp reads the trial's settings"

"$bin" export "$work/sweep" --format env -o "$work/llama-server.env"
got="$(set -a; . "$work/llama-server.env"; set +a; "$work/llama-server" 2>/dev/null)"
# --threads-batch, --poll, --prio, -C, --cpu-strict and --no-op-offload have
# no variables:
# llama.cpp keeps its defaults, and the file says to pass them.
diff <(expected 2 50 0 000 0 1) <(echo "$got") || { echo "env: llama.cpp read something else" >&2; exit 1; }
grep -q '^# --poll 10: no LLAMA_ARG_ variable: pass --poll 10' "$work/llama-server.env"
grep -q '^# -tb 1: no LLAMA_ARG_ variable: pass -tb 1' "$work/llama-server.env"
echo "env: llama.cpp reads the trial's settings (and the file says to pass -tb 1)"
