#!/usr/bin/env python3
"""What llama-sweep's llama-cpp-python driver costs the request it times.

Runs the driver's own code (src/runtime/llama_cpp_python.py: load, then
timed_request) on the demo model in this interpreter's llama-cpp-python,
the app's 256 + 64 request, and alternates it with and without the
driver's end-of-text suppression (logit_bias over the end-of-generation
tokens, which llama-cpp-python applies through a Python logits processor at
every token). For each request it compares the generation speed on the
app's clock (tokens after the first over the time from the first to the
last, as llama-sweep defines it) with llama.cpp's own counters in the same
process, and prints the medians with their ranges.

    ~/.cache/llama-sweep/llama-cpp-python-venv/bin/python \\
        scripts/python-harness-overhead.py models/SmolLM2-135M-Instruct.Q4_1.gguf

ROUNDS (default 10) pairs are measured, the order alternated per pair; a
pair where an answer ended early (at an end of text, without the
suppression) is left out of the ratio with/without.
"""

import os
import random
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
driver = {"__name__": "llama_sweep_driver"}
with open(os.path.join(HERE, "..", "src", "runtime", "llama_cpp_python.py")) as f:
    exec(f.read(), driver)

import llama_cpp  # noqa: E402


def spread(values):
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    model = sys.argv[1]
    rounds = int(os.environ.get("ROUNDS", "10"))
    threads = int(os.environ.get("THREADS", "2"))
    job = {
        "llm": {
            "model_path": model,
            "n_ctx": 512,
            "n_batch": 512,
            "n_threads": threads,
            "n_threads_batch": threads,
            "n_gpu_layers": 0,
            "flash_attn": False,
            "verbose": False,
        }
    }
    llm, _, end_of_text = driver["load"](llama_cpp, job)
    rng = random.Random(1)
    n_vocab = llm.n_vocab()
    clock_over_counters = {"with": [], "without": []}
    with_over_without = []
    for r in range(-1, rounds):  # round -1 warms up
        order = ["with", "without"] if r % 2 == 0 else ["without", "with"]
        rates = {}
        for name in order:
            prompt = [rng.randrange(n_vocab) for _ in range(256)]
            bias = end_of_text if name == "with" else {}
            t = driver["timed_request"](llama_cpp, llm, bias, prompt, 64, 0.7, 1000 + r)
            # Without the suppression an answer may end early at an end of
            # text: only whole answers are compared.
            if t["generated"] < 64 or t["first_to_last_ms"] <= 0 or t["eval_ms"] <= 0:
                continue
            clock = (t["generated"] - 1) / (t["first_to_last_ms"] / 1000.0)
            counted = t["n_eval"] / (t["eval_ms"] / 1000.0)
            rates[name] = clock
            if r >= 0:
                clock_over_counters[name].append(clock / counted)
        if r >= 0 and len(rates) == 2:
            with_over_without.append(rates["with"] / rates["without"])
    print(f"llama-cpp-python {llama_cpp.__version__}, {threads} threads, {rounds} pairs")
    for name in ("with", "without"):
        print(
            f"app's clock / llama.cpp's counters, {name} logit_bias: "
            f"{spread(clock_over_counters[name])}"
        )
    print(
        f"generation on the app's clock, with / without logit_bias: {spread(with_over_without)} "
        f"over {len(with_over_without)} pairs of whole answers"
    )


if __name__ == "__main__":
    main()
