"""llama-sweep's driver for llama-cpp-python, run by the app's own interpreter.

Reads one JSON job on stdin and writes one JSON reply line on stdout.

probe:   what this llama-cpp-python is and can do (its version, the llama.cpp
         it carries, llama.cpp's system info, whether it can offload).
session: Llama(**llm) with the exported keyword arguments exactly as they are,
         then one streamed create_completion() per prompt (token ids), end of
         text suppressed with logit_bias (as llama-server's ignore_eos), at the
         app's temperature, timed on this process's clock (each token's
         arrival), with llama.cpp's own perf counters read before and after
         each request.
serve:   the same Llama(), loaded once and kept: replies ready, then one
         timed request per JSON line on stdin until "stop" (the confirmation's
         resident subject).

llama.cpp's log goes to stderr (the parent keeps it as the log file) through a
log callback of our own, also while Llama() silences stderr (verbose=False).
"""

import ctypes
import json
import os
import sys
import time

_keep = []  # the log callback must outlive every llama.cpp call


def reply(obj):
    sys.__stdout__.write(json.dumps(obj) + "\n")
    sys.__stdout__.flush()


def capture_log(llama_cpp):
    log = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")

    @llama_cpp.llama_log_callback
    def on_log(level, text, user_data):
        try:
            log.write(text.decode("utf-8", "replace"))
        except Exception:
            pass

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    _keep.extend([log, on_log])


def text_of(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def probe(llama_cpp):
    llama_cpp.llama_backend_init()
    version_fn = getattr(llama_cpp, "llama_version", None)
    return {
        "reply": "probe",
        "version": getattr(llama_cpp, "__version__", "unknown"),
        "llama_cpp": text_of(version_fn()) if version_fn else "",
        "system_info": text_of(llama_cpp.llama_print_system_info()),
        "supports_gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
    }


def load(llama_cpp, job):
    """Llama(**llm) as the app calls it; the load's ms and end-of-text ids."""
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(**job["llm"])
    load_ms = (time.perf_counter() - started) * 1000.0
    vocab = llm._model.vocab
    end_of_text = {
        t: float("-inf") for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
    }
    return llm, load_ms, end_of_text


def timed_request(llama_cpp, llm, end_of_text, prompt, max_tokens, temperature, seed):
    """One streamed completion, timed on this process's clock and by llama.cpp's counters."""
    before = llama_cpp.llama_perf_context(llm._ctx.ctx)
    sent = time.perf_counter()
    arrivals = []
    for chunk in llm.create_completion(
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        logit_bias=end_of_text,
        stream=True,
    ):
        now = time.perf_counter()
        if chunk["choices"][0]["text"]:
            arrivals.append(now)
    done = time.perf_counter()
    after = llama_cpp.llama_perf_context(llm._ctx.ctx)
    first = arrivals[0] if arrivals else done
    last = arrivals[-1] if arrivals else done
    return {
        "sent_to_first_ms": (first - sent) * 1000.0,
        "first_to_last_ms": (last - first) * 1000.0,
        # The gaps between the tokens as they reached the app.
        "gaps_ms": [(b - a) * 1000.0 for a, b in zip(arrivals, arrivals[1:])],
        # The last token is sampled but not decoded.
        "generated": after.n_eval - before.n_eval + 1,
        "eval_ms": after.t_eval_ms - before.t_eval_ms,
        "n_eval": after.n_eval - before.n_eval,
        "prompt_eval_ms": after.t_p_eval_ms - before.t_p_eval_ms,
        "n_prompt_eval": after.n_p_eval - before.n_p_eval,
    }


def session(llama_cpp, job):
    llm, load_ms, end_of_text = load(llama_cpp, job)
    requests = [
        timed_request(
            llama_cpp, llm, end_of_text, prompt, job["max_tokens"], job["temperature"], job["seed"] + i
        )
        for i, prompt in enumerate(job["prompts"])
    ]
    return {
        "reply": "session",
        "load_ms": load_ms,
        "n_threads": llm.context_params.n_threads,
        "n_threads_batch": llm.context_params.n_threads_batch,
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "requests": requests[job["warmup"]:],
    }


def serve(llama_cpp, job):
    """Resident: loads once, replies ready, then times one request per line
    read (a JSON object: prompt, max_tokens, temperature, seed) until "stop"
    or the end of the input."""
    llm, load_ms, end_of_text = load(llama_cpp, job)
    reply({"reply": "ready", "load_ms": load_ms})
    for line in sys.stdin:
        if line.strip() in ("", "stop"):
            break
        r = json.loads(line)
        timed = timed_request(
            llama_cpp, llm, end_of_text, r["prompt"], r["max_tokens"], r["temperature"], r["seed"]
        )
        reply({"reply": "request", **timed})
    return None


def main():
    job = json.loads(sys.stdin.readline())
    try:
        import llama_cpp
    except Exception as e:  # ImportError, or a library that will not load
        reply(
            {
                "reply": "failed",
                "reason": f"{sys.executable} cannot import llama_cpp ({type(e).__name__}: {e}): "
                "install llama-cpp-python in the app's environment, or name the interpreter that has it",
            }
        )
        return 3
    capture_log(llama_cpp)
    try:
        if job["mode"] == "probe":
            reply(probe(llama_cpp))
        elif job["mode"] == "serve":
            serve(llama_cpp, job)
        else:
            reply(session(llama_cpp, job))
    except Exception as e:
        reply({"reply": "failed", "reason": f"{type(e).__name__}: {e}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
