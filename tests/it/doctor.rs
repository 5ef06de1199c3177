//! `llama-sweep doctor` on the real demo model: the build's GPU support, the
//! measured bandwidth, the model's facts, and the warnings a sweep that asks
//! for GPU layers gets from a build without a GPU backend.

use crate::support::*;
use std::path::Path;

/// Whether this test binary's llama.cpp was built with a GPU backend.
const GPU_BUILD: bool = cfg!(any(feature = "cuda", feature = "vulkan", feature = "metal"));

/// Runs `llama-sweep doctor <args>` in `dir`; its stdout, after checking it
/// exited 0.
fn doctor(dir: &Path, args: &[&str]) -> String {
    let out = bin()
        .arg("doctor")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("llama-sweep runs");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    stdout(&out)
}

/// `text` with every run of whitespace made one space: warnings are wrapped
/// where their words fall, and a path's length (the temporary folder's)
/// moves the breaks.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of an aligned `key   value` line.
fn value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let rest = l.trim_start().strip_prefix(key)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
}

#[test]
fn doctor_reports_the_build_the_bandwidth_and_the_demo_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = demo_model();
    let text = doctor(dir.path(), &["--model", model.to_str().unwrap()]);
    if !GPU_BUILD {
        assert_eq!(value(&text, "GPU offload"), "no", "{text}");
    }
    let read = value(&text, "read");
    let gb: f64 = read.split_whitespace().next().unwrap().parse().unwrap();
    assert!(gb > 0.1 && gb < 10_000.0, "{read}");
    assert!(
        value(&text, "method").contains("parallel sum of a"),
        "{text}"
    );
    assert_eq!(value(&text, "layers"), "30");
    assert_eq!(value(&text, "parameters"), "134.5 M");
    assert_eq!(value(&text, "file type"), "Q4_1");
    assert_eq!(value(&text, "trained context"), "8192");
    assert!(value(&text, "architecture").starts_with("llama"), "{text}");
    // No sweep.toml in this folder: the memory estimate is at 4096 tokens.
    assert!(text.contains("Memory at n_ctx 4096 (default)"), "{text}");
    assert!(
        value(&text, "memory at n_ctx 4096").ends_with("KV cache (f16/f16)"),
        "{text}"
    );
    assert_eq!(
        value(&text, "read per token"),
        "92.1 MiB (100% of the weights)",
        "tied embeddings"
    );
    assert!(value(&text, "in RAM").starts_with("fits"), "{text}");
    let ceiling = value(&text, "generation ceiling");
    assert!(
        ceiling.contains(" t/s (") && ceiling.ends_with("MB read per token)"),
        "{ceiling}"
    );
    assert!(!text.contains("Sweep:"), "no sweep was used: {text}");
}

#[test]
fn doctor_warns_when_a_sweep_asks_for_gpu_layers_of_a_cpu_only_build() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = format!(
        r#"[sweep]
name = "gpu"
model_cache = "{cache}"

{model}
[space]
n_gpu_layers = [-1, 99]
n_ctx = [2048, 16384]

[baseline]
n_gpu_layers = 99
n_ctx = 2048
"#,
        cache = dir.path().join("derived").display(),
        model = model_table("smol", &demo_model(), "quantize = [\"Q8_0\"]"),
    );
    std::fs::write(dir.path().join("sweep.toml"), sweep).unwrap();
    // ./sweep.toml is found without naming it.
    let text = doctor(dir.path(), &[]);
    assert!(text.contains("Sweep: sweep.toml (found here"), "{text}");
    assert!(
        text.contains("Memory at n_ctx 16384 (the sweep's largest n_ctx)"),
        "{text}"
    );
    assert!(text.contains("Model smol Q8_0"), "{text}");
    assert!(
        value(&text, "status").starts_with("not derived yet"),
        "{text}"
    );
    // Warnings are wrapped: compare them as one line.
    let warnings = text
        .split("\nWarnings\n")
        .nth(1)
        .expect("a warnings section");
    let warnings = one_line(warnings);
    assert!(
        warnings.contains("n_ctx 16384 is larger than the context it was trained with (8192)"),
        "{warnings}"
    );
    if !GPU_BUILD {
        assert_eq!(value(&text, "GPU offload"), "no");
        assert!(
            warnings.contains("[space] n_gpu_layers = -1, 99; [baseline] n_gpu_layers = 99"),
            "{warnings}"
        );
        assert!(
            warnings.contains("cargo build --release --features cuda"),
            "{warnings}"
        );
    }
}

#[test]
fn doctor_runs_the_backend_self_test_and_says_what_to_do_when_repacking_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let model = demo_model();
    let text = doctor(dir.path(), &["--model", model.to_str().unwrap()]);
    let on = value(&text, "repack on (default)");
    if repack_crashes_here() {
        // This machine's own case: what to do is said.
        assert!(on.starts_with("crashed"), "{text}");
        assert!(
            one_line(&text).contains("sweeps force repack = false here"),
            "{text}"
        );
    } else {
        assert!(on.starts_with("works: pp "), "{text}");
    }
    assert!(
        value(&text, "repack off").starts_with("works: pp "),
        "{text}"
    );
    assert!(value(&text, "CPU extra buffers").len() > 3, "{text}");

    let text = doctor(
        dir.path(),
        &[
            "--model",
            model.to_str().unwrap(),
            "--test-fault",
            "crash-when-repacked",
        ],
    );
    let on = value(&text, "repack on (default)");
    assert!(
        on.starts_with(
            "crashed (signal 11 (SIGSEGV)) in llama_sweep::measure::fault::simulated_kernel_crash"
        ),
        "{text}"
    );
    assert!(on.contains("(log: /"), "the log of a failure is kept: {on}");
    assert!(value(&text, "repack off").starts_with("works"), "{text}");
    assert!(
        one_line(&text)
            .contains("sweeps force repack = false here; run llama-server with --no-repack"),
        "{text}"
    );
}

#[test]
fn a_model_on_the_command_line_is_checked_whatever_state_the_folders_sweep_file_is_in() {
    let dir = tempfile::tempdir().unwrap();
    // The project's root before the demo model was fetched: its sweep.toml
    // names a model that is not there.
    std::fs::write(
        dir.path().join("sweep.toml"),
        "[sweep]\nname = \"demo\"\n[[model]]\npath = \"models/not-fetched-yet.gguf\"\n",
    )
    .unwrap();
    let model = demo_model();
    let out = bin()
        .args(["doctor", "--model", model.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (said, warned) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{warned}");
    assert!(
        warned.contains("warning: ./sweep.toml is not read") && warned.contains("not-fetched-yet"),
        "{warned}"
    );
    assert_eq!(value(&said, "parameters"), "134.5 M", "{said}");
    // A sweep file named on the command line must be right.
    let out = bin()
        .args(["doctor", "sweep.toml", "--model", model.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("not-fetched-yet"), "{}", stderr(&out));
}
