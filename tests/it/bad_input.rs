//! A catalogue of bad sweep files: each gives a clear message naming the file,
//! the key and the line, exit status 2, and writes nothing.

use crate::support::*;
use std::path::Path;

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes `text` as a sweep.toml next to a placeholder model and runs
/// `llama-sweep run` on it; returns (exit code, stderr).
fn run_bad(text: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.gguf"), b"GGUF placeholder").unwrap();
    std::fs::create_dir(dir.path().join("a-folder")).unwrap();
    let path = dir.path().join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    let out = run(&["run", path.to_str().unwrap()]);
    (out.status.code(), stderr(&out), dir)
}

const GOOD: &str = r#"[sweep]
name = "bad"

[[model]]
name = "m"
path = "model.gguf"

[space]
n_batch = [512, 1024]
n_ubatch = 512
n_threads = 2

[workload]
prompt_tokens = 64
gen_tokens = 16
"#;

fn assert_rejected(text: &str, expected: &[&str]) {
    let (code, err, dir) = run_bad(text);
    assert_eq!(code, Some(2), "exit code 2 expected; stderr: {err}");
    assert!(err.contains("sweep.toml"), "names the file: {err}");
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    assert!(
        !dir.path().join("reports").exists(),
        "nothing written: {err}"
    );
    assert!(!Path::new(&dir.path().join("models")).exists());
}

#[test]
fn malformed_toml() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_threads = = 2"),
        &["sweep.toml:11:13", "extra `=`"],
    );
}

#[test]
fn unknown_key_suggests_the_right_one() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_thread = 2"),
        &[
            "unknown key `n_thread`",
            "did you mean `n_threads`",
            ":11:1",
        ],
    );
}

#[test]
fn wrong_type() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_threads = \"two\""),
        &["space.n_threads", "found the string \"two\"", ":11:"],
    );
}

#[test]
fn empty_axis() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_threads = []"),
        &["space.n_threads", "empty axis"],
    );
}

#[test]
fn ubatch_larger_than_every_batch() {
    assert_rejected(
        &GOOD.replace("n_ubatch = 512", "n_ubatch = 4096"),
        &["space.n_ubatch", "larger than every n_batch", ":10:"],
    );
}

#[test]
fn context_too_small_for_the_workload() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_threads = 2\nn_ctx = 32"),
        &["space.n_ctx", "smaller than the workload needs"],
    );
}

#[test]
fn missing_model_file() {
    assert_rejected(
        &GOOD.replace("model.gguf", "nowhere.gguf"),
        &["model[0].path", "cannot open model file", ":6:"],
    );
}

#[test]
fn directory_given_as_model() {
    assert_rejected(
        &GOOD.replace("model.gguf", "a-folder"),
        &["model[0].path", "is a directory"],
    );
}

#[test]
fn unknown_quantization() {
    assert_rejected(
        &GOOD.replace(
            "path = \"model.gguf\"",
            "path = \"model.gguf\"\nquantize = [\"Q4_K_X\"]",
        ),
        &[
            "model[0].quantize",
            "unknown quantization \"Q4_K_X\"",
            "did you mean",
        ],
    );
}

#[test]
fn out_of_range_value() {
    assert_rejected(
        &GOOD.replace("n_threads = 2", "n_threads = 0"),
        &["space.n_threads", "must be at least 1"],
    );
}

#[test]
fn unknown_metric() {
    assert_rejected(
        &(GOOD.to_string() + "[objective]\nmetric = \"tg_tsp\"\n"),
        &["objective.metric", "did you mean \"tg_tps\""],
    );
}

#[test]
fn missing_sweep_file() {
    let out = run(&["run", "/nonexistent/sweep.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the sweep file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_rejects_the_same_files() {
    let bad = [
        GOOD.replace("n_threads = 2", "n_thread = 2"),
        GOOD.replace("n_threads = 2", "n_threads = []"),
        GOOD.replace("n_ubatch = 512", "n_ubatch = 4096"),
        GOOD.replace("model.gguf", "nowhere.gguf"),
    ];
    for text in bad {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.gguf"), b"GGUF placeholder").unwrap();
        std::fs::create_dir(dir.path().join("a-folder")).unwrap();
        std::fs::write(dir.path().join("sweep.toml"), &text).unwrap();
        let out = run(&["plan", dir.path().join("sweep.toml").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            entries(dir.path()),
            ["a-folder", "model.gguf", "sweep.toml"]
        );
    }
}

#[test]
fn a_default_context_too_small_for_the_workload_is_refused_before_any_trial() {
    // No n_ctx: llama.cpp's default (512) cannot hold the default workload
    // (512 + 128 tokens). Only the llama.cpp probe runs; no model is loaded.
    let text = "[sweep]\nname = \"bad\"\n[[model]]\npath = \"model.gguf\"\n";
    let (code, err, dir) = run_bad(text);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("space.n_ctx") && err.contains("llama.cpp's default context (512 tokens)"),
        "{err}"
    );
    assert_eq!(
        entries(dir.path()),
        ["a-folder", "model.gguf", "sweep.toml"]
    );
}

#[test]
fn help_teaches_with_examples() {
    for cmd in [
        "run", "plan", "export", "report", "compare", "status", "replay",
    ] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        assert!(
            stdout(&out).contains("Examples:"),
            "{cmd} --help: {}",
            stdout(&out)
        );
    }
    let out = run(&["--help"]);
    assert!(
        !stdout(&out)
            .lines()
            .any(|l| l.trim_start().starts_with("trial")),
        "the child subcommand is hidden"
    );
}
