#!/usr/bin/env python3
"""Writes a tiny mixture-of-experts test model: a GGUF of llama.cpp's `qwen3moe`
architecture with random weights (4 layers, embedding 64, 8 experts of which
2 are used per token, ~14 MiB). Output is noise; the model exists for speed and
placement tests of MoE models (expert tensors, `*_exps`), which the dense demo
model cannot exercise. The tokenizer is copied from the demo model, so the
vocabulary (49152 tokens) and chat template are real.

Usage: make-moe-model.py OUT DEMO_GGUF [--other-vocab]
(scripts/make-moe-model.sh wraps it). With --other-vocab, tokens 100 and 101
of the vocabulary trade places: to llama.cpp another vocabulary, a draft model
speculative decoding must refuse for the demo model (common_speculative_are_
compatible compares every token's text).

The file is deterministic (fixed numpy seed). An existing OUT that carries this
script's version (KV `llama_sweep.test_model.version`) is kept; otherwise it is
written to a temp file beside OUT and renamed over it.
"""
import os
import sys

import numpy as np
import gguf

VERSION = 1
VERSION_KEY = "llama_sweep.test_model.version"
ARCH = "qwen3moe"
NAME = "llama-sweep test-moe qwen3moe 4x64 8e2"
SEED = 42
STD = 0.02

N_LAYER, N_EMBD, N_CTX = 4, 64, 4096
N_EXPERT, N_EXPERT_USED, N_FF_EXP = 8, 2, 64
N_HEAD, N_HEAD_KV, HEAD_DIM = 4, 2, 16


def is_current(path, name):
    """True when path is a readable GGUF written by this script version."""
    try:
        f = gguf.GGUFReader(path).fields
        return (f["general.architecture"].contents() == ARCH
                and f["general.name"].contents() == name
                and f[VERSION_KEY].contents() == VERSION)
    except Exception:
        return False


def main(out, demo, other_vocab):
    name = NAME + (" other-vocab" if other_vocab else "")
    if os.path.exists(out) and is_current(out, name):
        print(f"test MoE model present: {out} ({os.path.getsize(out)} bytes)")
        return

    demo_fields = gguf.GGUFReader(demo).fields
    n_vocab = len(demo_fields["tokenizer.ggml.tokens"].data)
    rng = np.random.default_rng(SEED)

    # numpy shapes are ggml's ne reversed: ne = [n_embd, n_vocab] -> (n_vocab, n_embd).
    def weight(*shape):  # big matrices: F16, like a converted model's
        return (rng.standard_normal(shape, dtype=np.float32) * STD).astype(np.float16)

    def norm(n):  # norms: F32 ones (random norms would shrink every activation)
        return np.ones(n, dtype=np.float32)

    tensors = {
        "token_embd.weight": weight(n_vocab, N_EMBD),
        "output_norm.weight": norm(N_EMBD),
        "output.weight": weight(n_vocab, N_EMBD),  # untied from token_embd
    }
    for i in range(N_LAYER):
        b = f"blk.{i}."
        tensors.update({
            b + "attn_norm.weight": norm(N_EMBD),
            b + "attn_q.weight": weight(N_HEAD * HEAD_DIM, N_EMBD),          # ne [64, 64]
            b + "attn_k.weight": weight(N_HEAD_KV * HEAD_DIM, N_EMBD),       # ne [64, 32]
            b + "attn_v.weight": weight(N_HEAD_KV * HEAD_DIM, N_EMBD),       # ne [64, 32]
            b + "attn_output.weight": weight(N_EMBD, N_HEAD * HEAD_DIM),     # ne [64, 64]
            b + "attn_q_norm.weight": norm(HEAD_DIM),
            b + "attn_k_norm.weight": norm(HEAD_DIM),
            b + "ffn_norm.weight": norm(N_EMBD),
            # the router stays F32, as convert_hf_to_gguf.py keeps it
            b + "ffn_gate_inp.weight": weight(N_EXPERT, N_EMBD).astype(np.float32),  # ne [64, 8]
            b + "ffn_gate_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),  # ne [64, 64, 8]
            b + "ffn_up_exps.weight": weight(N_EXPERT, N_FF_EXP, N_EMBD),    # ne [64, 64, 8]
            b + "ffn_down_exps.weight": weight(N_EXPERT, N_EMBD, N_FF_EXP),  # ne [64, 64, 8]
        })

    tmp = f"{out}.tmp.{os.getpid()}"
    try:
        w = gguf.GGUFWriter(tmp, ARCH)  # writes general.architecture
        w.add_name(name)
        w.add_type("model")
        w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
        w.add_uint32("general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
        w.add_uint32(VERSION_KEY, VERSION)
        w.add_block_count(N_LAYER)
        w.add_context_length(N_CTX)
        w.add_embedding_length(N_EMBD)
        w.add_feed_forward_length(N_FF_EXP * N_EXPERT_USED)  # dense-equivalent; unused by qwen3moe
        w.add_expert_feed_forward_length(N_FF_EXP)
        w.add_expert_count(N_EXPERT)
        w.add_expert_used_count(N_EXPERT_USED)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
        w.add_rope_freq_base(10000.0)
        w.add_layer_norm_rms_eps(1e-6)
        # every tokenizer.* KV of the demo model, with its exact types
        for key, field in demo_fields.items():
            if key.startswith("tokenizer."):
                vtype = field.types[0]
                sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
                value = field.contents()
                if other_vocab and key == "tokenizer.ggml.tokens":
                    value[100], value[101] = value[101], value[100]
                w.add_key_value(key, value, vtype, sub_type=sub)
        for name, data in tensors.items():
            w.add_tensor(name, data)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"test MoE model written: {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--other-vocab"]
    if len(args) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT DEMO_GGUF [--other-vocab]")
    main(args[0], args[1], "--other-vocab" in sys.argv[1:])
