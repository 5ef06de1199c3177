"""Check that a config.yaml exported by llama-sweep loads in real llama-cpp-python.

Usage:
    load_exported.py CONFIG_YAML [LLM_JSON] [--expect KEY=VALUE ...]

CONFIG_YAML is what `llama-sweep export` writes; its `llm:` mapping, without
`temperature` and `max_tokens`, must be keyword arguments of
`llama_cpp.Llama()`. LLM_JSON, when given, is the `--format json` export: it
must hold exactly those keyword arguments, with the same values and types.
Each `--expect KEY=VALUE` (VALUE read as YAML: 512, true, "q8_0", ...) must be
in the `llm:` mapping with that value and type; the CI script passes the
values of the sweep it ran, so a key the exporter drops or rewrites fails.

`Llama.__init__` ends in `**kwargs`, which silently swallows unknown keyword
arguments: a misspelt key would load and be ignored. So before loading, every
key is checked to be a *named* parameter of `Llama.__init__` and its value to
have the type of the parameter's annotation (a bool is not an int here, and
an int is not a bool). Then the model is loaded with `Llama(**llm)`, the
values the context really got are compared with the config where
llama-cpp-python exposes them, and a short completion must generate at least
one token.

Exit status: 0 all good; 1 the config is rejected (each problem is printed
on stderr, naming the key).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
import typing
from pathlib import Path

import yaml

import llama_cpp

# Keys under `llm:` that are for the app's requests, not for Llama().
REQUEST_KEYS = ("temperature", "max_tokens")
PROMPT = "The capital of France is"


class Rejected(Exception):
    """The config cannot be used as it is; the message names the key."""


def reject(problems: list[str]) -> None:
    if problems:
        raise Rejected("\n".join(problems))


def type_name(value: object) -> str:
    return type(value).__name__


def accepts(annotation: object, value: object) -> bool:
    """Whether `value` has the type `annotation` names, strictly.

    bool and int are told apart (Python's bool is a subclass of int, and YAML
    reads `1` and `true` differently); an int is accepted for a float.
    """
    if annotation is typing.Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(accepts(arg, value) for arg in typing.get_args(annotation))
    if origin is not None:  # List[float], Dict[str, ...]: check the container
        return isinstance(value, origin)
    if annotation is bool:
        return type(value) is bool
    if annotation is int:
        return type(value) is int
    if annotation is float:
        return type(value) in (float, int)
    if annotation is str:
        return type(value) is str
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    raise TypeError(f"unsupported annotation {annotation!r}")


def named_parameters() -> dict[str, inspect.Parameter]:
    """Llama.__init__'s parameters that a keyword argument can bind by name."""
    signature = inspect.signature(llama_cpp.Llama.__init__)
    return {
        name: p
        for name, p in signature.parameters.items()
        if name != "self"
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def resolve(parameter: inspect.Parameter) -> object:
    """The parameter's annotation as a type (llama.py uses postponed
    annotations, so they are strings), or the type of its default."""
    annotation = parameter.annotation
    if isinstance(annotation, str):
        module = sys.modules[llama_cpp.Llama.__init__.__module__]
        annotation = eval(annotation, vars(typing) | vars(module))  # noqa: S307
    if annotation is inspect.Parameter.empty:
        default = parameter.default
        if default is inspect.Parameter.empty or default is None:
            return typing.Any
        return type(default)
    return annotation


def check_kwargs(kwargs: dict, source: str) -> None:
    """Every key a named Llama() parameter, every value of its type."""
    parameters = named_parameters()
    problems = []
    for key, value in kwargs.items():
        parameter = parameters.get(key)
        if parameter is None:
            problems.append(
                f"{source}: key {key!r} is not a parameter of llama_cpp.Llama() "
                f"(its **kwargs would swallow it silently)"
            )
            continue
        try:
            annotation = resolve(parameter)
            ok = accepts(annotation, value)
        except Exception as e:  # an annotation this checker cannot read
            problems.append(f"{source}: key {key!r}: cannot check its type: {e}")
            continue
        if not ok:
            problems.append(
                f"{source}: key {key!r} = {value!r} has type {type_name(value)}, "
                f"but Llama() takes {key}: {parameter.annotation}"
            )
    for name, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty and name not in kwargs:
            problems.append(f"{source}: required key {name!r} is missing")
    reject(problems)


def read_yaml(path: Path) -> tuple[dict, float, int]:
    """The Llama() keyword arguments of a config.yaml, and the request keys."""
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or not isinstance(config.get("llm"), dict):
        reject([f"{path}: no `llm:` mapping at the top level"])
    llm = dict(config["llm"])
    problems = [f"{path}: key {k!r} is missing" for k in REQUEST_KEYS if k not in llm]
    reject(problems)
    temperature = llm.pop("temperature")
    max_tokens = llm.pop("max_tokens")
    if type(temperature) not in (int, float) or not 0 <= temperature <= 5:
        problems.append(f"{path}: key 'temperature' = {temperature!r} is not a number in 0..5")
    if type(max_tokens) is not int or max_tokens < 1:
        problems.append(f"{path}: key 'max_tokens' = {max_tokens!r} is not a positive int")
    reject(problems)
    return llm, temperature, max_tokens


def check_expected(llm: dict, temperature: float, max_tokens: int, expect: list[str]) -> None:
    everything = llm | {"temperature": temperature, "max_tokens": max_tokens}
    problems = []
    for item in expect:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--expect {item!r}: write KEY=VALUE")
        want = yaml.safe_load(text)
        if key not in everything:
            problems.append(f"key {key!r} is missing (expected {want!r})")
        elif everything[key] != want or type(everything[key]) is not type(want):
            got = everything[key]
            problems.append(
                f"key {key!r} = {got!r} ({type_name(got)}), expected {want!r} ({type_name(want)})"
            )
    reject(problems)


def check_json(path: Path, llm: dict) -> dict:
    """The --format json export: exactly the yaml's Llama() arguments."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        reject([f"{path}: not a JSON object"])
    problems = []
    for key in sorted(data.keys() | llm.keys()):
        if key not in data:
            problems.append(f"{path}: key {key!r} of the yaml's llm is missing")
        elif key not in llm:
            problems.append(f"{path}: key {key!r} is not in the yaml's llm (minus {REQUEST_KEYS})")
        elif data[key] != llm[key] or type(data[key]) is not type(llm[key]):
            problems.append(
                f"{path}: key {key!r} = {data[key]!r} ({type_name(data[key])}) "
                f"but the yaml has {llm[key]!r} ({type_name(llm[key])})"
            )
    reject(problems)
    return data


def struct_fields(struct) -> set[str]:
    return {name for name, *_ in type(struct)._fields_}


def check_loaded(model: llama_cpp.Llama, llm: dict, source: str) -> list[str]:
    """Compare what the loaded model and context report with the config.

    Read back from llama.cpp itself: n_ctx, n_batch, n_ubatch, n_threads,
    n_threads_batch. Only what llama-cpp-python passed to llama.cpp (its
    params structs): n_gpu_layers, flash_attn, type_k, type_v, use_mmap,
    use_mlock, offload_kqv, split_mode, main_gpu, op_offload. (A quantized V cache without flash attention would have
    failed to load, so that pair is checked by loading at all.)
    """
    ctx = model.ctx
    n_ctx = llm.get("n_ctx", 512)
    # llama.cpp clamps the batch to the context and the micro-batch to the batch.
    n_batch = min(n_ctx, llm.get("n_batch", 512)) if n_ctx else llm.get("n_batch", 512)
    n_ubatch = min(n_batch, llm.get("n_ubatch", 512))
    got = {
        "n_ctx": (model.n_ctx(), n_ctx),
        "n_batch": (llama_cpp.llama_n_batch(ctx), n_batch),
        "n_ubatch": (llama_cpp.llama_n_ubatch(ctx), n_ubatch),
    }
    if "n_threads" in llm:
        got["n_threads"] = (llama_cpp.llama_n_threads(ctx), llm["n_threads"])
    if "n_threads_batch" in llm:
        got["n_threads_batch"] = (llama_cpp.llama_n_threads_batch(ctx), llm["n_threads_batch"])
    cp, mp = model.context_params, model.model_params
    if "n_gpu_layers" in llm:
        want = 0x7FFFFFFF if llm["n_gpu_layers"] == -1 else llm["n_gpu_layers"]
        got["n_gpu_layers"] = (mp.n_gpu_layers, want)
    if "flash_attn" in llm:
        if "flash_attn_type" in struct_fields(cp):
            want = (
                llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
                if llm["flash_attn"]
                else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
            got["flash_attn"] = (cp.flash_attn_type, want)
        else:
            got["flash_attn"] = (bool(cp.flash_attn), llm["flash_attn"])
    for key in ("type_k", "type_v"):
        if llm.get(key) is not None:
            got[key] = (getattr(cp, key), llm[key])
    if "offload_kqv" in llm:
        got["offload_kqv"] = (bool(cp.offload_kqv), llm["offload_kqv"])
    if "use_mmap" in llm:
        if "load_mode" in struct_fields(mp):  # llama.cpp's load_mode replaced use_mmap
            mmap_modes = (llama_cpp.LLAMA_LOAD_MODE_MMAP, llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK)
            got["use_mmap"] = (mp.load_mode in mmap_modes, llm["use_mmap"])
        else:
            got["use_mmap"] = (bool(mp.use_mmap), llm["use_mmap"])
    if "use_mlock" in llm and "load_mode" in struct_fields(mp):
        mlock_modes = (llama_cpp.LLAMA_LOAD_MODE_MLOCK, llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK)
        got["use_mlock"] = (mp.load_mode in mlock_modes, llm["use_mlock"])
    for key in ("split_mode", "main_gpu"):
        if key in llm:
            got[key] = (getattr(mp, key), llm[key])
    if "op_offload" in llm:
        got["op_offload"] = (bool(cp.op_offload), llm["op_offload"])
    if "verbose" in llm:
        got["verbose"] = (model.verbose, llm["verbose"])
    return [
        f"{source}: {key}: llama.cpp has {have!r}, the config says {want!r}"
        for key, (have, want) in got.items()
        if have != want
    ]


def load(llm: dict, temperature: float, max_tokens: int, source: str) -> str:
    """Llama(**llm), its context checked, one short completion. Returns a summary."""
    model = llama_cpp.Llama(**llm)
    try:
        reject(check_loaded(model, llm, source))
        out = model.create_completion(
            PROMPT, max_tokens=min(8, max_tokens), temperature=temperature
        )
        generated = out["usage"]["completion_tokens"]
        if generated < 1:
            reject([f"{source}: the completion generated no token: {out!r}"])
        text = out["choices"][0]["text"]
        return f"{generated} token(s) generated: {PROMPT!r} + {text!r}"
    finally:
        model.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="config.yaml from llama-sweep export")
    parser.add_argument("llm_json", type=Path, nargs="?", help="the --format json export")
    parser.add_argument("--expect", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    try:
        llm, temperature, max_tokens = read_yaml(args.config)
        check_kwargs(llm, str(args.config))
        check_expected(llm, temperature, max_tokens, args.expect)
        json_llm = None
        if args.llm_json is not None:
            json_llm = check_json(args.llm_json, llm)
            check_kwargs(json_llm, str(args.llm_json))
        summary = load(llm, temperature, max_tokens, str(args.config))
        print(f"OK {args.config}: Llama(**llm) took {len(llm)} keys ({', '.join(llm)}); {summary}")
        if json_llm is not None:
            summary = load(json_llm, temperature, max_tokens, str(args.llm_json))
            print(f"OK {args.llm_json}: same {len(json_llm)} keys as the yaml; {summary}")
    except Rejected as e:
        print(f"REJECTED (llama-cpp-python {llama_cpp.__version__}):\n{e}", file=sys.stderr)
        return 1
    print(f"llama-cpp-python {llama_cpp.__version__}, PyYAML {yaml.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
