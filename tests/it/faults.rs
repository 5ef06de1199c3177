//! Trials that crash, hang, answer garbage or cannot allocate become rows of
//! their class, and the sweep goes on (children misbehave through the
//! hidden `run --test-fault` hook, or for real).

use crate::support::*;
use llama_sweep::runner::TrialStatus;

/// Runs a two-trial sweep of the demo model whose children misbehave as
/// `fault`; returns the folder and the run's output.
fn sweep_with_fault(
    fault: &str,
    timeout_s: u32,
    extra_args: &[&str],
) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = [1, 2]",
        &format!("[trial]\ntimeout_s = {timeout_s}"),
    );
    let out = bin()
        .args(["run", sweep.to_str().unwrap()])
        .args(extra_args)
        .args(["--test-fault", fault])
        .output()
        .unwrap();
    (dir, out)
}

fn rows(dir: &tempfile::TempDir) -> Vec<llama_sweep::store::row::TrialRow> {
    read_rows(&dir.path().join("reports/it"))
}

#[test]
fn crashing_trials_are_retried_once_then_recorded_and_the_sweep_goes_on() {
    let (dir, out) = sweep_with_fault("segfault", 60, &[]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "nothing to recommend: {}",
        stderr(&out)
    );
    let rows = rows(&dir);
    // Both trials, and the reference trial of llama.cpp's defaults.
    assert_eq!(rows.len(), 3, "every trial ran and was recorded");
    for r in &rows {
        assert_eq!(r.status, TrialStatus::Crashed);
        assert_eq!(r.attempts, 2, "a crash is retried once by default");
        assert_eq!(r.exit.as_deref(), Some("signal 11 (SIGSEGV)"));
        let error = r.error.as_deref().unwrap();
        assert!(
            error.starts_with("attempt 1 crashed") && error.contains("attempt 2"),
            "{error}"
        );
        let folder = dir.path().join("reports/it");
        assert!(
            folder
                .join(format!("logs/{}.try1.log", r.trial_id))
                .exists()
        );
        assert!(r.log_tail.contains("injecting a fault"), "{}", r.log_tail);
    }
    assert!(
        stdout(&out).contains("No config.yaml written"),
        "{}",
        stdout(&out)
    );
    assert!(!dir.path().join("reports/it/config.yaml").exists());
}

#[test]
fn aborting_trials_are_crashes_and_retries_can_be_turned_off() {
    let (dir, out) = sweep_with_fault("crash", 60, &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let rows = rows(&dir);
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!((r.status, r.attempts), (TrialStatus::Crashed, 1));
        assert_eq!(r.exit.as_deref(), Some("signal 6 (SIGABRT)"));
    }
}

#[test]
fn hanging_trials_are_killed_at_the_timeout() {
    let started = std::time::Instant::now();
    let (dir, out) = sweep_with_fault("hang", 2, &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let rows = rows(&dir);
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r.status, TrialStatus::Timeout);
        assert!(r.error.unwrap().contains("timeout of 2 s"));
    }
    assert!(started.elapsed().as_secs() < 60, "the hangs were cut short");
}

#[test]
fn unreadable_results_are_invalid_and_not_retried() {
    let (dir, out) = sweep_with_fault("garbage", 60, &[]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let rows = rows(&dir);
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!((r.status, r.attempts), (TrialStatus::Invalid, 1));
        assert!(r.error.unwrap().contains("unreadable result"));
    }
}

#[test]
fn an_impossible_context_is_an_out_of_memory_row() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("smol", &demo_model(), "");
    // 8M tokens of f16 KV cache: about 180 GB.
    let sweep = sweep_file(dir.path(), &models, "n_threads = 1", "")
        .to_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("n_ctx = 256", "n_ctx = [256, 8388608]");
    std::fs::write(&sweep, text).unwrap();
    let out = run(&["run", &sweep]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the feasible trial is recommended: {}",
        stderr(&out)
    );
    let rows = rows(&dir);
    let big = rows
        .iter()
        .find(|r| r.params.int(llama_sweep::knobs::N_CTX) == 8388608)
        .unwrap();
    assert_eq!(big.status, TrialStatus::Oom, "{:?}", big.error);
    assert!(
        big.error
            .as_deref()
            .unwrap()
            .contains("cannot create the context"),
        "{:?}",
        big.error
    );
    assert_eq!(big.attempts, 1, "out of memory is not retried");
    assert!(
        rows.iter()
            .any(|r| r.params.int(llama_sweep::knobs::N_CTX) == 256 && r.status == TrialStatus::Ok)
    );
}

#[test]
fn a_quantization_that_cannot_be_made_fails_its_trials_as_rows() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.gguf");
    std::fs::write(&broken, b"GGUF but nothing else").unwrap();
    let models = model_table(
        "broken",
        &broken,
        "quantize = [\"Q8_0\"]\ninclude_source = false",
    );
    let sweep = sweep_file(dir.path(), &models, "n_threads = 1", "");
    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let rows = rows(&dir);
    // The trial, and llama.cpp's defaults on the same variant.
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.status, TrialStatus::Failed);
        let error = r.error.as_deref().unwrap();
        assert!(error.contains("could not derive broken Q8_0"), "{error}");
        assert!(error.contains("llama.cpp says:"), "{error}");
    }
    let cache: Vec<_> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .collect();
    assert!(
        cache.is_empty(),
        "no partial file is left in the cache: {cache:?}"
    );
}
