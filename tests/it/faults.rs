//! Trials that crash, hang or answer garbage become rows of their class, and
//! the sweep goes on (the children misbehave through the documented
//! LLAMA_SWEEP_TEST_FAULT hook).

use crate::support::*;
use llama_sweep::runner::TrialStatus;

fn sweep_with_fault(fault: &str, timeout_s: u32) -> (tempfile::TempDir, std::process::Output) {
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
        .env("LLAMA_SWEEP_TEST_FAULT", fault)
        .output()
        .unwrap();
    (dir, out)
}

fn statuses(dir: &tempfile::TempDir) -> Vec<(TrialStatus, String, Option<String>)> {
    read_rows(&dir.path().join("reports/it"))
        .into_iter()
        .map(|r| (r.status, r.error.unwrap_or_default(), r.exit))
        .collect()
}

#[test]
fn crashing_trials_are_rows_and_the_sweep_goes_on() {
    let (dir, out) = sweep_with_fault("segfault", 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = statuses(&dir);
    assert_eq!(rows.len(), 2, "both trials ran and were recorded");
    for (status, error, exit) in rows {
        assert_eq!(status, TrialStatus::Crashed);
        assert!(error.contains("SIGSEGV"), "{error}");
        assert_eq!(exit.as_deref(), Some("signal 11 (SIGSEGV)"));
    }
    assert!(
        stdout(&out).contains("No config.yaml written"),
        "{}",
        stdout(&out)
    );
    assert!(!dir.path().join("reports/it/config.yaml").exists());
}

#[test]
fn aborting_trials_are_crashes() {
    let (dir, out) = sweep_with_fault("crash", 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = statuses(&dir);
    assert_eq!(rows.len(), 2);
    for (status, _, exit) in rows {
        assert_eq!(status, TrialStatus::Crashed);
        assert_eq!(exit.as_deref(), Some("signal 6 (SIGABRT)"));
    }
}

#[test]
fn hanging_trials_are_killed_at_the_timeout() {
    let started = std::time::Instant::now();
    let (dir, out) = sweep_with_fault("hang", 2);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = statuses(&dir);
    assert_eq!(rows.len(), 2);
    for (status, error, _) in rows {
        assert_eq!(status, TrialStatus::Timeout);
        assert!(error.contains("timeout of 2 s"), "{error}");
    }
    assert!(started.elapsed().as_secs() < 60, "the hangs were cut short");
}

#[test]
fn unreadable_results_are_invalid() {
    let (dir, out) = sweep_with_fault("garbage", 60);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = statuses(&dir);
    assert_eq!(rows.len(), 2);
    for (status, error, _) in rows {
        assert_eq!(status, TrialStatus::Invalid);
        assert!(error.contains("unreadable result"), "{error}");
    }
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
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_rows(&dir.path().join("reports/it"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, TrialStatus::Failed);
    let error = rows[0].error.as_deref().unwrap();
    assert!(error.contains("could not derive broken Q8_0"), "{error}");
    assert!(error.contains("llama.cpp says:"), "{error}");
    let cache: Vec<_> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .collect();
    assert!(
        cache.is_empty(),
        "no partial file is left in the cache: {cache:?}"
    );
}
